"""Prior identity labels: a video's label from its path (`input.label_regex`, scan's `label` column) or a
labels CSV (`identify.labels_csv`), and which of its voices the label names."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from ..recipe import Recipe


def video_identities_from_csv(path: Path, videos: pl.DataFrame) -> dict[str, str]:
    """video_id -> identity from a CSV with columns `video` (a path, a path relative to its input
    root, or a video_id) and `identity`; rows naming no known video are ignored."""
    by_name: dict[str, str] = {}
    for v in videos.iter_rows(named=True):
        by_name.update({v["video_id"]: v["video_id"], v["rel_path"]: v["video_id"], v["path"]: v["video_id"]})
    out = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            vid = by_name.get((row.get("video") or "").strip())
            if vid is not None and (row.get("identity") or "").strip():
                out[vid] = row["identity"].strip()
    return out


def prior_labels(recipe: Recipe, videos: pl.DataFrame) -> dict[str, str]:
    """video_id -> label: from the path regex (scan's `label` column), overridden by the labels CSV."""
    out = {v: lab for v, lab in zip(videos["video_id"], videos["label"], strict=True) if lab}
    if recipe.identify.labels_csv:
        out.update(video_identities_from_csv(recipe.resolve(recipe.identify.labels_csv), videos))
    return out


def main_speaker_labels(voices: pl.DataFrame) -> list[str | None]:
    """A video's label names its main speaker (most clean speech); other voices are unlabelled."""
    best: dict[str, int] = {}
    speech = voices["speech_s"].to_list()
    for i, (vid, lab) in enumerate(zip(voices["video_id"], voices["video_label"], strict=True)):
        if lab and (vid not in best or speech[i] > speech[best[vid]]):
            best[vid] = i
    chosen = set(best.values())
    return [lab if i in chosen else None for i, lab in enumerate(voices["video_label"])]
