"""The batch job's worker processes: what each sets up before its first file."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from batch import job
from model.runtime import DEFAULT_MODEL_PATH


def test_a_worker_runs_numpy_blas_on_one_thread() -> None:
    threadpool_limits(2, user_api="blas")  # as a spawned interpreter starts on a 2-core machine
    job._start_worker(str(DEFAULT_MODEL_PATH))
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and all(pool["num_threads"] == 1 for pool in blas)
