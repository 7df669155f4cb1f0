"""Executors only schedule partitions. They call a picklable worker factory once per worker (the
factory builds the stage and runs its `setup()`) and the returned function once per partition, always
in a worker process: a worker that dies or hangs costs its partition's culprit item (`supervise`)."""

from __future__ import annotations

from ..recipe import Recipe
from .base import Executor
from .local import LocalExecutor
from .ray_cluster import RayExecutor


def make_executor(recipe: Recipe) -> Executor:
    """The executor the recipe asks for (Ray itself is imported only when a `RayExecutor` starts)."""
    if recipe.executor.kind == "local":
        return LocalExecutor(workers=recipe.executor.workers)
    if recipe.executor.kind == "ray":
        return RayExecutor(recipe.executor.ray)
    raise ValueError(f"unknown executor kind {recipe.executor.kind!r}")


__all__ = ["Executor", "make_executor"]
