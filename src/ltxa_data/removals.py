"""Take-down: `ltxa-data remove` removes a person (an identity, a label) or a video from a build, and every
later build keeps them out.

The `removals` manifest (`manifests/removals.parquet`, a row per removed video) records what was removed,
why and when, and what later builds need to recognise it again without the files: the file's path and
content fingerprint, its perceptual fingerprint (to catch re-encoded or cropped copies) and, for a person,
their voices' embeddings (to catch new videos of them). A build honours it at three points:

* scan leaves out a removed file (same path or same bytes): it gets no row;
* duplicates: a video found to be a copy of a removed one is removed as well (`how` = copy);
* voices: a video with a voice within `identify.similarity_threshold` (cosine) of a removed person's voice,
  or with a removed label, is removed as well (`how` = voice, label).

A removal found during a build is added to the manifest, the scan partitions that held the video are
invalidated, and the build starts over from scan (every other partition comes from its cache), so no
table, partition state or shard keeps a row derived from it. `verify` checks that none does.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .analysis.fingerprint import FINGERPRINT_FIELDS
from .ids import content_fingerprint, short_hash, video_id_of
from .recipe import Recipe, RecipeError
from .storage import write_json_atomic, write_table_atomic

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
    from .analysis.fingerprint import VERSION

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


# ------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    kind: str  # identity | label | video
    value: str

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


def parse_requests(lines: Iterable[str], where: str) -> list[Request]:
    """Requests from a file's lines: `identity ID`, `label NAME` or `video PATH`; `#` starts a comment."""
    out = []
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, value = line.partition(" ")
        if kind not in ("identity", "label", "video") or not value.strip():
            raise RecipeError(f"{where}:{n}: expected `identity ID`, `label NAME` or `video PATH`, got {line!r}")
        out.append(Request(kind, value.strip()))
    return out


def _frame(recipe: Recipe, name: str) -> pl.DataFrame:
    from .storage import read_frame, table_path

    if not table_path(recipe.manifests_dir, name).exists():
        raise RecipeError(f"the build has no {name} table yet ({recipe.manifests_dir}): build it first, or name "
                          "videos by path")
    return read_frame(recipe.manifests_dir, name)


def resolve(recipe: Recipe, requests: list[Request], reason: str, now: str | None = None) -> list[dict]:
    """The removals rows of `requests`: a row per video each one names, with what later builds need to
    recognise it. A request that names nothing is refused (a typo must not pass for a take-down)."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    facts = _Facts(recipe)
    rows: dict[str, dict] = {}
    for req in requests:
        rid = "r-" + short_hash(str(req), reason, now)
        base = dict(removal_id=rid, request=str(req), reason=reason, requested_at=now, how="named")
        if req.kind == "video":
            for r in facts.named(req.value):
                rows.setdefault(r["fingerprint"], {**base, **r})
            continue
        identities = _frame(recipe, "identities").filter(pl.col("status") == "ok")
        if req.kind == "identity":
            ids = {req.value} & set(identities.get_column("identity_id").to_list())
            if not ids:
                raise RecipeError(f"{req}: no such identity in this build (ltxa-data status, or the identities table, "
                                  "lists them)")
        else:
            from .stages.identify import prior_labels

            labelled = {v for v, lab in prior_labels(recipe, _frame(recipe, "videos")).items() if lab == req.value}
            ids = set(identities.filter((pl.col("label") == req.value) | pl.col("video_id").is_in(list(labelled)))
                      .get_column("identity_id").to_list())
            if not ids and not labelled:
                raise RecipeError(f"{req}: no video or identity carries this label in this build")
            for r in (facts.by_id(v) for v in sorted(labelled)):
                rows.setdefault(r["fingerprint"], {**base, **r, "how": "label"})
        for identity in sorted(ids):
            for r in _identity_rows(recipe, identities, identity, facts):
                rows.setdefault(r["fingerprint"], {**base, **r})
    return list(rows.values())


class _Facts:
    """The removal facts of videos (path, content and perceptual fingerprints, no voices), from the build's
    videos and fingerprints tables, read once."""

    def __init__(self, recipe: Recipe) -> None:
        from .storage import read_frame, table_path

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
        from .stages.fingerprints import StoredFingerprints

        row: dict = dict(video_id=video_id, path=path, fingerprint=fingerprint, identity_id=None, embedder=None,
                         voice_embeddings=None, **{n: None for n, _, _ in FINGERPRINT_FIELDS})
        prints = self.prints.filter(pl.col("video_id") == video_id) if self.prints is not None else None
        if prints is not None and prints.height:
            row.update(StoredFingerprints(self.recipe.output_dir, prints)[0].to_row())
        return row


def _identity_rows(recipe: Recipe, identities: pl.DataFrame, identity: str, facts: _Facts) -> list[dict]:
    """A row per video the identity speaks in, with its voices' embeddings there."""
    voices_of = identities.filter(pl.col("identity_id") == identity)
    embeddings = _frame(recipe, "voices").filter(pl.col("voice_id").is_in(voices_of.get_column("voice_id").to_list()))
    out = []
    for video_id in sorted(set(voices_of.get_column("video_id").to_list())):
        embs = embeddings.filter(pl.col("video_id") == video_id).get_column("embedding").to_list()
        out.append({**facts.by_id(video_id), "identity_id": identity, "embedder": embedder_of(recipe),
                    "voice_embeddings": [list(map(float, e)) for e in embs] or None})
    return out


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
    from .pipeline import read_marker, state_dir

    sdir = state_dir(recipe, "videos")
    n = 0
    for part in sorted(sdir.glob("part-*.parquet")):
        t = pq.read_table(part, columns=["path", "fingerprint"])
        if not (set(t.column("fingerprint").to_pylist()) & fingerprints or set(t.column("path").to_pylist()) & paths):
            continue
        key = part.name[len("part-"): -len(".parquet")]
        marker = read_marker(sdir, key)
        if marker:
            write_json_atomic(sdir / f"part-{key}.done", {**marker, "input_hash": "removed"})
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
    (duplicates), a removed person's voice or label (voices). Rows for `append`."""
    if stage not in ("duplicates", "voices"):
        return []
    removals = Removals.load(recipe)
    if not removals:
        return []
    from .storage import read_frame

    found: list[tuple[str, str, str]] = []  # (video_id, how, the removed video's fingerprint that caught it)
    if stage == "duplicates":
        dup = read_frame(recipe.manifests_dir, "duplicates")
        for r in dup.filter(pl.col("status") == "skipped").iter_rows(named=True):
            found.append((r["video_id"], "copy", r["matched_video_id"]))
    elif stage == "voices":
        voices = read_frame(recipe.manifests_dir, "voices", ok_only=True)
        removed, owners = removals.voices(embedder_of(recipe))
        if len(removed) and voices.height:
            emb = np.asarray(voices.get_column("embedding").to_list(), np.float32)
            sims = emb @ removed.T
            best = sims.argmax(axis=1)
            for i in np.flatnonzero(sims.max(axis=1) >= recipe.identify.similarity_threshold):
                found.append((voices["video_id"][int(i)], "voice", owners[int(best[i])]))
        if removals.labels:
            from .stages.identify import prior_labels

            videos = read_frame(recipe.manifests_dir, "videos", ok_only=True)
            for v, lab in prior_labels(recipe, videos).items():
                if lab in removals.labels:
                    req = removals.table.filter(pl.col("request") == f"label {lab}").row(0, named=True)
                    found.append((v, "label", req["fingerprint"]))
    if not found:
        return []
    facts, removed_prints = _Facts(recipe), removals.fingerprints
    rows = []
    for video_id, how, caught_by in found:
        cause = removals.row_of(caught_by) if caught_by in removed_prints else removals.table.filter(
            pl.col("video_id") == caught_by).row(0, named=True)
        rows.append({**facts.by_id(video_id), **{k: cause[k] for k in ("removal_id", "request", "reason",
                                                                        "requested_at")},
                     "how": how, "identity_id": cause["identity_id"]})
    return rows


