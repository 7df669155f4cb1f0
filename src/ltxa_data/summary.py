"""A short report of what a build made, with identity quality when ground truth is known."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from .quality import score_identities, true_speaker_of_voices
from .recipe import Recipe
from .storage import read_frame


def summarize(recipe: Recipe, ground_truth: Path | None = None) -> str:
    m = recipe.manifests_dir
    videos, identities = read_frame(m, "videos"), read_frame(m, "identities", ok_only=True)
    targets, refs = read_frame(m, "targets", ok_only=True), read_frame(m, "references", ok_only=True)
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
    if ground_truth is not None and ground_truth.exists():
        truth = true_speaker_of_voices(read_frame(m, "turns"), videos, json.loads(ground_truth.read_text()))
        s = score_identities(identities, truth)
        lines.append(f"identity grouping vs ground truth: purity {s.purity:.3f}, inverse purity "
                     f"{s.inverse_purity:.3f}, ARI {s.ari:.3f} ({s.found_identities} found / {s.true_identities} "
                     f"true; {s.split_identities} split, {s.merged_identities} merged)")
    return "\n".join(lines)
