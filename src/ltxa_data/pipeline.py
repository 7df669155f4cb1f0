"""Runs stages in order, resumably.

Per stage: plan partitions from the input tables; skip those whose completion marker matches
(same stage version and config hash, same input hash, outputs present); run the rest on the
executor; merge the partition tables into `manifests/<stage>.parquet`. A worker writes its
partition table, then its outputs, then its marker, each atomically, so a killed run leaves at
worst an unmarked partition, which the next run redoes.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from .backends import backend_problems
from .errors import SystemicError
from .executors import Executor, make_executor
from .executors.supervise import Job
from .memory import host_memory_available
from .recipe import Recipe, RecipeError, missing_inputs
from .schemas import conform, to_table
from .stages import STAGES
from .stages.base import Partition, Resources, Stage
from .storage import (
    exclusive_lock,
    parquet_bytes,
    read_frame,
    read_json,
    sweep_temp_files,
    table_path,
    write_bytes_atomic,
    write_json_atomic,
    write_table_atomic,
)


@dataclass
class PartitionDone:
    key: str
    counts: dict[str, int]
    seconds: float


@dataclass
class StageReport:
    """What one stage did in this run."""

    stage: str
    partitions: int
    ran: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """What the run changed on its own (fewer workers or a smaller batch to fit memory)."""


def state_dir(recipe: Recipe, stage: str) -> Path:
    return recipe.manifests_dir / ".state" / stage


def _marker_path(sdir: Path, key: str) -> Path:
    return sdir / f"part-{key}.done"


def _part_path(sdir: Path, key: str) -> Path:
    return sdir / f"part-{key}.parquet"


def read_marker(sdir: Path, key: str) -> dict[str, Any] | None:
    return read_json(_marker_path(sdir, key))


def _is_done(recipe: Recipe, sdir: Path, part: Partition, config_hash: str) -> bool:
    m = read_marker(sdir, part.key)
    if not m or m.get("config_hash") != config_hash or m.get("input_hash") != part.input_hash:
        return False
    if not _part_path(sdir, part.key).exists():
        return False
    return all(recipe.output_dir.joinpath(o).exists() for o in m.get("outputs", []))


def run_partition(stage: Stage, sdir: Path, config_hash: str, part: Partition) -> PartitionDone:
    """Process one partition and commit it: table, outputs, then marker."""
    t0 = time.perf_counter()
    old = read_marker(sdir, part.key)
    # The old marker goes first: were we killed after rewriting the table but before the new
    # marker, a rerun under the old settings must not take the new table for the old one.
    _marker_path(sdir, part.key).unlink(missing_ok=True)
    result = stage.process(part)
    table = to_table(stage.name, result.rows)
    write_table_atomic(_part_path(sdir, part.key), table)
    if old:
        _remove_outputs(stage.recipe, set(old.get("outputs", [])) - set(result.outputs))
    counts = dict(Counter(table.column("status").to_pylist()))
    write_json_atomic(
        _marker_path(sdir, part.key),
        {
            "stage": stage.name,
            "version": stage.version,
            "config_hash": config_hash,
            "input_hash": part.input_hash,
            "rows": table.num_rows,
            "counts": counts,
            "outputs": sorted(result.outputs),
        },
    )
    return PartitionDone(part.key, counts, time.perf_counter() - t0)


def _remove_outputs(recipe: Recipe, outputs: set[str]) -> None:
    for o in outputs:
        with contextlib.suppress(FileNotFoundError):
            recipe.output_dir.joinpath(o).unlink()


@dataclass
class PartitionWorker:
    """Picklable worker factory: builds the stage in the worker and runs its setup once."""

    stage_cls: type[Stage]
    recipe: Recipe
    sdir: Path
    config_hash: str

    def __call__(self):
        # The BLAS/OpenMP variables are in the worker's environment from its start (`Job.env`).
        import torch

        torch.set_num_threads(self.recipe.executor.threads_per_worker)
        stage = self.stage_cls(self.recipe)
        stage.setup()
        return partial(run_partition, stage, self.sdir, self.config_hash)


def thread_env(threads: int) -> dict[str, str]:
    """Thread counts of the numeric libraries, set in a worker's environment before it starts: BLAS
    libraries read them once, when they load."""
    return {var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "POLARS_MAX_THREADS")}


def preflight(recipe: Recipe) -> None:
    """Refuse a build that cannot produce a real result, saying everything that is missing."""
    from .removals import problems as removal_problems

    problems = backend_problems(recipe) + missing_inputs(recipe) + removal_problems(recipe)
    if recipe.export.text_encoder:  # the export's text encoder: refused now, not after the build
        from .ltx.conditions import text_encoder_problems

        problems += text_encoder_problems(recipe)
    names = [s.name for s in STAGES]
    problems += [f"executor.resources names no stage: {k!r} (stages: {', '.join(names)})"
                 for k in recipe.executor.resources if k not in names]
    if not problems and recipe.executor.kind == "local":
        problems += _memory_problems(recipe)
    if problems:
        raise RecipeError("cannot build:\n  - " + "\n  - ".join(problems))


def _memory_problems(recipe: Recipe) -> list[str]:
    """Whether one worker of each stage fits this machine's memory at all (the shard stage's encoders)."""
    from .memory import resolve_device

    problems = []
    for stage_cls in STAGES:
        stage = stage_cls(recipe)
        device = next((resolve_device(d.split(":")[0]) for d in stage.devices()), "cpu")
        try:
            stage.fit_memory(1, device, 1, host_memory_available())
        except SystemicError as e:
            problems.append(str(e))
    return problems


def run_stage(recipe: Recipe, stage_cls: type[Stage], executor: Executor, progress: bool = True) -> StageReport:
    """Plan, run and merge one stage."""
    t0 = time.perf_counter()
    stage = stage_cls(recipe)
    sdir = state_dir(recipe, stage.name)
    sdir.mkdir(parents=True, exist_ok=True)
    for name in stage.reads:
        if not table_path(recipe.manifests_dir, name).exists():
            raise SystemicError(f"stage '{stage.name}' reads table '{name}', which has not been built: "
                                "run the stages before it (or build without --only)")
    tables = {name: read_frame(recipe.manifests_dir, name) for name in stage.reads}
    stage.previous_buckets = previous_buckets(read_json(sdir / "plan.json"))
    parts = stage.plan(tables)
    config_hash = stage.config_hash()
    write_json_atomic(sdir / "plan.json", {"config_hash": config_hash,
                                           "partitions": {p.key: p.input_hash for p in parts}})
    todo = [p for p in parts if not _is_done(recipe, sdir, p, config_hash)]
    bar = tqdm(total=len(parts), initial=len(parts) - len(todo), desc=f"{stage.name:>10}", unit="part",
               disable=not progress, leave=True, dynamic_ncols=True)
    notes: list[str] = []
    try:
        if todo:
            stage.before_run(todo)
        if stage.in_driver:  # tables only, never a media file
            if todo:
                stage.setup()
            for part in todo:
                run_partition(stage, sdir, config_hash, part)
                bar.update(1)
        elif todo:
            job = stage_job(stage, executor, sdir / "watch", notes)
            for note in notes:
                tqdm.write(note, file=sys.stderr)
            # stage.recipe: the settings fitted to memory (speed-only fields, not in the config hash)
            worker = PartitionWorker(stage_cls, stage.recipe, sdir, config_hash)
            for _done in executor.map(worker, todo, job):
                bar.update(1)
    finally:
        bar.close()
        if todo:
            stage.after_run()
    table = merge_partitions(recipe, stage, [p.key for p in parts])
    counts = dict(Counter(table.column("status").to_pylist()))
    return StageReport(stage.name, len(parts), len(todo), counts, time.perf_counter() - t0, notes)


def previous_buckets(plan: dict | None) -> int | None:
    """The hash-bucket count of a stage's earlier plan (keys `00003-of-00008`), None if it had none."""
    for key in (plan or {}).get("partitions", {}):
        m = re.fullmatch(r"\d+-of-(\d+)", key)
        if m:
            return int(m.group(1))
    return None


