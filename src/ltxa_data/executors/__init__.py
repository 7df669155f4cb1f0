"""Executors only schedule partitions. They call a picklable worker factory once per worker (the
factory builds the stage and runs its `setup()`) and the returned function once per partition, always
in a worker process: a worker that dies or hangs costs its partition's culprit item (`supervise`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from ..recipe import Recipe
from .jobs import Job

WorkerFactory = Callable[[], Callable[[Any], Any]]


class Executor(Protocol):
    """Runs `factory()` once per worker and the function it returns on each item; yields results
    as they finish (any order). An exception from a worker stops the map and is re-raised; a worker's
    death or hang is handled as `supervise.Supervisor` says."""

    def map(self, factory: WorkerFactory, items: Sequence[Any], job: Job | None = None) -> Iterator[Any]: ...

    def gpu_count(self) -> int:
        """GPUs the workers can use (on a cluster: in the whole cluster)."""
        ...


def make_executor(recipe: Recipe) -> Executor:
    """The executor the recipe asks for (Ray is imported only when chosen)."""
    if recipe.executor.kind == "local":
        from .local import LocalExecutor

        return LocalExecutor(workers=recipe.executor.workers)
    if recipe.executor.kind == "ray":
        from .ray_cluster import RayExecutor

        return RayExecutor(recipe.executor.ray)
    raise ValueError(f"unknown executor kind {recipe.executor.kind!r}")
