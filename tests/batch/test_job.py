"""The batch job's worker processes: what each sets up before its first file."""

from __future__ import annotations

from threadpoolctl import threadpool_limits

from batch import job
from model.runtime import DEFAULT_MODEL_PATH
from tests.helpers import blas_threads


def test_a_worker_runs_numpy_blas_on_one_thread() -> None:
    threadpool_limits(2, user_api="blas")  # as a spawned interpreter starts on a 2-core machine
    job._start_worker(str(DEFAULT_MODEL_PATH))
    threads = blas_threads()
    assert threads and all(n == 1 for n in threads)
