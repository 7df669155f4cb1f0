"""`ltxa-data remove`: the take-down command. It turns requests (an identity, a label, a video) into rows of
the removals manifest (`removals`), runs the build, which honours them, and checks that no trace remains
(`reporting.verify.check_removals`). How a build honours a take-down is told in one place: `removals`."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from ..analysis.labels import prior_labels
from ..ids import short_hash
from ..pipeline import build, write_build_report
from ..recipe import Recipe, RecipeError
from ..removals import Facts, Removals, append, embedder_of
from ..reporting.report import MARKER
from ..reporting.verify import check_removals
from ..storage import read_frame, table_path


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

    if not table_path(recipe.manifests_dir, name).exists():
        raise RecipeError(f"the build has no {name} table yet ({recipe.manifests_dir}): build it first, or name "
                          "videos by path")
    return read_frame(recipe.manifests_dir, name)


def resolve(recipe: Recipe, requests: list[Request], reason: str, now: str | None = None) -> list[dict]:
    """The removals rows of `requests`: a row per video each one names, with what later builds need to
    recognise it. A request that names nothing is refused (a typo must not pass for a take-down)."""
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    facts = Facts(recipe)
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


def _identity_rows(recipe: Recipe, identities: pl.DataFrame, identity: str, facts: Facts) -> list[dict]:
    """A row per video the identity speaks in, with its voices' embeddings there."""
    voices_of = identities.filter(pl.col("identity_id") == identity)
    embeddings = _frame(recipe, "voices").filter(pl.col("voice_id").is_in(voices_of.get_column("voice_id").to_list()))
    out = []
    for video_id in sorted(set(voices_of.get_column("video_id").to_list())):
        embs = embeddings.filter(pl.col("video_id") == video_id).get_column("embedding").to_list()
        out.append({**facts.by_id(video_id), "identity_id": identity, "embedder": embedder_of(recipe),
                    "voice_embeddings": [list(map(float, e)) for e in embs] or None})
    return out


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
    that nothing derived from them remains (`reporting.verify.check_removals`). Killed at any point, running it again
    (or `build`) finishes the job; until then `verify` reports what is left."""


    t0 = time.perf_counter()
    before = (read_frame(recipe.manifests_dir, "pairs", ok_only=True).select("key", "reference_ids")
              if table_path(recipe.manifests_dir, "pairs").exists() else pl.DataFrame({"key": [], "reference_ids": []}))
    samples, media = _shard_hashes(recipe)
    # A request recorded earlier (a take-down killed before it finished, or asked twice) is not resolved again:
    # its identity may be gone from the tables already. The rebuild finishes it.
    done = set(Removals.load(recipe).table.get_column("request").to_list())
    append(recipe, resolve(recipe, [r for r in requests if str(r) not in done], reason))
    reports = build(recipe, progress=progress)

    if not recipe.report.enabled and (recipe.report_dir / MARKER).exists():  # an earlier report shows them

        write_build_report(recipe)
    after = read_frame(recipe.manifests_dir, "pairs", ok_only=True).select("key", "reference_ids")
    refs_after = dict(after.iter_rows())
    dropped = sorted(set(before["key"].to_list()) - set(refs_after))
    changed = sorted(k for k, refs in before.iter_rows() if k in refs_after and list(refs_after[k]) != list(refs))
    shards = next((r.ran for r in reports if r.stage == "shard"), 0)
    now = read_frame(recipe.manifests_dir, "shards", ok_only=True).select("sample_hash", "media_hash").rows()
    return TakeDown(removed_videos=len(Removals.load(recipe).table), dropped_samples=dropped,
                    rereferenced_samples=changed, shards_rewritten=shards,
                    samples_rendered=sum(m not in media for _, m in now),
                    jsons_rewritten=sum(s not in samples and m in media for s, m in now),
                    problems=check_removals(recipe), seconds=time.perf_counter() - t0)


def _shard_hashes(recipe: Recipe) -> tuple[set[str], set[str]]:
    """The sample and media hashes of the shards table (empty sets before the first shards, or for a table
    from before sample hashes)."""

    try:
        t = pl.read_parquet(table_path(recipe.manifests_dir, "shards"), columns=["sample_hash", "media_hash"])
    except (OSError, pl.exceptions.ColumnNotFoundError):
        return set(), set()
    return set(t["sample_hash"].drop_nulls().to_list()), set(t["media_hash"].drop_nulls().to_list())
