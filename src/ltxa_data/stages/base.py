"""The Stage interface. Stages know nothing of executors: an executor calls `setup()` once per
worker and `process(partition)` per unit of work, and the pipeline writes what `process` returns."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import polars as pl
import pyarrow as pa

from .. import isolation
from ..errors import DiskFullError, SystemicError, is_disk_full, is_out_of_memory
from ..ids import content_fingerprint, video_id_of
from ..isolation import ItemKilled
from ..media import MediaError
from ..recipe import Recipe
from ..storage import frame_hash

T = TypeVar("T")


@dataclass
class Partition:
    """One unit of resumable work: its inputs travel with it, so a worker needs nothing else.

    `key` names the partition's marker and table; the same key must always mean the same slice of
    the work (a key whose outputs another key could write would let cleanups delete live files).
    """

    key: str
    data: dict[str, Any]
    input_hash: str = ""


@dataclass
class StageResult:
    """What `process` returns: manifest rows, plus files it wrote outside the manifests (shards)."""

    rows: list[dict]
    outputs: list[str] = field(default_factory=list)


class Stage(ABC):
    """A pipeline stage: reads manifest tables, writes one table."""

    name: ClassVar[str]
    """The stage's name: `--only`, `executor.resources.<name>`, status and the progress bar."""
    table: ClassVar[str]
    """The table this stage writes (`manifests/<table>.parquet`, its schema in `schemas.TABLES`)."""
    reads: ClassVar[tuple[str, ...]] = ()
    """Tables the stage plans from."""
    sections: ClassVar[tuple[str, ...]] = ()
    """Recipe sections that change this stage's output (hashed into completion markers)."""
    version: ClassVar[str] = "1"
    """Bump when the stage's logic changes its output."""
    cpus: ClassVar[float] = 1.0
    """CPU cores one worker needs (`executor.resources.<stage>` overrides it; `executors.jobs`)."""
    gpus: ClassVar[float] = 0.0
    """GPUs one worker needs, at least; a `cuda` device gives one (or a share: `executor.workers_per_gpu`)."""
    memory_gb: ClassVar[float] = 0.0
    """Host memory one worker needs (0: unknown, or fitted by `fit_memory`)."""
    previous_buckets: dict[str, int]
    """The bucket counts of this stage's previous plan by partition-key prefix ("" for plain `00003-of-00008`
    keys; set by the pipeline before `plan`), for `bucket_count`."""
    in_driver: ClassVar[bool] = False
    """Runs in the driver process: only for stages that read manifest tables and never a media file."""
    crash_advice: ClassVar[str] = "use fewer workers (executor.workers)"
    """What to change when this stage's workers die on every item."""

    def devices(self) -> list[str]:
        """The torch devices this stage's models run on (a `cuda` one makes it a GPU stage)."""
        return []

    def fit_memory(self, workers: int, device: str, gpu_count: int,
                   host_available: int | None) -> tuple[int, float, str | None]:
        """Runs in the driver before the workers start: (the workers, at most `workers`, whose memory
        `host_available` bytes hold (None: not this machine's to judge, e.g. on Ray), the host GiB one
        worker needs (0: unknown), a note when anything was lowered). May lower settings of
        `self.recipe` that change only speed (batch sizes); raises `SystemicError` with the numbers when
        not even one worker fits."""
        return workers, 0.0, None

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.previous_buckets = {}

    @abstractmethod
    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        """Split the work into partitions (runs in the driver; must be cheap and deterministic)."""

    def cost(self, partition: Partition) -> float:
        """The partition's work relative to the others', so that the largest start first and the stage's last
        partitions do not leave workers idle: its videos' seconds when it carries them, else its rows."""
        videos = partition.data.get("videos")
        if isinstance(videos, pl.DataFrame) and "duration_s" in videos.columns:
            return float(videos.get_column("duration_s").sum() or 0.0)
        return float(sum(len(v) for v in partition.data.values() if isinstance(v, (pl.DataFrame, list))))

    def setup(self) -> None:  # noqa: B027 - optional hook; most stages load nothing
        """Load models and other per-worker state. Called once per worker before `process`."""

    @abstractmethod
    def process(self, partition: Partition) -> StageResult:
        """Do one partition's work and return its rows."""

    def before_run(self, todo: list[Partition]) -> None:  # noqa: B027 - optional hook
        """In the driver, before the partitions `todo` run (may add to their data, not to their hash)."""

    def after_run(self) -> None:  # noqa: B027 - optional hook
        """In the driver, after the run's partitions, whether they finished or not."""

    def finalize(self, table: pa.Table) -> pa.Table:
        """A last look at the merged table, for rules that need every partition (runs in the driver)."""
        return table

    def config_hash(self) -> str:
        return frame_hash(self.table, self.version, self.recipe.section_hash(*self.sections))

    def check_unchanged(self, video: dict) -> None:
        """Raise `MediaError` when a video's file is gone, or is no longer the content the scan fingerprinted (its
        video_id), so that a file a sync job or a person changed mid-build costs its row, never the build."""
        path = Path(video["path"])
        try:
            now = video_id_of(content_fingerprint(path, self.recipe.scan.fingerprint_bytes))
        except FileNotFoundError:
            raise MediaError(f"{path}: the file is gone since the scan: this build leaves it out; the next build "
                             "forgets it, or takes it again if it comes back") from None
        except OSError as e:
            raise MediaError(f"{path}: the file cannot be read since the scan ({e})") from None
        if now != video["video_id"]:
            raise MediaError(f"{path}: the file changed since the scan (its content is no longer video "
                             f"{video['video_id']}): this build leaves it out; the next build scans it again as a new "
                             "video and drops the old one's rows")


