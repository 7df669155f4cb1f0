"""Runs stages in order, resumably.

Per stage: plan partitions from the input tables; skip those whose completion marker matches
(same stage version and config hash, same input hash, outputs present); run the rest on the
executor; merge the partition tables into `manifests/<stage>.parquet`. A worker writes its
partition table, then its outputs, then its marker, each atomically, so a killed run leaves at
worst an unmarked partition, which the next run redoes.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from . import removals
from .analysis.attribute_labels import labels_problems
from .backends import backend_problems
from .disk import disk_full_error, space_problems
from .errors import DiskFullError, SystemicError, is_disk_full
from .executors import Executor, make_executor
from .executors.jobs import judges_host_memory, plan_job, stage_device
from .ltx.conditions import text_encoder_problems
from .memory import host_memory_available, resolve_device
from .recipe import Recipe, RecipeError, missing_inputs
from .reporting.report import report_is_current, write_report
from .schemas import conform, to_table
from .stages import STAGE_NAMES, STAGES, unknown_stage
from .stages.base import Partition, Stage
from .state import PartitionMarker, StageState, build_lock, status_counts
from .storage import parquet_bytes, read_frame, sweep_temp_files, table_path, write_bytes_atomic


@dataclass
class PartitionDone:
    key: str
    counts: dict[str, int]
    seconds: float


@dataclass
class StageReport:
    """What one stage did in this run."""

    stage: str
    table: str
    partitions: int
    ran: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """What the run changed on its own (fewer workers or a smaller batch to fit memory)."""


def run_partition(stage: Stage, state: StageState, config_hash: str, part: Partition) -> PartitionDone:
    """Process one partition and commit it: table, outputs, then marker (`state.StageState`)."""
    t0 = time.perf_counter()
    old = state.begin(part.key)
    result = stage.process(part)
    table = to_table(stage.table, result.rows)
    counts = status_counts(table)
    state.commit(part.key, table, PartitionMarker(stage.table, stage.version, config_hash, part.input_hash,
                                                  table.num_rows, counts, result.outputs), old)
    return PartitionDone(part.key, counts, time.perf_counter() - t0)


@dataclass
class PartitionWorker:
    """Picklable worker factory: builds the stage in the worker and runs its setup once."""

    stage_cls: type[Stage]
    recipe: Recipe
    state: StageState
    config_hash: str

    def __call__(self):
        # The BLAS/OpenMP variables are in the worker's environment from its start (`Job.env`, which resolves
        # `threads_per_worker: auto` for the stage's workers).
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
        stage = self.stage_cls(self.recipe)
        stage.setup()
        return partial(run_partition, stage, self.state, self.config_hash)


def preflight(recipe: Recipe) -> None:
    """Refuse a build that cannot produce a real result, saying everything that is missing."""

    problems = backend_problems(recipe) + missing_inputs(recipe) + removals.problems(recipe) + labels_problems(recipe)
    if recipe.export.text_encoder:  # the export's text encoder: refused now, not after the build

        problems += text_encoder_problems(recipe)
    problems += [f"executor.resources.{k}: {unknown_stage(k)}" for k in recipe.executor.resources
                 if k not in STAGE_NAMES]
    if not problems and judges_host_memory(recipe):
        problems += _memory_problems(recipe)
    if not problems:
        problems += space_problems(recipe)
    if problems:
        raise RecipeError("cannot build:\n  - " + "\n  - ".join(problems))


def _memory_problems(recipe: Recipe) -> list[str]:
    """Whether one worker of each stage fits this machine's memory at all (the shard stage's encoders)."""

    problems = []
    for stage_cls in STAGES:
        stage = stage_cls(recipe)
        device = stage_device(stage, resolve_device("auto") == "cuda")
        try:
            stage.fit_memory(1, device, 1, host_memory_available())
        except SystemicError as e:
            problems.append(str(e))
    return problems


def run_stage(recipe: Recipe, stage_cls: type[Stage], executor: Executor, progress: bool = True) -> StageReport:
    """Plan, run and merge one stage."""
    t0 = time.perf_counter()
    stage = stage_cls(recipe)
    state = StageState(recipe, stage.table)
    for name in stage.reads:
        if not table_path(recipe.manifests_dir, name).exists():
            raise SystemicError(f"stage '{stage.name}' reads table '{name}', which has not been built: "
                                "run the stages before it (or build without --only)")
    tables = {name: read_frame(recipe.manifests_dir, name) for name in stage.reads}
    stage.previous_buckets = state.previous_buckets()
    parts = stage.plan(tables)
    config_hash = stage.config_hash()
    state.write_plan(config_hash, {p.key: p.input_hash for p in parts})
    todo = sorted((p for p in parts if not state.is_done(p.key, p.input_hash, config_hash)), key=stage.cost,
                  reverse=True)
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
                run_partition(stage, state, config_hash, part)
                bar.update(1)
        elif todo:
            job = plan_job(stage, executor, state.watch_dir, notes)
            for note in notes:
                tqdm.write(note, file=sys.stderr)
            # stage.recipe: the settings fitted to memory (speed-only fields, not in the config hash)
            worker = PartitionWorker(stage_cls, stage.recipe, state, config_hash)
            for _done in executor.map(worker, todo, job):
                bar.update(1)
    finally:
        bar.close()
        if todo:
            stage.after_run()
    table = merge_partitions(state, stage, [p.key for p in parts])
    return StageReport(stage.name, stage.table, len(parts), len(todo), status_counts(table),
                       time.perf_counter() - t0, notes)


def merge_partitions(state: StageState, stage: Stage, keys: list[str]) -> pa.Table:
    """Concatenate the planned partitions into the stage's table; drop stale partitions and their
    outputs. The table is rewritten only when its bytes change."""
    name = stage.table
    state.keep_only(set(keys))
    tables = state.tables(keys)
    merged = to_table(name, []) if not tables else conform(name, pa.concat_tables(tables))
    merged = conform(name, stage.finalize(merged))
    data = parquet_bytes(merged)
    dest = table_path(state.recipe.manifests_dir, name)
    if not dest.exists() or dest.read_bytes() != data:
        write_bytes_atomic(dest, data)
    return merged


def _fell_under_removals(recipe: Recipe, stage: str) -> bool:
    """After `stage`: whether this build found videos that earlier take-downs cover (copies of removed videos,
    a removed person's voice or label) and added them to the removals (`removals.detect`)."""

    found = removals.detect(recipe, stage)
    added = removals.append(recipe, found) if found else 0
    if added:
        hows = Counter(r["how"] for r in found)
        tqdm.write(f"{added} video(s) fall under earlier removals ({', '.join(f'{n} {h}' for h, n in hows.items())}):"
                   " removed too; starting over from scan (finished partitions are kept; a build with --only leaves "
                   "that to the next full build)", file=sys.stderr)
    return added > 0


def write_build_report(recipe: Recipe) -> Path | None:
    """The HTML report at the end of a full build, unless the one there was written from what the build holds now
    (a build that ran nothing). The build's work is done and kept whatever happens here, so a report that fails
    says so on stderr (and how to retry) instead of failing the build."""

    try:
        if report_is_current(recipe):
            return recipe.report_dir / "index.html"
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
    if [s.name for s in stages] != list(STAGE_NAMES):
        raise ValueError(f"stages must be {list(STAGE_NAMES)} in this order")
    unknown = [unknown_stage(n) for n in only or [] if n not in STAGE_NAMES]
    if unknown:
        raise RecipeError("--only: " + "; ".join(unknown))
    preflight(recipe)
    owned = executor is None
    executor = executor or make_executor(recipe)
    reports = []
    try:
        with build_lock(recipe):
            sweep_temp_files(recipe.manifests_dir, recipe.output_dir)
            removals.enforce(recipe)
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
    except (OSError, DiskFullError) as e:
        if isinstance(e, DiskFullError) or is_disk_full(e):
            raise disk_full_error(recipe, e) from e
        raise
    finally:
        if owned and hasattr(executor, "shutdown"):
            executor.shutdown()
    return reports
