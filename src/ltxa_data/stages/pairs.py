"""pairs: give every target its reference(s) — same identity, different clip (a video, or its group of
copies) — and its split."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..analysis.splits import identity_groups
from ..gates import failure
from ..ids import unit_interval
from ..lineage import build_lineage
from ..recipe import TARGET_FPS, TARGET_FRAMES
from ..storage import frame_hash, table_path
from .base import Partition, Stage, StageResult
from .duplicates import clip
from .matching import Matcher
from .scan import ok_videos


def quality_of(candidate: tuple) -> float:
    return candidate[2] if len(candidate) > 2 else 1.0


def band_of(quality: float, width: float) -> int:
    """A quality's band counted from the top (0: within `width` of 1); 0 for every quality when width is 0."""
    return math.floor((1.0 - quality) / width + 1e-9) if width > 0 else 0


def draw_key(target_id: str, candidate: tuple, seed: int, quality_weight: float = 0.0,
             quality_band: float = 0.0) -> tuple[int, float]:
    """A candidate reference's key in `choose_references`' draw, larger first: (minus its quality band, log(u) / w)
    with u seeded per target and reference and w = quality ** quality_weight."""
    w = max(quality_of(candidate), 1e-3) ** quality_weight
    u = unit_interval("ref", seed, target_id, candidate[0])
    return -band_of(quality_of(candidate), quality_band), math.log(u) / w if u > 0 else -math.inf


def choose_references(
    target_id: str, target_video: str, candidates: list[tuple], k: int, seed: int, quality_weight: float = 0.0,
    clips: Mapping[str, str] | None = None, quality_band: float = 0.0,
) -> list[tuple[str, str]]:
    """Up to `k` (reference_id, video_id) from other clips than the target's, best quality first. A clip is
    a video, or its group of copies in `clips` (video_id -> group, `stages.duplicates.clip_of`).

    `candidates` are (reference_id, video_id) or (reference_id, video_id, quality) with quality in
    [0, 1] (1 when absent). A better quality band (`quality_band` wide, counted from 1) always wins over a worse,
    even when that means two references from one clip; within a band they are drawn without replacement with
    weight quality ** quality_weight (Efraimidis-Spirakis keys from a pseudo-random number seeded per target and
    reference, so the draw is deterministic), one per video first so the references spread over as many videos
    as possible (copies of one clip count as one video); the chosen ones are returned best quality first."""
    def key(c: tuple) -> tuple[int, float]:  # larger is drawn earlier
        return draw_key(target_id, c, seed, quality_weight, quality_band)

    clips = clips or {}
    own = clip(target_video, clips)
    others = [c for c in candidates if clip(c[1], clips) != own]
    ranked = sorted(others, key=lambda c: (tuple(-x for x in key(c)), c[0]))
    chosen: list[tuple] = []
    used_clips: set[str] = set()
    for band in sorted({key(c)[0] for c in ranked}, reverse=True):  # the best band first, always
        members = [c for c in ranked if key(c)[0] == band]
        for c in members:  # first pass: one per clip
            if len(chosen) < k and clip(c[1], clips) not in used_clips:
                chosen.append(c)
                used_clips.add(clip(c[1], clips))
        for c in members:
            if len(chosen) < k and c not in chosen:
                chosen.append(c)
    chosen.sort(key=lambda c: (-quality_of(c), tuple(-x for x in key(c))))
    return [(c[0], c[1]) for c in chosen]


def previous_splits(path: Path) -> pl.DataFrame:
    """identity_id -> split of the previous build's ok pairs, for its targets' speakers and (with an attribute)
    its references' speakers. Read by column name: a table written before a schema change still gives its splits."""
    if not path.exists():
        return pl.DataFrame({"identity_id": [], "split": []}, schema={"identity_id": pl.String, "split": pl.String})
    names = pq.read_schema(path).names
    cols = ["identity_id", "split", "status"] + [c for c in ("reference_identity_ids",) if c in names]
    ok = pl.read_parquet(path, columns=cols).filter(pl.col("status") == "ok")
    frames = [ok.select("identity_id", "split")]
    if "reference_identity_ids" in cols:
        frames.append(ok.select(pl.col("reference_identity_ids").alias("identity_id"), "split")
                      .explode("identity_id").drop_nulls())
    return pl.concat(frames).unique().sort("identity_id", "split").unique("identity_id", keep="first")


