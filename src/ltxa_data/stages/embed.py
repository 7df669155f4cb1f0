"""embed: one speaker embedding per (video, local speaker), from that speaker's clean speech."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..backends import SpeakerEmbedder, load_embedder
from ..media import read_audio
from ..recipe import AUDIO_SAMPLE_RATE
from .base import Partition, Stage, StageResult, failure, guarded, partitions_by
from .scan import ok_videos


class EmbedStage(Stage):
    name = "voices"
    reads = ("videos", "turns")
    sections = ("embed",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        turns = tables["turns"].filter(pl.col("status") == "ok")
        videos = ok_videos(tables["videos"]).select("video_id", "path", "rel_path")
        videos = videos.filter(pl.col("video_id").is_in(turns.get_column("video_id").unique().to_list()))
        return partitions_by("video_id", self.recipe.embed.videos_per_partition, {"videos": videos, "turns": turns})

    def setup(self) -> None:
        self.embedder: SpeakerEmbedder = load_embedder(self.recipe)

    def process(self, partition: Partition) -> StageResult:
        turns = partition.data["turns"]
        work = [(v, turns.filter(pl.col("video_id") == v["video_id"])) for v in partition.data["videos"].to_dicts()]
        return StageResult(guarded(work, self._embed_video, self._failed))

    def _failed(self, item: tuple[dict, pl.DataFrame], reason: str) -> dict:
        video = item[0]
        return _row(video["video_id"], "", None, 0.0, 0, None, "failed", failure(video["rel_path"], reason))

    def _embed_video(self, item: tuple[dict, pl.DataFrame]) -> list[dict]:
        video, turns = item
        cfg = self.recipe.embed
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=1)[0]
        rows = []
        for speaker in sorted(turns.get_column("speaker").unique().to_list()):
            clean = turns.filter((pl.col("speaker") == speaker) & ~pl.col("overlap")).sort("start_s")
            spans = list(zip(clean.get_column("start_s").to_list(), clean.get_column("end_s").to_list(), strict=True))
            speech_s = float(sum(e - s for s, e in spans))
            if speech_s < cfg.min_speech_s:
                rows.append(_row(video["video_id"], speaker, None, speech_s, 0, None, "skipped", failure(
                    video["rel_path"], f"less clean speech than embed.min_speech_s={cfg.min_speech_s} "
                    f"(speaker {speaker}: {speech_s:.1f} s)")))
                continue
            windows = speech_windows(spans, cfg.window_s, cfg.max_windows)
            clips = [audio[round(s * AUDIO_SAMPLE_RATE) : round(e * AUDIO_SAMPLE_RATE)] for s, e in windows]
            emb = self.embedder.embed(clips, AUDIO_SAMPLE_RATE)
            mean = emb.mean(axis=0)
            mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
            quality = float(np.mean(emb @ mean))
            rows.append(_row(video["video_id"], speaker, mean.astype(np.float32).tolist(), speech_s, len(windows),
                             quality, "ok", None))
        return rows


def speech_windows(spans: list[tuple[float, float]], window_s: float, max_windows: int) -> list[tuple[float, float]]:
    """Cut spans into windows of `window_s` (a span's shorter remainder of at least half a window
    is kept) and keep at most `max_windows`, evenly spread over the recording."""
    out = []
    for s, e in spans:
        t = s
        while e - t >= window_s - 1e-9:
            out.append((t, t + window_s))
            t += window_s
        if e - t >= window_s / 2:
            out.append((t, e))
    if len(out) > max_windows:
        idx = np.linspace(0, len(out) - 1, max_windows).round().astype(int)
        out = [out[i] for i in idx]
    return out


def _row(video_id: str, speaker: str, emb: list[float] | None, speech_s: float, n: int, quality: float | None,
         status: str, error: str | None) -> dict:
    return dict(voice_id=f"{video_id}-{speaker or 'none'}", video_id=video_id, speaker=speaker, embedding=emb,
                speech_s=round(speech_s, 3), num_windows=n, quality=quality, status=status, error=error)
