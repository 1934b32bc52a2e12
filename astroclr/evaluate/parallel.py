"""Running the independent fits of an evaluation (seeds × training sizes) on the machine's cores.

A probe fit is single-threaded (one BLAS thread, see :func:`blas_threads`), and an evaluation
is dozens of them: the default run's untrained-network probe alone is 20 cross-validated
logistic regressions on 512 features (40 s in one process on a 2-core machine). A model that
can say what its fit needs (:class:`FitJob`) is run in worker processes instead, the arrays it
needs shipped to them. The results are those of an in-process fit (the fits are seeded), up to
the BLAS's summation order: the default run's PCA-MLP moved by at most 3e-4 in balanced accuracy.

``$ASTROCLR_EVAL_JOBS`` sets the number of worker processes (default: the cores this process
may use; 1 fits in the evaluating process, as models without :class:`FitJob` always are).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from astroclr.plugin.specs import AstroclrError

ENV_THREADS = "ASTROCLR_EVAL_THREADS"
ENV_JOBS = "ASTROCLR_EVAL_JOBS"


def _positive_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, str(default))))
    except ValueError:
        raise AstroclrError(f"{name} must be a positive integer, "
                            f"got {os.environ[name]!r}") from None


def blas_threads() -> contextlib.AbstractContextManager:
    """Limit BLAS threads while fitting (``$ASTROCLR_EVAL_THREADS``, default 1).

    The probe's matrices are small: on a busy 2-core machine two OpenBLAS threads spin-wait
    for each other and an MLP fit took 10x longer (36 s vs 3.5 s for 7,500 galaxies,
    measured); one thread loses little when the machine is idle.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=_positive_env(ENV_THREADS, 1), user_api="blas")


def eval_jobs() -> int:
    """Worker processes for fits (``$ASTROCLR_EVAL_JOBS``, default the usable cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return _positive_env(ENV_JOBS, cores)


@dataclass(frozen=True)
class FitJob:
    """One fit as a picklable call: ``fn(*args)`` returns the test-set probabilities (or the
    model's usual ``(probabilities, note)``). ``fn`` must be a module-level function and
    ``args`` plain data (arrays, numbers), so that a worker process can run it."""

    fn: Callable[..., Any]
    args: tuple


def timed_fit(job: FitJob) -> tuple[Any, float]:
    """``(output, seconds)`` of one job, with BLAS limited as :func:`blas_threads` says."""
    start = time.perf_counter()
    with blas_threads():
        out = job.fn(*job.args)
    return out, time.perf_counter() - start


def run_fits(jobs: Iterable[FitJob], count: int, n_jobs: int | None = None
             ) -> Iterator[tuple[Any, float]]:
    """``(output, seconds)`` of each of the ``count`` jobs, in order, on up to ``n_jobs``
    worker processes. ``jobs`` is consumed lazily (a few ahead of the workers), so the arrays
    of all fits never exist at once."""
    n = min(eval_jobs() if n_jobs is None else n_jobs, count)
    if n <= 1:
        yield from (timed_fit(job) for job in jobs)
        return
    from joblib import Parallel, delayed

    # loky workers persist between calls, so their start-up (~1 s) is paid once per process
    yield from Parallel(n_jobs=n, backend="loky", return_as="generator")(
        delayed(timed_fit)(job) for job in jobs)
