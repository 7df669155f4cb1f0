"""An attribute's values from a labels file (`attributes.<name>.labels`) or a path regex (`label_regex`), and the
value of one window.

A labels file is CSV, JSONL or parquet with columns `video`, `value` and optional `start`/`end` (seconds; both empty:
the whole video). Rows are named as the user sees them: `line N` of a CSV or JSONL file (the header is line 1 of a
CSV), `row N` (from 1) of a parquet file. A file that cannot be read, or a row that cannot be a label (no video, no
value, a bad time), refuses the build before any work, naming the file and the rows; a window that two values
claim, or that no row covers, has no value and says why, and the other windows keep theirs.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..recipe import AttributeConfig, Recipe
from .windows import covered

LABEL_SUFFIXES = (".csv", ".jsonl", ".parquet")


class LabelsError(ValueError):
    """A labels file that cannot be used; the message names the file and its rows."""


@dataclass(frozen=True)
class LabelRow:
    """One row of a labels file: where it is (`line 7`), the video it names, its span (None: the whole video)."""

    where: str
    video: str
    value: str
    start: float | None = None
    end: float | None = None

    def covers(self, start: float, end: float) -> float:
        """Seconds of [start, end) this row covers."""
        lo, hi = (start, end) if self.start is None else (max(start, self.start), min(end, float(self.end or 0)))
        return max(hi - lo, 0.0)

    def span(self) -> str:
        return "the whole video" if self.start is None else f"{self.start:g}-{self.end:g} s"


def _records(path: Path) -> list[tuple[str, dict]]:
    """(where, raw record) for every row of the file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            return [(f"line {reader.line_num}", row) for row in reader]
    if suffix == ".jsonl":
        out = []
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    raise LabelsError(f"line {n}: not JSON ({e})") from None
                if not isinstance(rec, dict):
                    raise LabelsError(f"line {n}: not a JSON object")
                out.append((f"line {n}", rec))
        return out
    if suffix == ".parquet":
        return [(f"row {n}", rec) for n, rec in enumerate(pl.read_parquet(path).to_dicts(), 1)]
    raise LabelsError(f"not a labels file: it must end in {', '.join(LABEL_SUFFIXES)}")


def _text(raw: object) -> str:
    """A cell as text: empty for a missing cell (None, NaN), an integral number without its `.0`."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def _seconds(raw: object, name: str) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        x = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} {raw!r} is not a number of seconds") from None
    if math.isnan(x):
        return None
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{name} {raw!r} is not a time in the video")
    return x


def read_labels(path: Path) -> list[LabelRow]:
    """Every row of a labels file, checked; `LabelsError` lists the rows that cannot be labels (at most 10)."""
    try:
        records = _records(path)
    except LabelsError as e:
        raise LabelsError(f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError, pl.exceptions.PolarsError) as e:
        raise LabelsError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    if records:
        missing = [c for c in ("video", "value") if c not in records[0][1]]
        if missing:
            raise LabelsError(f"{path}: no column {' or '.join(map(repr, missing))} (columns: "
                              f"{', '.join(map(str, records[0][1]))}; needed: video, value, optional start, end)")
    rows, bad = [], []
    for where, rec in records:
        video, value = _text(rec.get("video")), _text(rec.get("value"))
        try:
            if not video:
                raise ValueError("no video")
            if not value:
                raise ValueError("no value")
            start, end = _seconds(rec.get("start"), "start"), _seconds(rec.get("end"), "end")
            if (start is None) != (end is None):
                raise ValueError("a span needs both start and end (neither: the whole video)")
            if start is not None and end is not None and end <= start:
                raise ValueError(f"end {end:g} is not after start {start:g}")
        except ValueError as e:
            bad.append(f"{where}: {e}")
            continue
        rows.append(LabelRow(where, video, value, start, end))
    if bad:
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise LabelsError(f"{path}: {len(bad)} row(s) are not labels: " + "; ".join(bad[:10]) + more)
    return rows


def labels_problems(recipe: Recipe) -> list[str]:
    """Why the recipe's labels files cannot be used (missing, unreadable, bad rows), before any work."""
    problems = []
    for name, cfg in recipe.attributes.items():
        if cfg.labels:
            path = recipe.resolve(cfg.labels)
            if not path.is_file():
                problems.append(f"attributes.{name}.labels: file does not exist: {path}")
                continue
            try:
                read_labels(path)
            except LabelsError as e:
                problems.append(f"attributes.{name}.labels: {e}")
    return problems


def labels_by_video(rows: list[LabelRow], videos: pl.DataFrame) -> dict[str, list[LabelRow]]:
    """video_id -> its rows, a row's `video` matched against the videos' path, rel_path or video_id."""
    by_name: dict[str, set[str]] = defaultdict(set)
    for v in videos.select("video_id", "path", "rel_path").iter_rows():
        for name in v:
            by_name[os.path.normpath(str(name))].add(v[0])
    out: dict[str, list[LabelRow]] = defaultdict(list)
    for r in rows:
        for vid in by_name.get(os.path.normpath(r.video), ()):
            out[vid].append(r)
    return dict(out)


@dataclass(frozen=True)
class WindowValue:
    """A window's value (None: none, and `reason` says why) and where it came from."""

    value: str | None
    source: str
    reason: str | None = None
    confidence: float | None = None


def label_of_window(rows: list[LabelRow], start: float, end: float, cfg: AttributeConfig, file: str) -> WindowValue:
    """The value the rows of one video give the window [start, end): the value whose rows cover at least
    `min_coverage` of it, unless another value covers more than the rest (a conflict)."""
    if not rows:
        return WindowValue(None, file, f"no row of {file} names this video")
    length = end - start
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    lines: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r.covers(start, end) > 0:
            lines[r.value].append(r.where)
            spans[r.value].append((start, end) if r.start is None else (r.start, float(r.end or 0)))
    # Overlapping rows of one value count once.
    share = {v: min(covered(s, start, end) / length, 1.0) for v, s in spans.items()}
    window = f"{start:.2f}-{end:.2f} s"
    if not share:
        return WindowValue(None, file, f"no row of {file} covers {window} of this video (its rows: "
                           + ", ".join(f"{r.where} {r.span()}" for r in rows[:4]) + (", ..." if len(rows) > 4 else "")
                           + ")")
    won = [v for v, s in share.items() if s >= cfg.min_coverage - 1e-9]
    rivals = [v for v, s in share.items() if v not in won and s > 1 - cfg.min_coverage + 1e-9]
    if len(won) > 1 or (won and rivals):
        named = sorted(won + rivals)
        return WindowValue(None, file, f"conflicting labels over {window}: " + "; ".join(
            f"{v!r} ({', '.join(lines[v])} of {file}, {share[v]:.0%})" for v in named))
    if not won:
        best = max(share, key=lambda v: share[v])
        return WindowValue(None, file, f"the rows of {file} cover only {share[best]:.0%} of {window} with "
                           f"{best!r} ({', '.join(lines[best])}; min_coverage {cfg.min_coverage:g})")
    value = won[0]
    return WindowValue(value, f"{file} {', '.join(lines[value])}")


def regex_value(pattern: str, rel_path: str) -> WindowValue:
    """The value a path regex's named group `value` gives a video (searched in its path relative to its root)."""
    m = re.search(pattern, rel_path)
    if m is None or not m.group("value"):
        return WindowValue(None, "label_regex", f"path {rel_path!r} does not match label_regex {pattern!r}")
    return WindowValue(m.group("value"), "label_regex")
