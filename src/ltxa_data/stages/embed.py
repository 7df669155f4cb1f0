"""embed: one speaker embedding per (video, local speaker), from that speaker's clean speech."""

from __future__ import annotations

from dataclasses import dataclass

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
        pending: list[_Speaker] = []
        rows = guarded(work, lambda item: self._cut_windows(item, pending), self._failed)
        # One embedding call for the whole partition: the backend batches windows across videos.
        clips = [c for sp in pending for c in sp.clips]
        emb = self.embedder.embed(clips, AUDIO_SAMPLE_RATE) if clips else np.zeros((0, 0), np.float32)
        at = 0
        for sp in pending:
            window_emb, at = emb[at : at + len(sp.clips)], at + len(sp.clips)
            mean = window_emb.mean(axis=0)
            mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
            rows.append(_row(sp.video_id, sp.speaker, mean.astype(np.float32).tolist(), sp.speech_s, len(sp.clips),
                             float(np.mean(window_emb @ mean)), "ok", None))
        return StageResult(rows)

    def _failed(self, item: tuple[dict, pl.DataFrame], reason: str) -> dict:
        video = item[0]
        return _row(video["video_id"], "", None, 0.0, 0, None, "failed", failure(video["rel_path"], reason))

    def _cut_windows(self, item: tuple[dict, pl.DataFrame], pending: list[_Speaker]) -> list[dict]:
        """Skip rows for speakers with too little clean speech; the others' windows go to `pending`."""
        video, turns = item
        cfg = self.recipe.embed
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=1)[0]
        rows, speakers = [], []
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
            # Whole windows get exactly the same sample count, so a batching backend can stack them;
            # copies, so that the video's audio is freed before the partition's embedding call.
            sr = AUDIO_SAMPLE_RATE
            clips = [audio[round(s * sr) : round(s * sr) + round((e - s) * sr)].copy() for s, e in windows]
            speakers.append(_Speaker(video["video_id"], speaker, speech_s, clips))
        pending.extend(speakers)  # only once the whole video succeeded
        return rows


@dataclass
class _Speaker:
    """One local speaker's windows, waiting for the partition's embedding call."""

    video_id: str
    speaker: str
    speech_s: float
    clips: list[np.ndarray]


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
