"""embed: one speaker embedding per (video, local speaker), from that speaker's clean speech."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from .. import isolation
from ..backends import load_embedder
from ..backends.base import SpeakerEmbedder
from ..errors import SystemicError
from ..gates import failure
from ..media import read_audio
from ..recipe import AUDIO_SAMPLE_RATE
from .base import Partition, Stage, StageResult, guarded, partitions_by
from .scan import ok_videos

# Windows cut before an embedding call: bounds a worker's memory (~200 MB of 3 s windows).
FLUSH_WINDOWS = 1024
REMAINDER_GRID_S = 0.25


class EmbedStage(Stage):
    name = "embed"
    table = "voices"
    version = "2"
    reads = ("videos", "turns")
    sections = ("embed",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        turns = tables["turns"].filter(pl.col("status") == "ok")
        videos = ok_videos(tables["videos"]).select("video_id", "path", "rel_path")
        videos = videos.filter(pl.col("video_id").is_in(turns.get_column("video_id").unique().to_list()))
        return partitions_by("video_id", self.recipe.embed.videos_per_partition, {"videos": videos, "turns": turns},
                             previous=self.previous_buckets.get(""))

    def devices(self) -> list[str]:
        return [self.recipe.embed.speechbrain_ecapa.device] if self.recipe.embed.backend == "speechbrain_ecapa" else []

    def setup(self) -> None:
        self.embedder: SpeakerEmbedder = load_embedder(self.recipe)

    def process(self, partition: Partition) -> StageResult:
        turns = partition.data["turns"]
        work = [(v, turns.filter(pl.col("video_id") == v["video_id"])) for v in partition.data["videos"].to_dicts()]
        pending: list[_Speaker] = []
        voice_rows: list[dict] = []

        def cut(item: tuple[dict, pl.DataFrame]) -> list[dict]:
            rows = self._cut_windows(item, pending)
            # Retrying after a worker died: embed each video alone, so a death names that video.
            if isolation.careful() or sum(len(sp.clips) for sp in pending) >= FLUSH_WINDOWS:
                voice_rows.extend(self._embed_pending(pending))
            return rows

        rows = guarded(work, cut, self._failed, lambda item: item[0]["path"])
        voice_rows.extend(self._embed_pending(pending))
        return StageResult(rows + voice_rows)

    def _embed_pending(self, pending: list[_Speaker]) -> list[dict]:
        """Embed the waiting speakers in one call (the backend batches across videos) and empty
        `pending`. If that call fails, each video is retried alone, so a fault becomes that video's
        failed row (and one that every video shares stops the run)."""
        if not pending:
            return []
        speakers = pending.copy()
        pending.clear()
        try:
            return self._voice_rows(speakers)
        except (SystemicError, MemoryError, KeyboardInterrupt):
            raise
        except Exception:
            by_video: dict[str, list[_Speaker]] = {}
            for sp in speakers:
                by_video.setdefault(sp.video["video_id"], []).append(sp)
            return guarded(list(by_video.values()), self._voice_rows,
                           lambda group, reason: self._failed((group[0].video, None), reason),
                           lambda group: group[0].video["path"])

    def _voice_rows(self, speakers: list[_Speaker]) -> list[dict]:
        emb = self.embedder.embed([c for sp in speakers for c in sp.clips], AUDIO_SAMPLE_RATE)
        rows, at = [], 0
        for sp in speakers:
            window_emb, at = emb[at : at + len(sp.clips)], at + len(sp.clips)
            mean = window_emb.mean(axis=0)
            mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
            rows.append(_row(sp.video["video_id"], sp.speaker, mean.astype(np.float32).tolist(), sp.speech_s,
                             len(sp.clips), float(np.mean(window_emb @ mean)), "ok", None))
        return rows

    def _failed(self, item: tuple[dict, pl.DataFrame | None], reason: str) -> dict:
        video = item[0]
        return _row(video["video_id"], "", None, 0.0, 0, None, "failed", failure(video["rel_path"], reason))

    def _cut_windows(self, item: tuple[dict, pl.DataFrame], pending: list[_Speaker]) -> list[dict]:
        """Skip rows for speakers with too little clean speech; the others' windows go to `pending`."""
        video, turns = item
        self.check_unchanged(video)
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
            speakers.append(_Speaker(video, speaker, speech_s, clips))
        pending.extend(speakers)  # only once the whole video succeeded
        return rows


@dataclass
class _Speaker:
    """One local speaker's windows, waiting for the partition's embedding call."""

    video: dict
    speaker: str
    speech_s: float
    clips: list[np.ndarray]


def speech_windows(spans: list[tuple[float, float]], window_s: float, max_windows: int) -> list[tuple[float, float]]:
    """Cut spans into windows of `window_s` (a span's shorter remainder of at least half a window
    is kept, its length rounded down to a multiple of 0.25 s so that windows of equal length can be
    batched) and keep at most `max_windows`, evenly spread over the recording."""
    out = []
    for s, e in spans:
        t = s
        while e - t >= window_s - 1e-9:
            out.append((t, t + window_s))
            t += window_s
        rest = math.floor((e - t) / REMAINDER_GRID_S + 1e-9) * REMAINDER_GRID_S
        if rest >= window_s / 2:
            out.append((t, t + rest))
    if len(out) > max_windows:
        idx = np.linspace(0, len(out) - 1, max_windows).round().astype(int)
        out = [out[i] for i in idx]
    return out


def _row(video_id: str, speaker: str, emb: list[float] | None, speech_s: float, n: int, quality: float | None,
         status: str, error: str | None) -> dict:
    return dict(voice_id=f"{video_id}-{speaker or 'none'}", video_id=video_id, speaker=speaker, embedding=emb,
                speech_s=round(speech_s, 3), num_windows=n, quality=quality, status=status, error=error)
