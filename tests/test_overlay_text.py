"""The overlay-text gate: PP-OCRv4's text detector on real photographs with and without drawn overlays, and the
rule that tells overlay lines from scene text. `benchmarks/overlay_text_real.py` measures the same on more photos
and overlays."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest

from ltxa_data.analysis.overlay_text import overlay_fraction, overlay_kind, overlay_lines, text_lines
from ltxa_data.backends.text_detector import PpOcrTextDetector, TextDetector, text_model_file
from ltxa_data.errors import SystemicError

SIZE = 512


def _photos() -> list[np.ndarray]:
    """Real photographs shipped in installed packages (matplotlib's Grace Hopper, scikit-learn's two samples),
    as 512x512 RGB crops."""
    found = []
    for module, member in (("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
                           ("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg")):
        spec = importlib.util.find_spec(module)
        path = Path(spec.origin).parent / member if spec and spec.origin else None
        if path is not None and path.is_file():
            bgr = cv2.imread(str(path))
            h, w = bgr.shape[:2]
            side = min(h, w)
            square = bgr[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
            found.append(cv2.resize(square, (SIZE, SIZE), interpolation=cv2.INTER_AREA)[..., ::-1].copy())
    return found


@cache
def _detector() -> PpOcrTextDetector:
    try:
        return PpOcrTextDetector()
    except SystemicError as e:
        pytest.skip(f"the text detector is not installed: {e}")


def _outlined(img: np.ndarray, text: str, scale: float, x: int, baseline: int,
              colour: tuple[int, int, int] = (255, 255, 255)) -> None:
    thick = max(1, round(2 * scale))
    cv2.putText(img, text, (x, baseline), cv2.FONT_HERSHEY_DUPLEX, scale, (0, 0, 0), thick + 3, cv2.LINE_AA)
    cv2.putText(img, text, (x, baseline), cv2.FONT_HERSHEY_DUPLEX, scale, colour, thick, cv2.LINE_AA)


def _subtitled(img: np.ndarray, text: str, scale: float) -> np.ndarray:
    """A copy of `img` with a white, black-outlined subtitle centred near the bottom."""
    out = img.copy()
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, max(1, round(2 * scale)))
    _outlined(out, text, scale, (SIZE - w) // 2, round(0.93 * SIZE))
    return out


def _lower_third(img: np.ndarray) -> np.ndarray:
    """A copy of `img` with a name plate (name and title on a blue band) at the bottom left."""
    out = img.copy()
    cv2.rectangle(out, (20, 380), (250, 450), (20, 50, 140), -1)
    cv2.putText(out, "Dr. Maria Lopez", (30, 410), cv2.FONT_HERSHEY_DUPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(out, "Climate scientist", (30, 438), cv2.FONT_HERSHEY_DUPLEX, 0.55, (230, 230, 230), 1, cv2.LINE_AA)
    return out


def test_subtitled_real_photos_are_flagged_and_plain_ones_are_not() -> None:
    photos = _photos()
    if not photos:
        pytest.skip("no sample photo installed (matplotlib's grace_hopper.jpg, scikit-learn's china.jpg)")
    det: TextDetector = _detector()
    plain = np.stack(photos)
    overlaid = np.stack([_subtitled(p, "I think we should talk about it.", 0.8) for p in photos]
                        + [_subtitled(p, "Where were you last night?", 1.3) for p in photos]
                        + [_lower_third(p) for p in photos])
    assert overlay_fraction(det.detect(overlaid), SIZE, SIZE) == 1.0
    assert overlay_fraction(det.detect(plain), SIZE, SIZE) == 0.0


def test_detector_boxes_are_in_the_frames_pixels() -> None:
    """A 16:9 frame (resized and padded inside the detector): the subtitle's box lands on the drawn text."""
    photos = _photos()
    if not photos:
        pytest.skip("no sample photo installed")
    frame = cv2.resize(photos[0], (1280, 720), interpolation=cv2.INTER_CUBIC)
    text = "That's exactly what happened next."
    scale, baseline = 1.6, 660
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 3)
    _outlined(frame, text, scale, (1280 - w) // 2, baseline)
    boxes = _detector().detect(frame[None])[0]
    assert boxes.shape[1] == 5 and np.all(boxes[:, 4] >= 0.5)
    lines = overlay_lines(boxes, 1280, 720)
    assert len(lines) == 1
    x, y, bw, bh = lines[0]
    assert abs(x + bw / 2 - 640) < 0.03 * 1280 and abs(bw - w) < 0.15 * w
    assert y < baseline - h / 2 < y + bh and bh < 3 * h


def test_overlay_lines_rule() -> None:
    W = H = SIZE
    wide_low = np.array([[128, 440, 256, 30, 0.9]])
    assert overlay_lines(wide_low, W, H) == [(128.0, 440.0, 256.0, 30.0)]
    logo = np.array([[226, 240, 60, 40, 0.9]])  # a small central box: a logo, a badge, a mouth
    assert overlay_lines(logo, W, H) == []
    small_corner = np.array([[400, 480, 100, 18, 0.9]])  # a corner watermark below the lower-third band
    assert overlay_lines(small_corner, W, H) == []
    two_words = np.array([[150, 450, 100, 28, 0.9], [258, 452, 110, 28, 0.8]])  # each narrower than 0.25 W
    assert text_lines(two_words) == [(150.0, 450.0, 218.0, 30.0)]
    assert overlay_lines(two_words, W, H) == [(150.0, 450.0, 218.0, 30.0)]
    stacked = np.array([[150, 400, 200, 28, 0.9], [150, 440, 200, 28, 0.9]])  # two subtitle lines stay two
    assert len(text_lines(stacked)) == 2
    far_apart = np.array([[20, 450, 60, 28, 0.9], [400, 450, 60, 28, 0.9]])  # same height, far apart: not one line
    assert len(text_lines(far_apart)) == 2 and overlay_lines(far_apart, W, H) == []
    assert overlay_kind((25, 400, 200, 32), W, H) == "lower_third"
    assert overlay_kind((300, 400, 190, 32), W, H) == "lower_third"
    assert overlay_kind((120, 30, 270, 34), W, H) == "top"
    assert overlay_kind((20, 30, 150, 34), W, H) is None  # a sign in a top corner
    assert overlay_kind((120, 440, 270, 120), W, H) is None  # too tall for its width: a picture, not a line


def test_overlay_fraction_is_the_share_of_frames() -> None:
    sub = np.array([[128, 440, 256, 30, 0.9]])
    none = np.zeros((0, 5))
    assert overlay_fraction([sub, none, none, sub], SIZE, SIZE) == 0.5
    assert overlay_fraction([], SIZE, SIZE) == 0.0


def test_text_model_file_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "det.onnx"
    with pytest.raises(SystemicError, match=re.escape(str(missing))):
        text_model_file(missing)
    with pytest.raises(SystemicError, match=re.escape(str(missing))):
        PpOcrTextDetector(missing)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "rapidocr_onnxruntime" else real_find_spec(name, *a))
    with pytest.raises(SystemicError, match=re.escape("pip install --no-deps rapidocr-onnxruntime==1.4.4")):
        text_model_file(None)