def stage_job(stage: Stage, executor: Executor, watch_dir: Path, notes: list[str] | None = None) -> Job:
    """How the executor runs `stage`: its resources, workers (fitted to memory: `Stage.fit_memory`),
    GPU slots and crash policy. What was lowered to fit is appended to `notes`."""
    cfg = stage.recipe.executor
    local = cfg.kind == "local"
    gpu_count = functools.cache(executor.gpu_count)  # on Ray a call to the cluster: at most once
    needs_gpu_count = any(d == "auto" for d in stage.devices())
    res = stage.worker_resources(gpus_available=needs_gpu_count and gpu_count() > 0)
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
    workers, memory_gb, note = stage.fit_memory(workers, "cuda" if res.gpus > 0 else "cpu",
                                                len(set(slots)) or 1, host_memory_available() if local else None)
    if note and notes is not None:
        notes.append(note)
    if memory_gb and not res.memory_gb:
        res = Resources(res.cpus, res.gpus, round(memory_gb, 2))
    return Job(name=stage.name, watch_dir=watch_dir, item_timeout_s=cfg.item_timeout_s, advice=stage.crash_advice,
               resources=res, workers=workers, gpu_slots=slots[:workers] if slots else (),
               env=thread_env(cfg.threads_per_worker))


def merge_partitions(recipe: Recipe, stage: Stage, keys: list[str]) -> pa.Table:
    """Concatenate the planned partitions into the stage's table; drop stale partitions and their
    outputs. The table is rewritten only when its bytes change."""
    name = stage.name
    sdir = state_dir(recipe, name)
    wanted = set(keys)
    for marker in sdir.glob("part-*.done"):
        key = marker.name[len("part-") : -len(".done")]
        if key not in wanted:
            m = read_marker(sdir, key) or {}
            _remove_outputs(recipe, set(m.get("outputs", [])))
            marker.unlink()
    for part in sdir.glob("part-*.parquet"):
        if part.name[len("part-") : -len(".parquet")] not in wanted:
            part.unlink()
    tables = [pq.read_table(_part_path(sdir, k)) for k in keys]
    merged = to_table(name, []) if not tables else conform(name, pa.concat_tables(tables))
    merged = conform(name, stage.finalize(merged))
    data = parquet_bytes(merged)
    dest = table_path(recipe.manifests_dir, name)
    if not dest.exists() or dest.read_bytes() != data:
        write_bytes_atomic(dest, data)
    return merged


