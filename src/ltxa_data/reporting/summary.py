"""A short report of what a build made, with identity quality when ground truth is known."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from ..corpus.scoring import (
    score_attribute_pairs,
    score_face_gates,
    score_identities,
    score_quality_gates,
    true_speaker_of_voices,
)
from ..gates import TARGET_GATES
from ..recipe import Recipe
from ..storage import read_frame, table_path


def summarize(recipe: Recipe, ground_truth: Path | None = None) -> str:
    m = recipe.manifests_dir
    videos, identities = read_frame(m, "videos"), read_frame(m, "identities", ok_only=True)
    all_targets, every_ref = read_frame(m, "targets"), read_frame(m, "references")
    targets = all_targets.filter(pl.col("status") == "ok")
    refs = every_ref.filter(pl.col("status") == "ok")
    pairs, shards = read_frame(m, "pairs", ok_only=True), read_frame(m, "shards", ok_only=True)
    lines = [
        f"videos: {videos.filter(pl.col('status') == 'ok').height} ok, "
        f"{videos.filter(pl.col('status') != 'ok').height} rejected",
        f"identities: {identities['identity_id'].n_unique()} from {identities.height} voices",
        f"targets: {targets.height}   references: {refs.height}",
        "pairs by split: " + ", ".join(f"{r['split']}={r['len']}"
                                       for r in pairs.group_by("split").len().sort("split").iter_rows(named=True)),
        f"shards: {shards['shard'].n_unique()} tar(s), {shards.height} samples",
    ]
    # Candidate counts are repeated on each row of a video: count each video once.
    per_video = every_ref.filter(pl.col("candidates").is_not_null()).unique("video_id", keep="first")
    rejected = per_video.select(pl.col("rejected_by").struct.unnest()).sum().row(0, named=True)
    lines.append(f"reference candidates: {int(per_video['candidates'].sum())}; rejected by "
                 + ", ".join(f"{k} {int(v)}" for k, v in rejected.items() if v))
    if refs.height and refs["lufs"].is_not_null().any():
        lines.append(f"reference loudness: {refs['lufs'].min():.1f} to {refs['lufs'].max():.1f} LUFS"
                     + (f", normalised to {recipe.references.normalize_lufs} LUFS"
                        if recipe.references.normalize_lufs is not None else ""))
    skipped = all_targets.filter(pl.col("skipped_by").is_not_null()).group_by("skipped_by").len()
    removed = dict(zip(skipped["skipped_by"], skipped["len"], strict=True))
    lines.append("target windows removed, by gate: " + (", ".join(
        f"{name} {removed[name]}" for name in TARGET_GATES if removed.get(name)) or "none")
                 + f"; {all_targets['sync_score'].is_not_null().sum()} windows scored for active speaker")
    lines += _copies(m, removed.get("duplicate", 0), ground_truth)
    if ground_truth is not None and ground_truth.exists():
        gt = json.loads(ground_truth.read_text())
        truth = true_speaker_of_voices(read_frame(m, "turns"), videos, gt)
        s = score_identities(identities, truth)
        lines.append(f"identity grouping vs ground truth: purity {s.purity:.3f}, inverse purity "
                     f"{s.inverse_purity:.3f}, ARI {s.ari:.3f} ({s.found_identities} found / {s.true_identities} "
                     f"true; {s.split_identities} split, {s.merged_identities} merged)")
        lines += [f"vs ground truth, {g.line()}" for g in score_face_gates(all_targets, videos, gt) if g.positives
                  or g.negatives]
        lines += score_quality_gates(all_targets, every_ref, videos, gt)
        lines += score_attribute_pairs(recipe, gt)
    return "\n".join(lines)


def _copies(m: Path, skipped: int, ground_truth: Path | None) -> list[str]:
    """The groups of copies, and against a generated corpus's planted copies: pairs found and pairs right."""
    from itertools import combinations


    if not table_path(m, "duplicates").exists():
        return []
    dup = read_frame(m, "duplicates", ok_only=True)
    line = (f"copies: {dup['group_id'].n_unique()} group(s) of {dup.height} videos; {skipped} copies gave no "
            "targets (duplicates.targets one)")
    if ground_truth is not None and ground_truth.exists():
        planted = {frozenset((c["path"], c["copy_of"])) for c in json.loads(ground_truth.read_text())["clips"]
                   if c.get("kind") == "copy"}
        found = {frozenset(p) for g in dup.group_by("group_id").agg("rel_path")["rel_path"].to_list()
                 for p in combinations(g, 2)}
        line += (f"; vs ground truth: {len(found & planted)} of {len(planted)} planted copies found, "
                 f"{len(found - planted)} pair(s) wrongly grouped")
    return [line]
