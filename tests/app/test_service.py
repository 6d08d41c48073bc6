"""The classifier behind the routes: what it sets up for the process."""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from app.config import Settings
from app.service import Classifier
from tests.helpers import blas_threads


def test_numpy_blas_runs_on_one_thread_beside_the_front_end_workers() -> None:
    threadpool_limits(2, user_api="blas")  # as a 2-core machine starts, whatever ran before
    Classifier(Settings(frontend_workers=2))
    threads = blas_threads()
    assert threads and all(n == 1 for n in threads)
