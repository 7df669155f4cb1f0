"""Resume state: the one owner of a build's `.state` folder.

Per stage (`manifests/.state/<table>/`): `plan.json` (the last plan: config hash and each partition's
input hash), `part-KEY.parquet` (a finished partition's rows) and `part-KEY.done` (its completion
marker: stage, version, config hash, input hash, row counts, the files it wrote). A partition is done
when its marker matches the plan's hashes and its table and outputs exist. Every file is written
atomically, the marker last, so a killed run leaves at worst an unmarked partition, which the next run
redoes. The pipeline, the take-down and `status` read and write this state only through this module.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .recipe import Recipe
from .storage import exclusive_lock, read_json, write_json_atomic, write_table_atomic

INVALIDATED = "removed"
"""The input hash an invalidated marker carries: it matches no plan, so its partition runs again."""


def build_lock(recipe: Recipe) -> contextlib.AbstractContextManager:
    """Held for a whole build: two builds of one recipe never write the same state."""
    return exclusive_lock(recipe.manifests_dir / ".state" / "build.lock")


@dataclass
class PartitionMarker:
    """What a finished partition's marker says."""

    stage: str
    version: str
    config_hash: str
    input_hash: str
    rows: int
    counts: dict[str, int]
    outputs: list[str]


class StageState:
    """The resume state of one stage (by the table it writes)."""

    def __init__(self, recipe: Recipe, table: str) -> None:
        self.recipe = recipe
        self.dir = recipe.manifests_dir / ".state" / table

    @property
    def watch_dir(self) -> Path:
        """Where the executors' watch files of this stage's workers go."""
        return self.dir / "watch"

    def _marker_path(self, key: str) -> Path:
        return self.dir / f"part-{key}.done"

    def part_path(self, key: str) -> Path:
        return self.dir / f"part-{key}.parquet"

    def marker(self, key: str) -> dict[str, Any] | None:
        return read_json(self._marker_path(key))

    # -------------------------------------------------------------------------------------- the plan

    def plan(self) -> dict[str, Any] | None:
        """The last plan: {"config_hash", "partitions": {key: input hash}}, or None before the first."""
        return read_json(self.dir / "plan.json")

    def write_plan(self, config_hash: str, input_hashes: dict[str, str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / "plan.json", {"config_hash": config_hash, "partitions": input_hashes})

    def previous_buckets(self) -> dict[str, int]:
        """The hash-bucket counts of the earlier plan by key prefix: keys `00003-of-00008` give {"": 8},
        `train-00001-of-00004` {"train-": 4}."""
        counts: dict[str, int] = {}
        for key in (self.plan() or {}).get("partitions", {}):
            m = re.fullmatch(r"(.*?)\d+-of-(\d+)", key)
            if m:
                counts.setdefault(m.group(1), int(m.group(2)))
        return counts

    def is_done(self, key: str, input_hash: str, config_hash: str) -> bool:
        """The partition's marker matches these hashes and its table and outputs exist."""
        m = self.marker(key)
        if not m or m.get("config_hash") != config_hash or m.get("input_hash") != input_hash:
            return False
        if not self.part_path(key).exists():
            return False
        return all(self.recipe.output_dir.joinpath(o).exists() for o in m.get("outputs", []))

    def progress(self) -> tuple[int, int] | None:
        """(partitions of the last plan whose markers match it, partitions planned), None before a plan.
        Outputs are not looked at: this is what `status` shows, cheaply."""
        plan = self.plan()
        if plan is None:
            return None
        done = 0
        for key, input_hash in plan["partitions"].items():
            m = self.marker(key)
            if m and m.get("input_hash") == input_hash and m.get("config_hash") == plan["config_hash"]:
                done += 1
        return done, len(plan["partitions"])

    # ------------------------------------------------------------------------------- one partition

    def begin(self, key: str) -> dict[str, Any] | None:
        """Before a partition runs: drop its marker, returning it. Were we killed after rewriting the
        table but before the new marker, a rerun under the old settings must not take the new table for
        the old one."""
        old = self.marker(key)
        self._marker_path(key).unlink(missing_ok=True)
        return old

    def commit(self, key: str, table: pa.Table, marker: PartitionMarker, old: dict[str, Any] | None) -> None:
        """After a partition ran: its table, the clean-up of outputs the old run wrote and this one did not,
        then its marker."""
        write_table_atomic(self.part_path(key), table)
        if old:
            self.remove_outputs(set(old.get("outputs", [])) - set(marker.outputs))
        write_json_atomic(self._marker_path(key), {**marker.__dict__, "outputs": sorted(marker.outputs)})

    def remove_outputs(self, outputs: set[str]) -> None:
        for o in outputs:
            with contextlib.suppress(FileNotFoundError):
                self.recipe.output_dir.joinpath(o).unlink()

    def invalidate(self, key: str) -> None:
        """Make a finished partition run again; its rerun also cleans up what it wrote."""
        m = self.marker(key)
        if m:
            write_json_atomic(self._marker_path(key), {**m, "input_hash": INVALIDATED})

    def finished_parts(self) -> Iterator[tuple[str, Path]]:
        """(key, table file) of every partition table on disk, in key order."""
        for part in sorted(self.dir.glob("part-*.parquet")):
            yield part.name[len("part-"): -len(".parquet")], part

    # ---------------------------------------------------------------------------- the merged table

    def keep_only(self, keys: set[str]) -> None:
        """Drop the partitions not in `keys` (a new plan no longer has them) and the files they wrote."""
        for marker in self.dir.glob("part-*.done"):
            key = marker.name[len("part-"): -len(".done")]
            if key not in keys:
                self.remove_outputs(set((self.marker(key) or {}).get("outputs", [])))
                marker.unlink()
        for key, part in list(self.finished_parts()):
            if key not in keys:
                part.unlink()

    def tables(self, keys: list[str]) -> list[pa.Table]:
        return [pq.read_table(self.part_path(k)) for k in keys]


def status_counts(table: pa.Table) -> dict[str, int]:
    """Rows by status (ok, skipped, failed)."""
    return dict(Counter(table.column("status").to_pylist()))
