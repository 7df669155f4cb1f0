"""What a stage's workers get (a `Job`): resources, worker count, GPU slots, thread counts. Every decision that
depends on the executor kind (a local pool's GPU slots and host memory, a Ray cluster's GPUs) is made
here; the pipeline and the stages know nothing of kinds.

A stage declares what one worker needs as plain numbers (`cpus`, `gpus`, `memory_gb`) and the torch
devices its models run on; `worker_resources` turns that and the recipe's `executor.resources` override
into a `Resources`, and `plan_job` into the executor's `Job`."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import SystemicError
from ..memory import host_memory_available
from ..recipe import Recipe


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs. `gpus` may be a fraction (workers sharing a card)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float = 0.0


@dataclass
class Job:
    """A stage's map, as the executor sees it."""

    name: str = "map"
    watch_dir: Path | None = None
    """Where workers mirror their in-flight items (shared by every node); None: nothing is tracked."""
    item_timeout_s: float | None = None
    """No progress (no item started or finished) for this long: the worker is stopped as hung."""
    advice: str = "use fewer workers (executor.workers) or give each more memory"
    resources: Resources = field(default_factory=Resources)
    workers: int = 1
    gpu_slots: tuple[str, ...] = ()
    """Local executor: CUDA_VISIBLE_DEVICES of each worker of a GPU stage (one per slot)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables every worker starts with (thread counts)."""


class StageLike(Protocol):
    """What job planning reads of a stage (`stages.base.Stage` has it)."""

    name: str
    cpus: float
    gpus: float
    memory_gb: float
    recipe: Recipe
    crash_advice: str

    def devices(self) -> list[str]: ...

    def fit_memory(self, workers: int, device: str, gpu_count: int,
                   host_available: int | None) -> tuple[int, float, str | None]: ...


class GpuCounter(Protocol):
    def gpu_count(self) -> int: ...


def judges_host_memory(recipe: Recipe) -> bool:
    """Whether this machine's memory is the workers' (a local pool), so that preflight may refuse a stage
    whose one worker does not fit it; on a cluster each node judges its own."""
    return recipe.executor.kind == "local"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's cpuset), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_threads(setting: int | str, workers: int, cpus: float, local: bool) -> int:
    """torch/BLAS threads per worker: the recipe's number, or for `auto` the usable cores over the workers
    (local) or the CPUs each actor asks for (Ray), at least 1."""
    if setting != "auto":
        return int(setting)
    return max(1, usable_cores() // max(workers, 1)) if local else max(1, round(cpus))


def thread_env(threads: int) -> dict[str, str]:
    """Thread counts of the numeric libraries, set in a worker's environment before it starts: BLAS
    libraries read them once, when they load."""
    return {var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "POLARS_MAX_THREADS")}


def worker_resources(stage: StageLike, gpus_available: bool) -> Resources:
    """The stage's resources for this recipe: a GPU when a device is `cuda` (or `auto` where GPUs exist),
    none when every device is `cpu`, then the recipe's override (`executor.resources.<stage>`)."""
    devs = [d.split(":")[0] for d in stage.devices()]
    on_gpu = "cuda" in devs or ("auto" in devs and gpus_available)
    r = Resources(stage.cpus, max(stage.gpus, 1.0 / stage.recipe.executor.workers_per_gpu) if on_gpu else stage.gpus,
                  stage.memory_gb)
    over = stage.recipe.executor.resources.get(stage.name)
    if over is not None:
        r = Resources(over.cpus if over.cpus is not None else r.cpus,
                      over.gpus if over.gpus is not None else r.gpus,
                      over.memory_gb if over.memory_gb is not None else r.memory_gb)
    return r


def stage_device(stage: StageLike, gpus_available: bool) -> str:
    """The device a stage's workers run on: `cuda` when its resources hold a GPU (`worker_resources`), else
    `cpu`. Preflight's memory check and `plan_job` both take it from here."""
    return "cuda" if worker_resources(stage, gpus_available).gpus > 0 else "cpu"


def plan_job(stage: StageLike, executor: GpuCounter, watch_dir: Path, notes: list[str] | None = None) -> Job:
    """How the executor runs `stage`: its resources, workers (fitted to memory: `Stage.fit_memory`), GPU
    slots and crash policy. What was lowered to fit is appended to `notes`."""
    cfg = stage.recipe.executor
    local = cfg.kind == "local"
    gpu_count = functools.cache(executor.gpu_count)  # on Ray a call to the cluster: at most once
    needs_gpu_count = any(d == "auto" for d in stage.devices())
    res = worker_resources(stage, gpus_available=needs_gpu_count and gpu_count() > 0)
    slots: tuple[str, ...] = ()
    if res.gpus > 0 and local:
        ids = [str(g) for g in (cfg.gpus if cfg.gpus is not None else range(gpu_count()))]
        if not ids:
            raise SystemicError(f"stage '{stage.name}' runs on a GPU (device {', '.join(stage.devices())}) but none "
                                "is visible: set its device to cpu, or list GPUs in executor.gpus")
        per_card = max(1, round(1 / res.gpus)) if res.gpus <= 1 else 1
        width = max(1, round(res.gpus)) if res.gpus > 1 else 1
        slots = tuple(",".join(ids[i:i + width]) for _ in range(per_card)
                      for i in range(0, len(ids) - width + 1, width))
    # On Ray: one actor per GPU share of the cluster.
    slot_count = max(1, int(gpu_count() / res.gpus)) if res.gpus > 0 and not local else len(slots)
    over = cfg.resources.get(stage.name)
    workers = over.workers if over is not None and over.workers else (slot_count or cfg.workers)
    workers, memory_gb, note = stage.fit_memory(workers, stage_device(stage, needs_gpu_count and gpu_count() > 0),
                                                len(set(slots)) or 1, host_memory_available() if local else None)
    if note and notes is not None:
        notes.append(note)
    if memory_gb and not res.memory_gb:
        res = Resources(res.cpus, res.gpus, round(memory_gb, 2))
    return Job(name=stage.name, watch_dir=watch_dir, item_timeout_s=cfg.item_timeout_s, advice=stage.crash_advice,
               resources=res, workers=workers, gpu_slots=slots[:workers] if slots else (),
               env=thread_env(worker_threads(cfg.threads_per_worker, workers, res.cpus, local)))
