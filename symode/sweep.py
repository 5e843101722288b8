"""Run independent cases of a sweep (audit configurations, golden-file points) serially, on a local process pool,
or on an existing Dask distributed cluster -- with the same results, in the same order, either way.

``run_sweep(fn, tasks, scheduler=..., workers=...)`` returns ``[fn(*task) for task in tasks]``:

* ``scheduler=None`` (default): a local process pool of ``workers`` processes (default: the CPU count, at most
  the number of tasks) started with the ``spawn`` method -- never ``fork``, which is unsafe once PyTorch or
  JAX threads exist in the parent; one task, or ``workers=1``, runs in this process;
* ``scheduler="serial"``: in this process, one task after the other;
* ``scheduler="tcp://HOST:PORT"``: the tasks go to the Dask scheduler at that address through
  ``dask.distributed.Client`` (the ``concurrent.futures``-style API: ``client.map``, results gathered in task
  order; extra ``symode[dask]``).  The workers need symode (and the extras the tasks use) installed.

``fn`` must be a module-level function and each task a tuple of plain values (spec text, numbers, strings),
so that a task means the same thing in any process: no model objects, no open handles, no global state.
Results are returned in task order whatever order they finish in, so output assembled from them is
byte-identical across schedulers.  The first failing task (in task order) re-raises its exception after
the others were cancelled or finished.

Progress: a bar ``label [#####.....] 5/10`` on stderr, redrawn as tasks finish, when stderr is a terminal
(``SYMODE_PROGRESS=1`` forces it, ``SYMODE_QUIET=1`` silences it): captured stderr holds only errors.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from .errors import MissingExtraError, SpecError

__all__ = ["run_sweep", "ProgressBar"]


class ProgressBar:
    """A one-line progress bar on stderr (see the module docstring for when it shows)."""

    WIDTH = 30

    def __init__(self, total: int, label: str, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream if stream is not None else sys.stderr
        quiet = os.environ.get("SYMODE_QUIET", "").strip() not in ("", "0")
        forced = os.environ.get("SYMODE_PROGRESS", "").strip() not in ("", "0")
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.enabled = not quiet and total > 0 and (forced or tty or stream is not None)

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                              f"{self.done}/{self.total}")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()


def _check_scheduler(scheduler):
    if scheduler is None or scheduler == "serial":
        return scheduler
    if not isinstance(scheduler, str) or not scheduler.startswith("tcp://") or ":" not in scheduler[6:]:
        raise SpecError(f"--scheduler {scheduler!r}: give the address of a Dask scheduler as tcp://HOST:PORT "
                        f"(or 'serial'; without --scheduler a local process pool runs the sweep)")
    return scheduler


def run_sweep(fn: Callable, tasks: Sequence[tuple], *, scheduler: str | None = None, workers: int | None = None,
              label: str = "sweep", progress_stream=None) -> list:
    """``[fn(*task) for task in tasks]`` on the chosen executor (see the module docstring)."""
    scheduler = _check_scheduler(scheduler)
    tasks = [tuple(t) for t in tasks]
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SpecError(f"--workers must be a positive integer, got {workers!r}")
    bar = ProgressBar(len(tasks), label, progress_stream)
    if scheduler is None and (len(tasks) <= 1 or workers == 1):
        scheduler = "serial"
    if scheduler == "serial":
        out = []
        for t in tasks:
            out.append(fn(*t))
            bar.step()
        return out
    if scheduler is None:
        return _pool(fn, tasks, workers, bar)
    return _dask(fn, tasks, scheduler, bar)


def _pool(fn, tasks, workers, bar) -> list:
    import concurrent.futures as cf
    import multiprocessing
    n = min(workers or os.cpu_count() or 1, len(tasks))
    results: list = [None] * len(tasks)
    errors: dict = {}
    with cf.ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = {ex.submit(fn, *t): i for i, t in enumerate(tasks)}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except BaseException as exc:  # noqa: BLE001 -- re-raised below, in task order
                errors[i] = exc
                for f in futures:
                    f.cancel()
            bar.step()
    if errors:
        raise errors[min(errors)]
    return results


def _dask(fn, tasks, address: str, bar) -> list:
    import importlib
    try:
        distributed = importlib.import_module("dask.distributed")
    except ImportError as exc:
        raise MissingExtraError(f"--scheduler (a Dask cluster) needs dask.distributed, which is not installed "
                                f"({exc}); install the extra: pip install 'symode[dask]'") from None
    try:
        client = distributed.Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise SpecError(f"--scheduler {address}: cannot connect to a Dask scheduler there ({exc})") from None
    try:
        futures = [client.submit(fn, *t, pure=False) for t in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(tasks)
        errors: dict = {}
        for fut in distributed.as_completed(futures):
            i = index[fut.key]
            try:
                results[i] = fut.result()
            except BaseException as exc:  # noqa: BLE001 -- re-raised below, in task order
                errors[i] = exc
            bar.step()
        if errors:
            raise errors[min(errors)]
        return results
    finally:
        client.close()
