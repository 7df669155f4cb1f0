"""pairs: give every target its reference(s) — same identity, different video — and its split."""

from __future__ import annotations

import math
from collections import defaultdict

import polars as pl

from ..ids import unit_interval
from ..recipe import TARGET_FPS, TARGET_FRAMES
from ..splits import assign_splits, identity_groups
from ..storage import frame_hash, read_frame, table_path
from .base import Partition, Stage, StageResult, failure


def choose_references(
    target_id: str, target_video: str, candidates: list[tuple], k: int, seed: int, quality_weight: float = 0.0
) -> list[tuple[str, str]]:
    """Up to `k` (reference_id, video_id) from other videos than the target's, best quality first.

    `candidates` are (reference_id, video_id) or (reference_id, video_id, quality) with quality in
    [0, 1] (1 when absent). They are drawn without replacement with weight quality ** quality_weight
    (Efraimidis-Spirakis keys from a pseudo-random number seeded per target and reference, so the
    draw is deterministic), one per video first so the references spread over as many videos as
    possible; the chosen ones are returned best quality first."""
    def weight(c: tuple) -> float:
        return max(c[2] if len(c) > 2 else 1.0, 1e-3) ** quality_weight

    def key(c: tuple) -> float:  # log(u) / w: larger is drawn earlier; a heavier weight pulls it toward 0
        u = unit_interval("ref", seed, target_id, c[0])
        return math.log(u) / weight(c) if u > 0 else -math.inf

    others = [c for c in candidates if c[1] != target_video]
    ranked = sorted(others, key=lambda c: (-key(c), c[0]))
    chosen: list[tuple] = []
    used_videos: set[str] = set()
    for c in ranked:  # first pass: one per video
        if len(chosen) < k and c[1] not in used_videos:
            chosen.append(c)
            used_videos.add(c[1])
    for c in ranked:
        if len(chosen) < k and c not in chosen:
            chosen.append(c)
    chosen.sort(key=lambda c: (-(c[2] if len(c) > 2 else 1.0), -key(c)))
    return [(c[0], c[1]) for c in chosen]


class PairsStage(Stage):
    name = "pairs"
    reads = ("videos", "identities", "targets", "references")
    in_driver = True
    sections = ("pairs",)
    version = "4"

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        targets = tables["targets"].filter(pl.col("status") == "ok").select("target_id", "video_id", "identity_id")
        refs = tables["references"].filter(pl.col("status") == "ok").select(
            "reference_id", "video_id", "identity_id", "quality")
        links = tables["identities"].filter(pl.col("status") == "ok").select("video_id", "identity_id").unique()
        # The previous run's splits keep splits stable; like identify's history, not an input of the plan hash.
        m = self.recipe.manifests_dir
        prev = (read_frame(m, "pairs", ok_only=True).select("identity_id", "split").unique()
                if table_path(m, "pairs").exists() else pl.DataFrame({"identity_id": [], "split": []}))
        sources = tables["videos"].filter(pl.col("source").is_not_null()).select("video_id", "source")
        data = {"targets": targets.sort("target_id"), "references": refs.sort("reference_id"),
                "links": links.sort("video_id", "identity_id"), "sources": sources.sort("video_id")}
        return [Partition("all", {**data, "previous": prev}, frame_hash(*data.values()))]

    def process(self, partition: Partition) -> StageResult:
        cfg = self.recipe.pairs
        by_identity: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
        for r in partition.data["references"].iter_rows(named=True):
            by_identity[r["identity_id"]].append((r["reference_id"], r["video_id"], r["quality"]))
        targets = partition.data["targets"]
        hours = {i: n * TARGET_FRAMES / TARGET_FPS / 3600
                 for i, n in targets.group_by("identity_id").len().iter_rows()}
        groups = identity_groups(partition.data["links"].filter(pl.col("identity_id").is_in(list(hours))).rows())
        split = assign_splits(groups, hours, cfg.seed, cfg.splits, dict(partition.data["previous"].rows()))
        source = dict(partition.data["sources"].iter_rows())
        rows = []
        for t in targets.iter_rows(named=True):
            own = source.get(t["video_id"])
            # With sources known, a reference comes from another source, not only another video.
            candidates = [c for c in by_identity.get(t["identity_id"], []) if own is None or source.get(c[1]) != own]
            chosen = choose_references(t["target_id"], t["video_id"], candidates, cfg.references_per_target,
                                       cfg.seed, cfg.quality_weight)
            row = dict(key=t["target_id"], target_id=t["target_id"], reference_ids=[c[0] for c in chosen],
                       identity_id=t["identity_id"], target_video_id=t["video_id"],
                       reference_video_ids=[c[1] for c in chosen], split=split[t["identity_id"]], status="ok",
                       error=None)
            if len(chosen) < cfg.references_per_target:
                row.update(status="skipped", error=failure(
                    t["target_id"], f"identity {t['identity_id']} has {len(chosen)} reference window(s) in other "
                    f"videos{f' of other sources than {own!r}' if own else ''}, {cfg.references_per_target} needed"))
            rows.append(row)
        return StageResult(rows)