@dataclass
class TakeDown:
    """What `take_down` did."""

    removed_videos: int
    dropped_samples: list[str]
    rereferenced_samples: list[str]
    shards_rewritten: int
    samples_rendered: int
    """Samples whose media were rendered again (new references); the others' bytes were copied."""
    jsons_rewritten: int
    """Samples whose media were copied and whose json changed (split, scores, lineage)."""
    problems: list[str]
    seconds: float


def take_down(recipe: Recipe, requests: list[Request], reason: str, progress: bool = True) -> TakeDown:
    """Remove what `requests` name: record them (manifest written atomically first), rebuild (only what they
    touched reruns: their partitions, the pairs, the shards that held them or their references), then check
    that nothing derived from them remains (`verify.check_removals`). Killed at any point, running it again
    (or `build`) finishes the job; until then `verify` reports what is left."""
    import time

    from .pipeline import build
    from .reporting.verify import check_removals
    from .storage import read_frame, table_path

    t0 = time.perf_counter()
    before = (read_frame(recipe.manifests_dir, "pairs", ok_only=True).select("key", "reference_ids")
              if table_path(recipe.manifests_dir, "pairs").exists() else pl.DataFrame({"key": [], "reference_ids": []}))
    samples, media = _shard_hashes(recipe)
    # A request recorded earlier (a take-down killed before it finished, or asked twice) is not resolved again:
    # its identity may be gone from the tables already. The rebuild finishes it.
    done = set(Removals.load(recipe).table.get_column("request").to_list())
    append(recipe, resolve(recipe, [r for r in requests if str(r) not in done], reason))
    reports = build(recipe, progress=progress)
    from .reporting.report import MARKER

    if not recipe.report.enabled and (recipe.report_dir / MARKER).exists():  # an earlier report shows them
        from .pipeline import write_build_report

        write_build_report(recipe)
    after = read_frame(recipe.manifests_dir, "pairs", ok_only=True).select("key", "reference_ids")
    refs_after = dict(after.iter_rows())
    dropped = sorted(set(before["key"].to_list()) - set(refs_after))
    changed = sorted(k for k, refs in before.iter_rows() if k in refs_after and list(refs_after[k]) != list(refs))
    shards = next((r.ran for r in reports if r.stage == "shards"), 0)
    now = read_frame(recipe.manifests_dir, "shards", ok_only=True).select("sample_hash", "media_hash").rows()
    return TakeDown(removed_videos=len(Removals.load(recipe).table), dropped_samples=dropped,
                    rereferenced_samples=changed, shards_rewritten=shards,
                    samples_rendered=sum(m not in media for _, m in now),
                    jsons_rewritten=sum(s not in samples and m in media for s, m in now),
                    problems=check_removals(recipe), seconds=time.perf_counter() - t0)


def _shard_hashes(recipe: Recipe) -> tuple[set[str], set[str]]:
    """The sample and media hashes of the shards table (empty sets before the first shards, or for a table
    from before sample hashes)."""
    from .storage import table_path

    try:
        t = pl.read_parquet(table_path(recipe.manifests_dir, "shards"), columns=["sample_hash", "media_hash"])
    except (OSError, pl.exceptions.ColumnNotFoundError):
        return set(), set()
    return set(t["sample_hash"].drop_nulls().to_list()), set(t["media_hash"].drop_nulls().to_list())
