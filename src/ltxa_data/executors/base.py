"""The executor interface: what the build loop asks of a local pool or a Ray cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

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
