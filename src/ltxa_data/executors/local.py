"""Worker processes on this machine, each fed one partition at a time over a pipe (spawned, not forked:
forking after torch or polars threads start can deadlock).

Our own small pool rather than `concurrent.futures`: a worker killed by a signal there breaks the whole
pool (`BrokenProcessPool`) without saying which partition it ran, and a hung one cannot be stopped.
Here a dead or hung worker is replaced and `Supervisor` decides what its partition costs.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import sys
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from .base import WorkerFactory
from .jobs import Job
from .supervise import Supervisor, Task, WorkerRuntime, death_cause, hang_cause

POLL_S = 0.5


def _worker_main(conn: Connection) -> None:
    """A worker: ("factory", f) sets it to a stage (set up on its first task), ("task", t) runs one partition,
    ("release", None) drops the stage and its models between maps; None or a closed pipe ends it."""
    runtime: WorkerRuntime | None = None
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        kind, value = msg
        if kind != "task":
            runtime = WorkerRuntime(value) if kind == "factory" else None
            _free_memory()
            continue
        try:
            assert runtime is not None, "a task before its factory"
            out: tuple[str, Any] = ("ok", runtime.run(value))
        except BaseException as e:  # the driver decides; KeyboardInterrupt included
            out = ("error", e)
        try:
            conn.send(out)
        except Exception as e:  # an unpicklable result or exception
            conn.send(("error", RuntimeError(f"{type(e).__name__} sending a result: {e}; {out[1]!r}")))


def _free_memory() -> None:
    """What a released stage held: its objects, and the GPU memory torch's allocator keeps cached."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@dataclass
class _Worker:
    slot: int
    proc: Any
    conn: Connection
    env: dict[str, str]
    task: Task | None = None


def _stop(w: _Worker) -> None:
    with contextlib.suppress(Exception):
        w.conn.close()
    if w.proc.is_alive():
        w.proc.kill()
    w.proc.join(5)


def _close_pool(idle: list[_Worker]) -> None:
    for w in idle:
        with contextlib.suppress(Exception):
            w.conn.send(None)
    for w in idle:
        w.proc.join(2)
        _stop(w)
    idle.clear()


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """Spawned children copy this process's environment at start: set theirs around `start()`."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalExecutor:
    """Up to `workers` processes per CPU stage; a GPU stage gets one process per GPU slot, with
    `CUDA_VISIBLE_DEVICES` set before the process starts. Partitions always run in a worker, never in
    the driver: only a worker may die of a hostile file.

    Workers outlive a map: the next stage's map reuses those started with the same environment (thread counts,
    GPU slot), so consecutive stages pay for one process start and one import of the libraries, not one each;
    each stage still sets itself up in them. `shutdown` (or the executor's collection) ends them."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._idle: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _close_pool, self._idle)

    def gpu_count(self) -> int:
        import torch

        return torch.cuda.device_count()

    def shutdown(self) -> None:
        """End the workers kept between maps."""
        self._finalizer()

    def map(self, factory: WorkerFactory, items: Sequence[Any], job: Job | None = None) -> Iterator[Any]:
        job = job or Job(workers=self.workers)
        if not items:
            return
        sup = Supervisor(job, list(items))
        envs = [{**job.env, "CUDA_VISIBLE_DEVICES": g}
                for g in (job.gpu_slots or [""] * max(1, job.workers))]
        ctx = multiprocessing.get_context("spawn")
        workers: dict[int, _Worker] = {}
        # Kept workers this map cannot use hold memory (and perhaps a GPU) another stage's workers need.
        keep: list[_Worker] = []
        for w in self._idle:
            if w.proc.is_alive() and sum(k.env == w.env for k in keep) < envs.count(w.env):
                keep.append(w)
        _close_pool([w for w in self._idle if w not in keep])
        self._idle[:] = keep

        def start(slot: int) -> _Worker:
            reused = next((w for w in self._idle if w.env == envs[slot]), None)
            if reused is not None:
                self._idle.remove(reused)
                w = _Worker(slot, reused.proc, reused.conn, reused.env)
                try:
                    w.conn.send(("factory", factory))
                    return w
                except OSError:  # it died while kept (the out-of-memory killer?): a fresh one instead
                    _stop(w)
            parent, child = ctx.Pipe()
            # Not daemonic: a stage may start processes of its own (daemonic ones may not). A worker whose
            # driver dies sees its pipe close and exits.
            proc = ctx.Process(target=_worker_main, args=(child,), daemon=False, name=f"ltxa-worker-{slot}")
            with _environment(envs[slot]):
                proc.start()
            child.close()
            w = _Worker(slot, proc, parent, envs[slot])
            w.conn.send(("factory", factory))
            return w

        def stop(w: _Worker) -> None:
            _stop(w)
            workers.pop(w.slot, None)

        def lost(w: _Worker, task: Task) -> None:
            w.proc.join(5)  # let it finish exiting, so that its exit code (the signal) is known
            stop(w)
            sup.died(task, death_cause(w.proc.exitcode))

        finished = False
        try:
            while True:
                for slot in range(len(envs)):
                    w = workers.get(slot)
                    if w is not None and w.task is not None:
                        continue
                    task = sup.next()
                    if task is None:
                        break
                    if w is None:
                        w = workers[slot] = start(slot)
                    w.task = task
                    w.conn.send(("task", task))
                busy = [w for w in workers.values() if w.task is not None]
                if not busy:
                    finished = True
                    return
                ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=POLL_S))
                for w in busy:
                    task = w.task
                    assert task is not None
                    if w.conn in ready:
                        try:
                            status, value = w.conn.recv()
                        except (EOFError, OSError, pickle.UnpicklingError):
                            lost(w, task)
                            continue
                        w.task = None
                        if status == "error":
                            raise value
                        sup.done(task)
                        yield value
                    elif w.proc.sentinel in ready:
                        lost(w, task)
                    elif sup.hung(task):
                        stop(w)
                        sup.died(task, hang_cause(job))
        finally:
            for w in list(workers.values()):
                alive = w.task is None and w.proc.is_alive()
                if finished and alive:
                    with contextlib.suppress(Exception):
                        w.conn.send(("release", None))
                        self._idle.append(w)
                        continue
                if alive:
                    with contextlib.suppress(Exception):
                        w.conn.send(None)
                w.proc.join(2 if alive else 0)
                stop(w)
            sup.cleanup()
