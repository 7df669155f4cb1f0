"""pairs: give every target its reference(s) — same identity, different video — and its split."""

from __future__ import annotations

from collections import defaultdict

import polars as pl

from ..ids import unit_interval
from ..splits import split_of
from ..storage import frame_hash
from .base import Partition, Stage, StageResult, failure


def choose_references(
    target_id: str, target_video: str, candidates: list[tuple[str, str]], k: int, seed: int
) -> list[tuple[str, str]]:
    """Up to `k` (reference_id, video_id) from other videos than the target's, spread over as many
    videos as possible, in a deterministic pseudo-random order seeded per target."""
    others = [c for c in candidates if c[1] != target_video]
    ranked = sorted(others, key=lambda c: unit_interval("ref", seed, target_id, c[0]))
    chosen: list[tuple[str, str]] = []
    used_videos: set[str] = set()
    for c in ranked:  # first pass: one per video
        if len(chosen) < k and c[1] not in used_videos:
            chosen.append(c)
            used_videos.add(c[1])
    for c in ranked:
        if len(chosen) < k and c not in chosen:
            chosen.append(c)
    return chosen


class PairsStage(Stage):
    name = "pairs"
    reads = ("targets", "references")
    sections = ("pairs",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        targets = tables["targets"].filter(pl.col("status") == "ok").select("target_id", "video_id", "identity_id")
        refs = tables["references"].filter(pl.col("status") == "ok").select("reference_id", "video_id", "identity_id")
        data = {"targets": targets.sort("target_id"), "references": refs.sort("reference_id")}
        return [Partition("all", data, frame_hash(*data.values()))]

    def process(self, partition: Partition) -> StageResult:
        cfg = self.recipe.pairs
        by_identity: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for r in partition.data["references"].iter_rows(named=True):
            by_identity[r["identity_id"]].append((r["reference_id"], r["video_id"]))
        rows = []
        for t in partition.data["targets"].iter_rows(named=True):
            chosen = choose_references(t["target_id"], t["video_id"], by_identity.get(t["identity_id"], []),
                                       cfg.references_per_target, cfg.seed)
            row = dict(key=t["target_id"], target_id=t["target_id"], reference_ids=[c[0] for c in chosen],
                       identity_id=t["identity_id"], target_video_id=t["video_id"],
                       reference_video_ids=[c[1] for c in chosen],
                       split=split_of(t["identity_id"], cfg.seed, cfg.splits), status="ok", error=None)
            if len(chosen) < cfg.references_per_target:
                row.update(status="skipped", error=failure(
                    t["target_id"], f"identity {t['identity_id']} has {len(chosen)} reference window(s) in other "
                    f"videos, {cfg.references_per_target} needed"))
            rows.append(row)
        return StageResult(rows)