def _fell_under_removals(recipe: Recipe, stage: str) -> bool:
    """After `stage`: whether this build found videos that earlier take-downs cover (copies of removed videos,
    a removed person's voice or label) and added them to the removals (`removals.detect`)."""
    from . import removals

    found = removals.detect(recipe, stage)
    added = removals.append(recipe, found) if found else 0
    if added:
        hows = Counter(r["how"] for r in found)
        tqdm.write(f"{added} video(s) fall under earlier removals ({', '.join(f'{n} {h}' for h, n in hows.items())}):"
                   " removed too; starting over from scan (finished partitions are kept; a build with --only leaves "
                   "that to the next full build)", file=sys.stderr)
    return added > 0


def write_build_report(recipe: Recipe) -> Path | None:
    """The HTML report at the end of a full build. The build's work is done and kept whatever happens
    here, so a report that fails says so on stderr (and how to retry) instead of failing the build."""
    from .reporting.report import write_report

    try:
        return write_report(recipe)
    except Exception as e:
        print(f"warning: build '{recipe.name}' finished, but its report failed: {type(e).__name__}: {e} "
              "(`ltxa-data report RECIPE` writes it again)", file=sys.stderr)
        return None


def build(
    recipe: Recipe,
    only: list[str] | None = None,
    progress: bool = True,
    executor: Executor | None = None,
    stages: Sequence[type[Stage]] = STAGES,
) -> list[StageReport]:
    """Run the pipeline (or the named stages, in pipeline order) and return what each stage did.
    `stages` replaces the pipeline's stage classes (same names, same order), e.g. with a test double."""
    names = [s.name for s in STAGES]
    if [s.name for s in stages] != names:
        raise ValueError(f"stages must be {names} in this order")
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        raise RecipeError(f"unknown stage(s) {unknown}; stages are named by the table they write: {names}")
    preflight(recipe)
    owned = executor is None
    executor = executor or make_executor(recipe)
    reports = []
    try:
        with exclusive_lock(recipe.manifests_dir / ".state" / "build.lock"):
            sweep_temp_files(recipe.manifests_dir, recipe.output_dir)
            from .removals import enforce

            enforce(recipe)
            todo = [s for s in stages if not only or s.name in only]
            i = 0
            while i < len(todo):
                reports.append(run_stage(recipe, todo[i], executor, progress=progress))
                if _fell_under_removals(recipe, todo[i].name) and not only:
                    # Start over: scan leaves the videos out, and every partition that held them reruns.
                    reports, i = [], 0
                    continue
                i += 1
            if recipe.report.enabled and not only:
                write_build_report(recipe)
    finally:
        if owned and hasattr(executor, "shutdown"):
            executor.shutdown()
    return reports
