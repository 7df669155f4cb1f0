"""The material-quality gates of a target window: its picture (enlargement, face sharpness, head pose, burned-in
text; `analysis.picture`, `analysis.overlay_text`) and the learned quality of its speech (`backends.speech_quality`).

Each function returns the row's new columns and the gate records in `gates.TARGET_GATES` order; the targets
stage appends the records and skips the window at the first that fails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..analysis.overlay_text import overlay_fraction
from ..analysis.picture import face_sharpness, head_pose, pose_extremes, upscale_factor
from ..backends.speech_quality import SpeechQualityScorer, SpeechScores
from ..backends.text_detector import TextDetector
from ..gates import TARGET_GATES
from ..recipe import TARGET_FRAMES, Recipe

DNSMOS_COLUMNS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_povrl")
SPEECH_GATES = ("speech_ovrl", "speech_sig", "speech_bak", "speech_povrl")
TEXT_SIDE = 512
"""Side of the crop the text detector searches (the overlay rule is relative to it; 512 is the usual target)."""


def text_frames(recipe: Recipe) -> list[int]:
    """The frames of a window the text detector searches: `targets.picture.text_frames`, evenly spaced, first
    and last included (one: the middle)."""
    n = recipe.targets.picture.text_frames
    if n == 1:
        return [TARGET_FRAMES // 2]
    return [int(i) for i in np.linspace(0, TARGET_FRAMES - 1, n).round()]


def picture_gates(recipe: Recipe, faces: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray,
                  crop: tuple[int, int, int, int], text: TextDetector | None,
                  shown: np.ndarray | None) -> tuple[dict[str, Any], list[dict]]:
    """The picture measures of a window and their gate records.

    `faces`: the window's analysis squares around the tracked face [F, S, S, 3], `boxes` [F, 4] and `landmarks`
    [F, 68, 2] in their pixels; `crop`: the target's crop box in source pixels; `shown`: the `text_frames` of the
    window cut as the shard cuts them, at `TEXT_SIDE` (searched by `text`). A measure that cannot be made (no
    landmark fit in any frame) is recorded as none, which fails its gate."""
    pose = pose_extremes(head_pose(landmarks, faces.shape[1]))
    measures: dict[str, Any] = dict(
        upscale=_stored(upscale_factor(crop[2], recipe.targets.size), 4),
        face_sharpness=_stored(face_sharpness(faces, boxes), 4),
        head_yaw=_stored(pose["yaw"], 2), head_pitch=_stored(pose["pitch"], 2), head_roll=_stored(pose["roll"], 2),
        text_fraction=None)
    if text is not None and shown is not None:
        measures["text_fraction"] = round(overlay_fraction(text.detect(shown), TEXT_SIDE, TEXT_SIDE), 4)
    records = []
    for name in ("upscale", "sharpness", "yaw", "pitch", "roll", *(("burned_text",) if text is not None else ())):
        gate = TARGET_GATES[name]
        value = measures[str(gate.column)]
        records.append(gate.record(None if value is None else abs(value) if gate.absolute else value, recipe))
    return measures, records


def _stored(value: float, digits: int) -> float | None:
    """A measure as stored: rounded (gates read the stored value), None when it could not be made (NaN)."""
    return None if value is None or math.isnan(value) else round(float(value), digits)


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
