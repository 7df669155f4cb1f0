"""targets: 121-frame windows on the 25 fps grid where one identified speaker talks, and their crop.

Each candidate window is face-tracked (see `ltxa_data.faces`) unless `targets.face.required` is off:
a window with no face, or more than one, in most sampled frames is skipped with that reason and the
next-best window of the video is tried in its place (up to `2 x max_per_video` tries per video).
`crop: face` puts one steady square around the tracked face; `crop: center` keeps the centred
square and skips a window whose face leaves it.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ..faces import face_track, faces_outside, sampled_offsets, steady_crop
from ..ids import child_id
from ..media import read_frames
from ..recipe import TARGET_FPS, TARGET_FRAMES
from ..windows import single_speaker_windows
from .base import failure
from .scenes import crosses_cut
from .speaker_windows import SpeakerWindowStage, speaker_spans

TARGET_SECONDS = TARGET_FRAMES / TARGET_FPS


def center_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


def downscale(frames: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(frames shrunk so their longer side is at most `max_side`, the factor applied)."""
    import cv2

    h, w = frames.shape[1:3]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return frames, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]), scale


class TargetsStage(SpeakerWindowStage):
    name = "targets"
    version = "4"
    reads = ("videos", "scenes", "turns", "identities")
    sections = ("targets",)

    def setup(self) -> None:
        self.detector = None
        if self.recipe.targets.face.required:
            from ..backends import load_face_detector

            self.detector = load_face_detector(self.recipe)

    def track(self, video: dict, row: dict) -> dict:
        """The row with its face track (and, for `crop: face`, the crop around it), or skipped with the reason."""
        cfg = self.recipe.targets.face
        offsets = sampled_offsets(cfg.sample_every)
        frames = read_frames(video["path"], [(row["start_frame"] + k) / TARGET_FPS for k in offsets])
        small, scale = downscale(frames, cfg.detect_side)
        assert self.detector is not None, "setup() loads the detector when targets.face.required is on"
        dets = [d[:, :4] / scale for d in self.detector.detect(small)]
        track, why = face_track(offsets, dets, cfg.min_face_ratio, cfg.min_iou)
        n_single = sum(len(d) == 1 for d in dets)
        row = {**row, "face_ratio": n_single / len(dets)}
        if track is None:
            return {**row, "status": "skipped", "error": failure(video["rel_path"], why)}
        med = np.median(np.array(track)[:, 1:], axis=0)
        row.update(face_x=round(float(med[0]), 1), face_y=round(float(med[1]), 1), face_w=round(float(med[2]), 1),
                   face_h=round(float(med[3]), 1), face_track=track)
        if self.recipe.targets.crop == "face":
            crop, pad = steady_crop(track, cfg.margin, video["width"], video["height"])
            return {**row, "crop_x": crop[0], "crop_y": crop[1], "crop_w": crop[2], "crop_h": crop[3],
                    "crop_pad": list(pad)}
        outside = faces_outside(track, (row["crop_x"], row["crop_y"], row["crop_w"], row["crop_h"]))
        if outside:
            return {**row, "status": "skipped", "error": failure(
                video["rel_path"], f"the face leaves the centre crop in {outside}/{len(track)} tracked frames")}
        return row

    def windows_of(self, video: dict, turns: pl.DataFrame, identities: pl.DataFrame) -> list[dict]:
        cfg = self.recipe.targets
        last_start = math.floor(video["duration_s"] * TARGET_FPS + 1e-6) - TARGET_FRAMES
        if last_start < 0:
            return [self.no_window(video, "skipped", f"shorter than a {TARGET_SECONDS:.2f} s target "
                                   f"({video['duration_s']:.2f} s)")]
        crop = center_square(video["width"], video["height"])
        # Without tracking every kept window is ok; with it, skipped windows make room for the next ones.
        tries = 2 * cfg.max_per_video if cfg.face.required else cfg.max_per_video
        rows = []
        for ident in identities.sort("speaker").iter_rows(named=True):
            own, others = speaker_spans(turns, ident["speaker"])
            starts = [f / TARGET_FPS for f in range(0, last_start + 1, cfg.stride_frames)
                      if not crosses_cut(f / TARGET_FPS, (f + TARGET_FRAMES - 1) / TARGET_FPS, video["cut_s"])]
            for w in single_speaker_windows(own, others, starts, TARGET_SECONDS, cfg.min_speech_ratio,
                                            cfg.max_other_speech_s, tries):
                frame = round(w.start * TARGET_FPS)
                rows.append(dict(
                    target_id=child_id(video["video_id"], ident["speaker"], frame / TARGET_FPS),
                    video_id=video["video_id"], voice_id=ident["voice_id"], identity_id=ident["identity_id"],
                    start_frame=frame, start_s=frame / TARGET_FPS, num_frames=TARGET_FRAMES,
                    duration_s=TARGET_SECONDS, crop_x=crop[0], crop_y=crop[1], crop_w=crop[2], crop_h=crop[3],
                    speech_ratio=w.speech_ratio, crop_mode=cfg.crop, crop_pad=[0, 0, 0, 0], face_ratio=None,
                    face_x=None, face_y=None, face_w=None, face_h=None, face_track=None, status="ok", error=None))
        rows = sorted(rows, key=lambda r: (-r["speech_ratio"], r["start_frame"]))[:tries]
        if cfg.face.required:
            tracked: list[dict] = []
            for r in rows:
                if sum(t["status"] == "ok" for t in tracked) == cfg.max_per_video:
                    break
                tracked.append(self.track(video, r))
            rows = tracked
        if not rows:
            within = f" within one shot (cuts at {', '.join(f'{c:.2f}' for c in video['cut_s'])} s)" \
                if video["cut_s"] else ""
            return [self.no_window(video, "skipped", f"no {TARGET_SECONDS:.2f} s window{within} where one "
                                   f"speaker talks ≥ {cfg.min_speech_ratio:.0%} and nobody else more than "
                                   f"{cfg.max_other_speech_s} s")]
        return rows