def bucket_count(n_items: int, per_partition: int, previous: int | None = None) -> int:
    """A power of two near n_items / per_partition: adding items moves few of them to new buckets. The
    previous plan's count is kept while its partitions hold a quarter to twice `per_partition` items on
    average, so that adding or removing (a take-down) a few items near a power of two does not move them all."""
    if previous and per_partition / 4 <= n_items / previous <= 2 * per_partition:
        return previous
    want = max(1, -(-n_items // per_partition))
    return 1 << (want - 1).bit_length()


def bucket_of(value: str, n_buckets: int) -> int:
    """A stable bucket for a key (its hash), so one new video changes only its own partition."""
    return int(hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:12], 16) % n_buckets


def hash_buckets(items: Sequence[T], key_of: Callable[[T], str], per_partition: int,
                 previous: int | None = None) -> list[tuple[str, list[T]]]:
    """(partition key, items) by hash bucket of each item's key, in bucket order (`bucket_count`)."""
    n = bucket_count(len(items), per_partition, previous)
    buckets: dict[int, list[T]] = {}
    for item in items:
        buckets.setdefault(bucket_of(key_of(item), n), []).append(item)
    return [(f"{b:05d}-of-{n:05d}", buckets[b]) for b in sorted(buckets)]


def partitions_by(
    key: str, per_partition: int, tables: dict[str, pl.DataFrame], *, extra: Sequence[Any] = (),
    previous: int | None = None,
) -> list[Partition]:
    """Partitions by hash buckets of `key` (e.g. video_id); each carries every table's rows for its
    keys. Same inputs -> same partitions; an added key changes only its bucket's partition."""
    values = sorted(set().union(*(set(t.get_column(key).to_list()) for t in tables.values() if key in t.columns)))
    parts = []
    for part_key, chunk in hash_buckets(values, str, per_partition, previous):
        data = {
            name: (t.filter(pl.col(key).is_in(chunk)).sort(t.columns[0]) if key in t.columns else t)
            for name, t in tables.items()
        }
        parts.append(Partition(part_key, data, frame_hash(*data.values(), *extra)))
    return parts


class Faults:
    """Sorts the exceptions of one partition's items: input faults become failed rows, systemic
    faults stop the run.

    Media and file errors are input faults. Out of memory and `SystemicError` are systemic. Any
    other exception is recorded too, unless every item of the partition fails with the same
    exception type (`check`): that is a fault of the pipeline or a model, not of the inputs.
    """

    def __init__(self) -> None:
        self.unexpected: list[Exception] = []

    @staticmethod
    def raise_if_systemic(e: BaseException) -> None:
        """Raise when `e` stops the run whatever the other items do (out of memory, a full disk,
        `SystemicError`)."""
        if isinstance(e, (SystemicError, MemoryError)):
            raise e
        if is_disk_full(e):
            raise DiskFullError(str(e)) from e
        if is_out_of_memory(e):
            raise SystemicError(str(e)) from e

    def reason(self, e: Exception) -> str:
        """The failed row's reason for `e`, or raise when `e` is systemic."""
        if isinstance(e, ItemKilled):
            return str(e)
        self.raise_if_systemic(e)
        if isinstance(e, (MediaError, OSError)):
            return str(e)
        self.unexpected.append(e)
        return f"{type(e).__name__}: {e}"

    def check(self, n_items: int) -> None:
        """Raise when all `n_items` items failed with one unexpected exception type."""
        if n_items >= 2 and len(self.unexpected) == n_items and len({type(e) for e in self.unexpected}) == 1:
            e = self.unexpected[0]
            raise SystemicError(f"all {n_items} items of a partition failed with {type(e).__name__}: {e} "
                                "(a fault of the pipeline or a model, not of the inputs)") from e


def guarded(items: Iterable[T], fn: Callable[[T], list[dict]], on_error: Callable[[T, str], dict | list[dict]],
            subject: Callable[[T], str]) -> list[dict]:
    """Run `fn` per item; an input fault becomes its failed row(s), a systemic fault stops the run (`Faults`).
    `subject` names the item (its file) to the executor, so that an item that kills its worker costs
    only its own row."""
    items = list(items)
    rows: list[dict] = []
    faults = Faults()
    for item in items:
        try:
            with isolation.item(subject(item)):
                rows.extend(fn(item))
        except Exception as e:
            failed = on_error(item, faults.reason(e))
            rows.extend(failed if isinstance(failed, list) else [failed])
    faults.check(len(items))
    return rows
