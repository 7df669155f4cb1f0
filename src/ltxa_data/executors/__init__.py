"""Executors only schedule partitions. They call a picklable worker factory once per worker (the
factory builds the stage and runs its `setup()`) and the returned function once per partition."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from ..recipe import Recipe

WorkerFactory = Callable[[], Callable[[Any], Any]]


class Executor(Protocol):
    """Runs `factory()` once per worker and the function it returns on each item; yields results
    as they finish (any order). An exception from a worker stops the map and is re-raised."""

    def map(self, factory: WorkerFactory, items: Sequence[Any]) -> Iterator[Any]: ...


def make_executor(recipe: Recipe) -> Executor:
    """The executor the recipe asks for."""
    from .local import LocalExecutor

    if recipe.executor.kind == "local":
        return LocalExecutor(workers=recipe.executor.workers)
    raise ValueError(f"unknown executor kind {recipe.executor.kind!r}")
