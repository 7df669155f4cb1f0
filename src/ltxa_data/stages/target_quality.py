"""The material-quality gates of a target window: its picture (enlargement, face sharpness, head pose, burned-in
text; `analysis.picture`, `analysis.overlay_text`) and the learned quality of its speech (`backends.speech_quality`).

Each function returns the row's new columns and the gate records in `gates.TARGET_GATES` order; the targets
stage appends the records and skips the window at the first that fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.overlay_text import overlay_fraction
from ..analysis.picture import face_sharpness, head_pose, pose_extremes, upscale_factor
from ..backends.speech_quality import SpeechQualityScorer, SpeechScores
from ..backends.text_detector import TextDetector
from ..gates import TARGET_GATES
from ..media import crop_frame
from ..recipe import TARGET_FRAMES, Recipe

SPEECH_GATES = ("speech_ovrl", "speech_sig", "speech_bak", "speech_povrl")
TEXT_SIDE = 512
"""Side of the crop the text detector searches (the overlay rule is relative to it; 512 is the usual target)."""


def picture_gates(recipe: Recipe, faces: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray, frames: np.ndarray,
                  work: float, crop: tuple[int, int, int, int], text: TextDetector | None,
                  pad: str = "black") -> tuple[dict[str, Any], list[dict]]:
    """The picture measures of a window and their gate records.

    `faces`: the window's analysis squares around the tracked face [F, S, S, 3], `boxes` [F, 4] and `landmarks`
    [F, 68, 2] in their pixels; `frames`: the window's frames at `work` x the source's displayed size; `crop`:
    the target's crop box in source pixels."""
    cfg = recipe.targets.picture
    pose = pose_extremes(head_pose(landmarks, faces.shape[1]))
    measures: dict[str, Any] = dict(
        upscale=round(upscale_factor(crop[2], recipe.targets.size), 4),
        face_sharpness=round(face_sharpness(faces, boxes), 4),
        head_yaw=round(pose["yaw"], 2), head_pitch=round(pose["pitch"], 2), head_roll=round(pose["roll"], 2),
        text_fraction=None)
    if text is not None:
        picks = np.linspace(0, TARGET_FRAMES - 1, cfg.text_frames).round().astype(int) if cfg.text_frames > 1 \
            else np.array([TARGET_FRAMES // 2])
        box = tuple(round(v * work) for v in crop)
        side = TEXT_SIDE
        shown = np.stack([crop_frame(frames[i], box, side, pad) for i in picks])  # type: ignore[arg-type]
        measures["text_fraction"] = round(overlay_fraction(text.detect(shown), side, side), 4)
    records = [TARGET_GATES[name].record(measures[str(TARGET_GATES[name].column)] if not TARGET_GATES[name].absolute
                                         else abs(measures[str(TARGET_GATES[name].column)]), recipe)
               for name in ("upscale", "sharpness", "yaw", "pitch", "roll")]
    if text is not None:
        records.append(TARGET_GATES["burned_text"].record(measures["text_fraction"], recipe))
    return measures, records


def scores_columns(s: SpeechScores) -> dict[str, float | None]:
    """The `dnsmos_*` columns of a window's scores, as stored (rounded; gates read the stored values)."""
    return dict(dnsmos_sig=round(s.sig, 4), dnsmos_bak=round(s.bak, 4), dnsmos_ovrl=round(s.ovrl, 4),
                dnsmos_povrl=None if s.povrl is None else round(s.povrl, 4))


def speech_gates(recipe: Recipe, scorer: SpeechQualityScorer, audio: np.ndarray) -> tuple[dict[str, Any], list[dict]]:
    """The learned speech-quality scores of a window's audio (mono, 16 kHz, as the shard carries it) and the
    records of the floors the recipe turns on."""
    measures = scores_columns(scorer.score([audio])[0])
    gates = [TARGET_GATES[n] for n in SPEECH_GATES if TARGET_GATES[n].applies(recipe)]
    return measures, [g.record(measures[str(g.column)], recipe) for g in gates]
