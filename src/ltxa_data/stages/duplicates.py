"""duplicates: groups of videos that are copies of one clip, from their perceptual fingerprints.

Candidates come from an approximate nearest-neighbour search of the fingerprints' window vectors, and
each is verified by aligning the two videos' hashes (`fingerprint.duplicate_pairs`); verified pairs are
united into groups. A group is one clip as far as the rest of the pipeline is concerned: `clip_of`
maps each video to its group, which splits and reference choice use in place of the video.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from ..analysis.fingerprint import VERSION, DuplicateConfig, Fingerprint, Match, duplicate_pairs
from ..analysis.fingerprint_store import StoredFingerprints
from ..gates import failure
from ..removals import Removals
from ..schemas import blank_row
from ..storage import frame_hash
from .base import Partition, Stage, StageResult
from .scan import ok_videos


def clip_of(duplicates: pl.DataFrame) -> dict[str, str]:
    """video_id -> group_id for the videos that have copies (any other video is its own clip)."""
    if duplicates.is_empty():
        return {}
    return dict(duplicates.filter(pl.col("status") == "ok").select("video_id", "group_id").iter_rows())


def clip(video_id: str, clips: Mapping[str, str]) -> str:
    """The clip a video shows: its duplicate group, or the video itself."""
    return clips.get(video_id, video_id)


def copies_skipped(duplicates: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """video_id -> (group_id, representative video_id) for the members that are not their group's
    representative: with `duplicates.targets: one`, no target is cut from them."""
    ok = duplicates.filter(pl.col("status") == "ok")
    rep = dict(ok.filter(pl.col("representative")).select("group_id", "video_id").iter_rows())
    return {v: (g, rep[g]) for v, g in ok.filter(~pl.col("representative")).select("video_id", "group_id").iter_rows()}


class DuplicatesStage(Stage):
    name = "duplicates"
    table = "duplicates"
    reads = ("videos", "fingerprints")
    in_driver = True
    sections = ("duplicates",)

    def config_hash(self) -> str:

        return frame_hash(super().config_hash(), VERSION)  # new fingerprints: group them again

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        if not self.recipe.duplicates.detect:
            return []
        prints = tables["fingerprints"].filter(pl.col("status") == "ok").select(
            "video_id", "file", "row", "has_sound", "steps")
        videos = ok_videos(tables["videos"]).select("video_id", "rel_path", "width", "height", "duration_s")

        # Removed videos' fingerprints join the search: a copy of one is removed too (`removals.detect`).
        data = {"prints": prints.join(videos, on="video_id", how="inner").sort("video_id"),
                "removed": Removals.load(self.recipe).perceptual().sort("fingerprint")}
        return [Partition("all", data, frame_hash(*data.values()))]

    def process(self, partition: Partition) -> StageResult:
        cfg = self.recipe.duplicates
        rows, removed = partition.data["prints"], partition.data["removed"]
        stored = StoredFingerprints(self.recipe.output_dir, rows)
        vectors, owners = stored.vectors()
        has_sound = rows.get_column("has_sound").to_numpy().astype(bool)
        gone = [Fingerprint.from_row(r) for r in removed.iter_rows(named=True)]
        if gone:
            vectors = np.concatenate([vectors, *(g.vectors for g in gone)])
            owners = np.concatenate([owners, *(np.full(len(g.vectors), len(stored) + k, np.int64)
                                               for k, g in enumerate(gone))])
            has_sound = np.concatenate([has_sound, [g.sound is not None and bool(g.sound.any()) for g in gone]])
        rule = DuplicateConfig(sound_threshold=cfg.sound_threshold, picture_threshold=cfg.picture_threshold,
                               picture_contrast=cfg.picture_contrast, min_overlap_s=cfg.min_overlap_s,
                               min_coverage=cfg.min_coverage)
        verified = duplicate_pairs(_Joined(stored, gone), k=cfg.neighbors, min_similarity=cfg.min_similarity,
                                   nprobe=cfg.nprobe, cfg=rule, vectors=(vectors, owners, has_sound))
        n = len(stored)
        copies = {}  # video index -> (removed video index, match): copies of removed videos
        for i, j, m in verified:
            if i < n <= j and (i not in copies or m.score > copies[i][1].score):
                copies[i] = (j - n, m)
        kept = [(i, j, m) for i, j, m in verified if j < n and i not in copies and j not in copies]
        out = group_rows(rows, kept)
        for i, (k, m) in sorted(copies.items()):
            r = rows.row(i, named=True)
            out.append(blank_row("duplicates", video_id=r["video_id"], group_id=removed["video_id"][k], group_size=2,
                                 representative=False, rel_path=r["rel_path"], matched_video_id=removed["video_id"][k],
                                 score=round(m.score, 4), status="skipped", error=failure(
                                     r["rel_path"], f"a copy of the removed video {removed['video_id'][k]}: removed "
                                     "too (ltxa-data remove)")))
        return StageResult(sorted(out, key=lambda r: r["video_id"]))


class _Joined(Sequence[Fingerprint]):
    """The build's stored fingerprints, then the removed videos'."""

    def __init__(self, stored: StoredFingerprints, extra: list[Fingerprint]) -> None:
        self.stored, self.extra = stored, extra

    def __len__(self) -> int:
        return len(self.stored) + len(self.extra)

    def __getitem__(self, i):  # type: ignore[override]
        return self.stored[i] if i < len(self.stored) else self.extra[i - len(self.stored)]


def group_rows(videos: pl.DataFrame, verified: list[tuple[int, int, Match]]) -> list[dict]:
    """The duplicates table's rows from the verified pairs (indices into `videos`: video_id, rel_path, width,
    height, duration_s, has_sound): connected components, each member with its strongest match."""
    n = videos.height
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, tuple[int, Match, bool]] = {}  # member -> (other, match, whether the member is b)
    for i, j, m in verified:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
        for me, other, is_b in ((i, j, False), (j, i, True)):
            if me not in best or m.score > best[me][1].score:
                best[me] = (other, m, is_b)
    members: dict[int, list[int]] = {}
    for i in best:
        members.setdefault(root(i), []).append(i)
    v = videos.to_dicts()
    out = []
    for group in members.values():
        # The best copy: most pixels, then longest, then with sound, then the smallest id.
        rep = min(group, key=lambda i: (-v[i]["width"] * v[i]["height"], -v[i]["duration_s"], not v[i]["has_sound"],
                                        v[i]["video_id"]))
        gid = min(v[i]["video_id"] for i in group)
        for i in group:
            other, m, is_b = best[i]
            out.append(dict(video_id=v[i]["video_id"], group_id=gid, group_size=len(group), representative=i == rep,
                            rel_path=v[i]["rel_path"], matched_video_id=v[other]["video_id"],
                            score=round(m.score, 4), offset_s=round(m.offset_s if is_b else -m.offset_s, 4) + 0.0,
                            overlap_s=round(m.overlap_s, 3), status="ok", error=None))
    return sorted(out, key=lambda r: r["video_id"])

