"""How a build honours take-downs: the removals manifest, and the detection of removed material.

`ltxa-data remove` (`commands.remove`) removes a person (an identity, a label) or a video from a build, and
every later build keeps them out; this module is all a build needs to do so, and the build loop
(`pipeline.build`) calls it at two points: `enforce` before the first stage, `detect` + `append` after each.

The `removals` manifest (`manifests/removals.parquet`, a row per removed video) records what was removed,
why and when, and what later builds need to recognise it again without the files: the file's path and
content fingerprint, its perceptual fingerprint (to catch re-encoded or cropped copies) and, for a person,
their voices' embeddings (to catch new videos of them). A build honours it at three points:

* scan leaves out a removed file (same path or same bytes): it gets no row;
* duplicates: a video found to be a copy of a removed one is removed as well (`how` = copy);
* voices: a video with a voice within `identify.similarity_threshold` (cosine) of a removed person's voice,
  or with a removed label, is removed as well (`how` = voice, label).

A removal found during a build (`detect`) is added to the manifest (`append`), the scan partitions that held
the video are invalidated (`invalidate`), and the build starts over from scan (every other partition comes from
its cache), so no table, partition state or shard keeps a row derived from it. `verify` checks that none does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .analysis.fingerprint import FINGERPRINT_FIELDS, VERSION
from .analysis.fingerprint_store import StoredFingerprints
from .analysis.labels import prior_labels
from .ids import content_fingerprint, video_id_of
from .recipe import Recipe, RecipeError
from .state import StageState
from .storage import read_frame, table_path, write_table_atomic

SCHEMA = pa.schema([
    pa.field("removal_id", pa.string()),
    pa.field("request", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("requested_at", pa.string()),
    pa.field("how", pa.string()),
    pa.field("video_id", pa.string()),
    pa.field("path", pa.string()),
    pa.field("fingerprint", pa.string()),
    pa.field("identity_id", pa.string()),
    pa.field("embedder", pa.string()),
    pa.field("voice_embeddings", pa.list_(pa.list_(pa.float32()))),
    *(pa.field(n, t) for n, t, _ in FINGERPRINT_FIELDS),
])
DESCRIPTIONS = {
    "removal_id": "the request's id (`r-` + 12 hex)",
    "request": "what was asked: `identity ID`, `label NAME` or `video PATH`",
    "reason": "why (the requester's words)",
    "requested_at": "when the request was made (UTC, ISO 8601)",
    "how": "how this video came under the request: named (by it), copy (a copy of a removed video), voice (a "
           "removed person's voice speaks in it), label (it carries a removed label)",
    "video_id": "the video's id when it was removed",
    "path": "its file when it was removed",
    "fingerprint": "its content fingerprint (the same bytes anywhere are left out)",
    "identity_id": "the removed identity whose voice is in it, if any",
    "embedder": "the speaker embedder of `voice_embeddings` (`embed.backend`, and its model)",
    "voice_embeddings": "the removed person's voices in this video (L2-normalised), to recognise new videos of them",
}
"""What each column of the removals manifest holds (besides the perceptual fingerprint's `fp_*` columns)."""
HOWS = ("named", "copy", "voice", "label")


def removals_path(recipe: Recipe) -> Path:
    return recipe.manifests_dir / "removals.parquet"


def embedder_of(recipe: Recipe) -> str:
    """The speaker embedder as removals record it: voice embeddings compare only under the same one."""
    e = recipe.embed
    return e.backend if e.backend == "resemblyzer" else f"{e.backend}:{e.speechbrain_ecapa.model}"


@dataclass
class Removals:
    """The removals manifest, read once (empty when nothing was ever removed)."""

    table: pl.DataFrame

    @classmethod
    def load(cls, recipe: Recipe) -> Removals:
        p = removals_path(recipe)
        if not p.exists():
            return cls(pl.from_arrow(SCHEMA.empty_table()))  # type: ignore[arg-type]
        return cls(pl.from_arrow(pq.read_table(p)))  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return self.table.height > 0

    def _values(self, column: str) -> set[str]:
        return set(self.table.get_column(column).drop_nulls().to_list())

    @property
    def fingerprints(self) -> set[str]:
        return self._values("fingerprint")

    @property
    def paths(self) -> set[str]:
        return self._values("path")

    @property
    def video_ids(self) -> set[str]:
        return self._values("video_id")

    @property
    def identity_ids(self) -> set[str]:
        return self._values("identity_id")

    @property
    def labels(self) -> set[str]:
        return {r[len("label "):] for r in self.table.get_column("request").to_list() if r.startswith("label ")}

    def voices(self, embedder: str) -> tuple[np.ndarray, list[str]]:
        """(each removed person's mean voice recorded under `embedder`, L2-normalised [people, dim], the removal
        row (fingerprint) of one of their videos). The mean, as identify compares a voice with an identity's
        centroid: a single recorded voice would be a looser test, and would take other people's videos."""
        rows = self.table.filter((pl.col("embedder") == embedder) & pl.col("voice_embeddings").is_not_null())
        by_person: dict[str, list[tuple[np.ndarray, str]]] = {}
        for fp, person, voices in rows.select("fingerprint", "identity_id", "voice_embeddings").iter_rows():
            for v in voices:
                by_person.setdefault(person, []).append((np.asarray(v, np.float32), fp))
        embs, owners = [], []
        for person in sorted(by_person):
            mean = np.mean([v for v, _ in by_person[person]], axis=0)
            embs.append((mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32))
            owners.append(by_person[person][0][1])
        return (np.stack(embs) if embs else np.zeros((0, 0), np.float32)), owners

    def perceptual(self) -> pl.DataFrame:
        """The removed videos' perceptual fingerprints (`fp_*` columns; rows without one left out)."""
        return self.table.filter(pl.col("fp_version").is_not_null()).select(
            "video_id", "fingerprint", *(n for n, _, _ in FINGERPRINT_FIELDS))

    def row_of(self, fingerprint: str) -> dict:
        return self.table.filter(pl.col("fingerprint") == fingerprint).row(0, named=True)


def problems(recipe: Recipe) -> list[str]:
    """Why this recipe cannot honour the removals (preflight): voices recorded under another embedder, or copies
    no longer looked for."""

    removals = Removals.load(recipe)
    out = []
    have = set(removals.table.filter(pl.col("voice_embeddings").is_not_null()).get_column("embedder").to_list())
    other = sorted(have - {embedder_of(recipe)})
    if other:
        out.append(f"removals ({removals_path(recipe)}) recognise removed people by voices embedded with "
                   f"{', '.join(other)}; this recipe embeds with {embedder_of(recipe)}, so new videos of them would "
                   "not be caught: keep the embedder, or build into a new output folder and remove them there again")
    prints = removals.perceptual()
    if prints.height and not recipe.duplicates.detect:
        out.append(f"removals ({removals_path(recipe)}) recognise copies of removed videos by their perceptual "
                   "fingerprints, and duplicates.detect is off: turn it on")
    old = sorted(set(prints.get_column("fp_version").to_list()) - {VERSION})
    if old:
        out.append(f"removals ({removals_path(recipe)}) hold perceptual fingerprints of format {old}, this toolkit "
                   f"makes {VERSION}: copies of those removed videos could not be recognised")
    return out


class Facts:
    """The removal facts of videos (path, content and perceptual fingerprints, no voices), from the build's
    videos and fingerprints tables, read once."""

    def __init__(self, recipe: Recipe) -> None:

        self.recipe = recipe
        m = recipe.manifests_dir
        self.videos = (read_frame(m, "videos") if table_path(m, "videos").exists() else
                       pl.DataFrame(schema={"video_id": pl.String, "path": pl.String, "rel_path": pl.String,
                                            "fingerprint": pl.String}))
        self.prints = read_frame(m, "fingerprints", ok_only=True) if table_path(m, "fingerprints").exists() else None

    def by_id(self, video_id: str) -> dict:
        return self._rows(self.videos.filter(pl.col("video_id") == video_id), video_id)[0]

    def named(self, value: str) -> list[dict]:
        """The video(s) a path names: absolute, relative to its input root, or an existing file (its bytes)."""
        absolute = str(Path(value).expanduser().absolute())
        hit = self.videos.filter((pl.col("path") == absolute) | (pl.col("rel_path") == value))
        if hit.is_empty() and Path(absolute).is_file():  # not scanned (yet): its bytes are enough
            fp = content_fingerprint(Path(absolute), self.recipe.scan.fingerprint_bytes)
            hit = self.videos.filter(pl.col("fingerprint") == fp)
            if hit.is_empty():
                return [self.row(video_id_of(fp), absolute, fp)]
        return self._rows(hit, value)

    def _rows(self, hit: pl.DataFrame, value: str) -> list[dict]:
        hit = hit.filter(pl.col("fingerprint").is_not_null())
        if hit.is_empty():
            raise RecipeError(f"video {value}: no such file, and no video of this build has that path")
        return [self.row(r["video_id"], r["path"], r["fingerprint"]) for r in hit.iter_rows(named=True)]

    def row(self, video_id: str, path: str, fingerprint: str) -> dict:
        row: dict = dict(video_id=video_id, path=path, fingerprint=fingerprint, identity_id=None, embedder=None,
                         voice_embeddings=None, **{n: None for n, _, _ in FINGERPRINT_FIELDS})
        prints = self.prints.filter(pl.col("video_id") == video_id) if self.prints is not None else None
        if prints is not None and prints.height:
            row.update(StoredFingerprints(self.recipe.output_dir, prints)[0].to_row())
        return row


# ------------------------------------------------------------------------------------------- applying


def append(recipe: Recipe, rows: list[dict]) -> int:
    """Add removals rows (a video already removed keeps its first row); returns how many were new. The
    manifest is replaced atomically, then the scan partitions that held a new video are invalidated."""
    old = Removals.load(recipe)
    have = old.fingerprints
    new = [r for r in {r["fingerprint"]: r for r in rows}.values() if r["fingerprint"] not in have]
    if not new:
        return 0
    table = pa.concat_tables([old.table.to_arrow().cast(SCHEMA), pa.Table.from_pylist(new, schema=SCHEMA)])
    write_table_atomic(removals_path(recipe), table)
    invalidate(recipe, {r["fingerprint"] for r in new}, {r["path"] for r in new})
    return len(new)


def invalidate(recipe: Recipe, fingerprints: set[str], paths: set[str]) -> int:
    """Make the scan partitions holding any of these files run again (their marker loses its input hash, so
    the rerun also cleans up what they wrote); returns how many."""
    state = StageState(recipe, "videos")
    n = 0
    for key, part in state.finished_parts():
        t = pq.read_table(part, columns=["path", "fingerprint"])
        if not (set(t.column("fingerprint").to_pylist()) & fingerprints or set(t.column("path").to_pylist()) & paths):
            continue
        state.invalidate(key)
        n += 1
    return n


def enforce(recipe: Recipe) -> None:
    """At the start of a build: the scan partitions that still hold a removed file run again (a take-down
    killed between recording a removal and invalidating them is finished here)."""
    removals = Removals.load(recipe)
    if removals:
        invalidate(recipe, removals.fingerprints, removals.paths)


def detect(recipe: Recipe, stage: str) -> list[dict]:
    """Videos this build found to fall under earlier removals, after `stage` ran: copies of removed videos
    (after duplicates), a removed person's voice or label (after embed). Rows for `append`."""
    if stage not in ("duplicates", "embed"):
        return []
    removals = Removals.load(recipe)
    if not removals:
        return []

    found: list[tuple[str, str, str]] = []  # (video_id, how, the removed video's fingerprint that caught it)
    if stage == "duplicates":
        dup = read_frame(recipe.manifests_dir, "duplicates")
        for r in dup.filter(pl.col("status") == "skipped").iter_rows(named=True):
            found.append((r["video_id"], "copy", r["matched_video_id"]))
    elif stage == "embed":
        voices = read_frame(recipe.manifests_dir, "voices", ok_only=True)
        removed, owners = removals.voices(embedder_of(recipe))
        if len(removed) and voices.height:
            emb = np.asarray(voices.get_column("embedding").to_list(), np.float32)
            sims = emb @ removed.T
            best = sims.argmax(axis=1)
            for i in np.flatnonzero(sims.max(axis=1) >= recipe.identify.similarity_threshold):
                found.append((voices["video_id"][int(i)], "voice", owners[int(best[i])]))
        if removals.labels:

            videos = read_frame(recipe.manifests_dir, "videos", ok_only=True)
            for v, lab in prior_labels(recipe, videos).items():
                if lab in removals.labels:
                    req = removals.table.filter(pl.col("request") == f"label {lab}").row(0, named=True)
                    found.append((v, "label", req["fingerprint"]))
    if not found:
        return []
    facts, removed_prints = Facts(recipe), removals.fingerprints
    rows = []
    for video_id, how, caught_by in found:
        cause = removals.row_of(caught_by) if caught_by in removed_prints else removals.table.filter(
            pl.col("video_id") == caught_by).row(0, named=True)
        rows.append({**facts.by_id(video_id), **{k: cause[k] for k in ("removal_id", "request", "reason",
                                                                        "requested_at")},
                     "how": how, "identity_id": cause["identity_id"]})
    return rows


