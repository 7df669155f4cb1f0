"""A process pool on this machine (spawned workers: forking after torch or polars threads start
can deadlock)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from . import WorkerFactory

_worker_fn: Callable[[Any], Any] | None = None
_init_error: BaseException | None = None


def _init_worker(factory: WorkerFactory) -> None:
    # An initializer that raises only breaks the pool; keep the error to raise it with the first
    # item, so the driver sees the real reason (a model that cannot load, say).
    global _worker_fn, _init_error
    try:
        _worker_fn = factory()
    except Exception as e:
        _init_error = e


def _run_item(item: Any) -> Any:
    if _init_error is not None:
        raise _init_error
    assert _worker_fn is not None, "worker was not initialised"
    return _worker_fn(item)


class LocalExecutor:
    """`workers` processes; one item, or one worker, runs in this process without a pool."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map(self, factory: WorkerFactory, items: Sequence[Any]) -> Iterator[Any]:
        if not items:
            return
        if self.workers == 1 or len(items) == 1:
            fn = factory()
            for item in items:
                yield fn(item)
            return
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(items)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(factory,),
        )
        try:
            pending: set[Future] = {pool.submit(_run_item, item) for item in items}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
