"""The classifier behind the routes: what it sets up for the process."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from app.config import Settings
from app.service import Classifier


def test_numpy_blas_runs_on_one_thread_beside_the_front_end_workers() -> None:
    threadpool_limits(2, user_api="blas")  # as a 2-core machine starts, whatever ran before
    Classifier(Settings(frontend_workers=2))
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)
