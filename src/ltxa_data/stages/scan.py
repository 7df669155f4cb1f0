"""scan: find the input videos, fingerprint and probe them. Rejects are rows that are not ok; a file a take-down
removed (`removals`: its path or its bytes) gets no row."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import polars as pl
import pyarrow as pa

from ..gates import failure
from ..ids import content_fingerprint, short_hash, video_id_of
from ..media import probe
from ..recipe import Recipe
from ..removals import Removals
from ..schemas import blank_row
from ..storage import frame_hash
from .base import Partition, Stage, StageResult, guarded, hash_buckets

_GLOB_CHARS = "*?["


def find_inputs(recipe: Recipe) -> list[tuple[str, str]]:
    """(absolute path, path relative to its input root) of every input file, sorted, deduplicated."""
    exts = {e.lower() for e in recipe.input.extensions}
    found: dict[str, str] = {}
    for raw in recipe.input.paths:
        p = recipe.resolve(raw)
        if any(ch in raw for ch in _GLOB_CHARS):
            anchor = Path(p.anchor)
            fixed = itertools.takewhile(lambda part: not any(ch in part for ch in _GLOB_CHARS), p.parts)
            root = Path(*fixed)
            files = [f for f in anchor.glob(str(p.relative_to(anchor))) if f.is_file() and f.suffix.lower() in exts]
        elif p.is_file() and p.suffix.lower() == ".txt":
            root = p.parent
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
            files = [(root / ln) for ln in lines if ln and not ln.startswith("#")]
        elif p.is_dir():
            root = p
            files = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts]
        else:
            root, files = p.parent, [p]
        for f in files:
            f = f.absolute()
            rel = f.relative_to(root) if f.is_relative_to(root) else Path(f.name)
            found.setdefault(str(f), rel.as_posix())
    return sorted(found.items())


class ScanStage(Stage):
    name = "scan"
    table = "videos"
    version = "3"  # 3: width and height are the displayed size (rotation, sample aspect)
    sections = ("scan", "input")

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        files = []
        for path, rel in find_inputs(self.recipe):
            try:
                st = Path(path).stat()
                files.append((path, rel, st.st_size, st.st_mtime_ns))
            except OSError:
                files.append((path, rel, -1, -1))
        buckets = hash_buckets(files, lambda f: f[0], self.recipe.scan.files_per_partition,
                               self.previous_buckets.get(""))
        return [Partition(key, {"files": fs}, frame_hash(fs)) for key, fs in buckets]

    def setup(self) -> None:
        rx, source_rx = self.recipe.input.label_regex, self.recipe.input.source_regex
        self._label_rx = re.compile(rx) if rx else None
        self._source_rx = re.compile(source_rx) if source_rx else None

        removed = Removals.load(self.recipe)
        self._removed_paths, self._removed_prints = removed.paths, removed.fingerprints

    def process(self, partition: Partition) -> StageResult:
        files = partition.data["files"]
        rows = guarded(files, self._scan_one, self._failed, lambda f: f[0])
        return StageResult(rows)

    def _failed(self, file: tuple, reason: str) -> dict:
        row = _blank(file[0], file[1])
        row.update(status="failed", error=failure(row["rel_path"], reason))
        return row

    def _scan_one(self, file: tuple) -> list[dict]:
        path, rel, _size, _mtime = file
        cfg = self.recipe.scan
        row = _blank(path, rel)
        if path in self._removed_paths:  # taken down (`removals`): no row at all
            return []
        if not _is_utf8(path):
            row.update(status="failed", error=failure(row["rel_path"], "file name is not valid UTF-8: rename it"))
            return [row]
        try:
            fp = content_fingerprint(Path(path), cfg.fingerprint_bytes)
        except OSError as e:
            row.update(status="failed", error=failure(rel, f"cannot read: {e.strerror or e}"))
            return [row]
        if fp in self._removed_prints:
            return []
        row.update(fingerprint=fp, video_id=video_id_of(fp), size_bytes=Path(path).stat().st_size)
        if self._label_rx is not None:
            m = self._label_rx.search(rel)
            row["label"] = m.group("label") if m else None
        if self._source_rx is not None:
            m = self._source_rx.search(rel)
            row["source"] = m.group("source") if m else None
        info = probe(path, check_packets=cfg.check_packets)
        row.update({k: v for k, v in info.as_dict().items() if k in row})
        reason = None
        if not info.has_audio:
            reason = "no audio track"
        elif info.duration_s < cfg.min_duration_s:
            reason = f"too short: under scan.min_duration_s={cfg.min_duration_s} ({info.duration_s:.2f} s)"
        elif min(info.width, info.height) < cfg.min_short_side:
            reason = (f"too small: shorter side under scan.min_short_side={cfg.min_short_side} px "
                      f"({info.width}x{info.height})")
        if reason:
            row.update(status="skipped", error=failure(rel, reason))
        return [row]

    def finalize(self, table: pa.Table) -> pa.Table:
        """Exact duplicates (same content at two paths): the first path stays ok, the others are skipped."""
        rows = table.to_pylist()
        first: dict[str, str] = {}
        skipped = False
        for r in sorted(rows, key=lambda r: r["path"]):
            if r["status"] != "ok":
                continue
            if r["video_id"] in first:
                r.update(status="skipped", error=failure(r["rel_path"], f"duplicate content of {first[r['video_id']]}"))
                skipped = True
            else:
                first[r["video_id"]] = r["path"]
        if not skipped:
            return table
        return pa.Table.from_pylist(rows, schema=table.schema)


def _blank(path: str, rel: str) -> dict:
    # Unreadable files still need a unique, deterministic id: derived from the path.
    return blank_row("videos", video_id=f"path-{short_hash(path)}", path=printable_name(path),
                     rel_path=printable_name(rel), status="ok")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(name: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 shown as escapes (tables need text)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def ok_videos(videos: pl.DataFrame) -> pl.DataFrame:
    """The usable videos: ok rows, one per video_id."""
    return videos.filter(pl.col("status") == "ok").unique("video_id", keep="first").sort("video_id")

