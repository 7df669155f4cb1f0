"""targets: 121-frame windows on the 25 fps grid where one identified speaker talks, and their crop."""

from __future__ import annotations

import math

import polars as pl

from ..ids import child_id
from ..recipe import TARGET_FPS, TARGET_FRAMES
from ..windows import single_speaker_windows
from .scenes import crosses_cut
from .speaker_windows import SpeakerWindowStage, speaker_spans

TARGET_SECONDS = TARGET_FRAMES / TARGET_FPS


def center_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


class TargetsStage(SpeakerWindowStage):
    name = "targets"
    version = "2"
    reads = ("videos", "scenes", "turns", "identities")
    sections = ("targets",)

    def windows_of(self, video: dict, turns: pl.DataFrame, identities: pl.DataFrame) -> list[dict]:
        cfg = self.recipe.targets
        last_start = math.floor(video["duration_s"] * TARGET_FPS + 1e-6) - TARGET_FRAMES
        if last_start < 0:
            return [self.no_window(video, "skipped", f"shorter than a {TARGET_SECONDS:.2f} s target "
                                   f"({video['duration_s']:.2f} s)")]
        crop = center_square(video["width"], video["height"])
        rows = []
        for ident in identities.sort("speaker").iter_rows(named=True):
            own, others = speaker_spans(turns, ident["speaker"])
            starts = [f / TARGET_FPS for f in range(0, last_start + 1, cfg.stride_frames)
                      if not crosses_cut(f / TARGET_FPS, (f + TARGET_FRAMES - 1) / TARGET_FPS, video["cut_s"])]
            for w in single_speaker_windows(own, others, starts, TARGET_SECONDS, cfg.min_speech_ratio,
                                            cfg.max_other_speech_s, cfg.max_per_video):
                frame = round(w.start * TARGET_FPS)
                rows.append(dict(
                    target_id=child_id(video["video_id"], ident["speaker"], frame / TARGET_FPS),
                    video_id=video["video_id"], voice_id=ident["voice_id"], identity_id=ident["identity_id"],
                    start_frame=frame, start_s=frame / TARGET_FPS, num_frames=TARGET_FRAMES,
                    duration_s=TARGET_SECONDS, crop_x=crop[0], crop_y=crop[1], crop_w=crop[2], crop_h=crop[3],
                    speech_ratio=w.speech_ratio, status="ok", error=None))
        rows = sorted(rows, key=lambda r: (-r["speech_ratio"], r["start_frame"]))[: cfg.max_per_video]
        if not rows:
            within = f" within one shot (cuts at {', '.join(f'{c:.2f}' for c in video['cut_s'])} s)" \
                if video["cut_s"] else ""
            return [self.no_window(video, "skipped", f"no {TARGET_SECONDS:.2f} s window{within} where one "
                                   f"speaker talks ≥ {cfg.min_speech_ratio:.0%} and nobody else more than "
                                   f"{cfg.max_other_speech_s} s")]
        return rows