class PairsStage(Stage):
    name = "pairs"
    table = "pairs"
    reads = ("videos", "identities", "targets", "references", "duplicates", "attributes")
    in_driver = True
    sections = ("pairs",)
    version = "8"  # 8: pairs by attribute (match, value); 7: quality bands; 6: copies of one clip are one clip

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        targets = tables["targets"].filter(pl.col("status") == "ok").select("target_id", "video_id", "identity_id")
        refs = tables["references"].filter(pl.col("status") == "ok").select(
            "reference_id", "video_id", "identity_id", "quality")
        links = tables["identities"].filter(pl.col("status") == "ok").select("video_id", "identity_id").unique()
        # The previous run's splits keep splits stable; like identify's history, not an input of the plan hash.
        m = self.recipe.manifests_dir
        # Read by column name: a table written before a schema change still gives its splits.
        prev = previous_splits(table_path(m, "pairs"))
        sources = tables["videos"].filter(pl.col("source").is_not_null()).select("video_id", "source")
        files = ok_videos(tables["videos"]).select("video_id", "path", "rel_path", "fingerprint")
        values = tables["attributes"].filter(pl.col("attribute") == self.recipe.pairs.match).select(
            "window", "window_id", "value", "error")
        data = {"targets": targets.sort("target_id"), "references": refs.sort("reference_id"),
                "links": links.sort("video_id", "identity_id"), "sources": sources.sort("video_id"),
                "files": files.sort("video_id"),
                "copies": tables["duplicates"].filter(pl.col("status") == "ok").select("video_id", "group_id")
                .sort("video_id"), "values": values.sort("window", "window_id")}
        return [Partition("all", {**data, "previous": prev}, frame_hash(*data.values()))]

    def process(self, partition: Partition) -> StageResult:
        cfg = self.recipe.pairs
        matcher = Matcher(self.recipe, partition.data["values"])
        refs = partition.data["references"]
        targets = partition.data["targets"]
        hours = {i: n * TARGET_FRAMES / TARGET_FPS / 3600
                 for i, n in targets.group_by("identity_id").len().iter_rows()}
        # With an attribute, a speaker with references and no target still needs a split (it gives references).
        placed = set(hours) | (set(refs["identity_id"]) if matcher.attribute else set())
        clips = dict(partition.data["copies"].iter_rows())
        # Copies of one clip are one video to the splits: a group of copies lives in one split.
        links = partition.data["links"].filter(pl.col("identity_id").is_in(sorted(placed))).rows()
        groups = identity_groups((clip(v, clips), i) for v, i in links)
        windows: dict[str, list[tuple[str, str]]] = {}
        for kind, frame in (("target", targets), ("reference", refs)):
            for w, i in frame.select(frame.columns[0], "identity_id").rows():
                windows.setdefault(i, []).append((kind, w))
        split = matcher.splits(groups, hours, windows, dict(partition.data["previous"].rows()))
        source = dict(partition.data["sources"].iter_rows())
        files = {f["video_id"]: f for f in partition.data["files"].iter_rows(named=True)}
        pool = matcher.pool(refs, split)
        rows = []
        for t in targets.iter_rows(named=True):
            own = source.get(t["video_id"])
            t_split = split[t["identity_id"]]
            value, why_not = matcher.value_of_target(t, t_split)
            # With sources known, a reference comes from another source, not only another video.
            candidates = [c for c in matcher.candidates(pool, t, value, t_split)
                          if own is None or source.get(c[1]) != own]
            chosen = choose_references(t["target_id"], t["video_id"], candidates, cfg.references_per_target,
                                       cfg.seed, cfg.quality_weight, clips, cfg.quality_band) if why_not is None else []
            identity_of = {c[0]: c[3] for c in candidates}
            row = dict(key=t["target_id"], target_id=t["target_id"], reference_ids=[c[0] for c in chosen],
                       identity_id=t["identity_id"], target_video_id=t["video_id"],
                       reference_video_ids=[c[1] for c in chosen], match=cfg.match, value=value,
                       reference_identity_ids=[identity_of[c[0]] for c in chosen], split=t_split,
                       target_path=files[t["video_id"]]["path"], target_rel_path=files[t["video_id"]]["rel_path"],
                       target_fingerprint=files[t["video_id"]]["fingerprint"],
                       reference_paths=[files[c[1]]["path"] for c in chosen],
                       reference_rel_paths=[files[c[1]]["rel_path"] for c in chosen],
                       reference_fingerprints=[files[c[1]]["fingerprint"] for c in chosen],
                       models=None, toolkit_version=None, recipe_hash=None,  # the build's: `finalize`
                       status="ok", error=None)
            if why_not is not None:
                row.update(status="skipped", error=failure(t["target_id"], why_not))
            elif len(chosen) < cfg.references_per_target:
                row.update(status="skipped", error=failure(t["target_id"], matcher.shortfall(
                    t, value, t_split, len(chosen), pool, own, t["video_id"] in clips)))
            rows.append(row)
        return StageResult(rows)

    def finalize(self, table: pa.Table) -> pa.Table:
        """Every row gets this build's model lineage, toolkit version and recipe hash (`lineage`), computed
        once here: the partitions need not rerun when only a model file or a later stage's setting changed,
        and the table still names what this build used."""

        lineage = build_lineage(self.recipe)
        every = pa.array([0] * table.num_rows, pa.int64())
        for name, value in lineage.items():
            i = table.schema.get_field_index(name)
            column = pa.array([value], table.schema.field(i).type).take(every)
            table = table.set_column(i, table.schema.field(i), column)
        return table
