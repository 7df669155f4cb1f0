"""Text detectors: where text is in a frame, as axis-aligned boxes (what it says is not read).

`PpOcrTextDetector` runs PaddleOCR's PP-OCRv4 text detector (a DB segmentation network, 4.75 MB, Apache-2.0)
from the `rapidocr-onnxruntime` wheel on onnxruntime's CPU provider. Only the model file is used: the wheel's
own Python modules need opencv-python and pyclipper, so it installs with `--no-deps` and is never imported. Its
preprocessing and DB post-processing (binarise at 0.3 after a 2x2 dilation, box score = mean probability inside
the box >= 0.5, unclip 1.6) follow rapidocr's `ch_ppocr_det` and its config, with two differences: the frame is
resized so its longer side is `side` and zero-padded (mid-grey once normalised) to multiples of 32 instead of
stretched to them, and a box is unclipped as the rectangle it is (rapidocr offsets its polygon with pyclipper,
whose round corners leave the same bounding rectangle).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..errors import SystemicError

PPOCR_PACKAGE = "rapidocr_onnxruntime"
PPOCR_MODEL = "models/ch_PP-OCRv4_det_infer.onnx"
PPOCR_INSTALL = "pip install --no-deps rapidocr-onnxruntime==1.4.4"
BIN_THRESH = 0.3
BOX_THRESH = 0.5
UNCLIP_RATIO = 1.6
MIN_SIDE = 3  # map pixels: thinner boxes are noise (rapidocr's min_size)
MAX_CANDIDATES = 1000
BATCH = 8


class TextDetector(Protocol):
    """Text in RGB uint8 frames [N, H, W, 3]: per frame a float array [n, 5] of axis-aligned boxes
    (x, y, w, h, score) in that frame's pixels."""

    name: str

    def detect(self, frames: np.ndarray) -> list[np.ndarray]: ...


def text_model_file(model: Path | None) -> Path:
    """The PP-OCR detector's .onnx file (`model`, or the one inside the rapidocr-onnxruntime package), checked
    without loading it; refused loudly when it, the package or onnxruntime is missing."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise SystemicError(f"onnxruntime does not import ({e}); install the project's dependencies "
                            "(`pip install onnxruntime`)") from e
    if model is None:
        # Found, not imported: its __init__ imports opencv-python and pyclipper, which the project does not install.
        spec = importlib.util.find_spec(PPOCR_PACKAGE)
        if spec is None or spec.origin is None:
            raise SystemicError(f"the {PPOCR_PACKAGE} package (the PP-OCRv4 text detector's model file) is not "
                                f"installed; `{PPOCR_INSTALL}`")
        model = Path(spec.origin).parent / PPOCR_MODEL
        if not model.is_file():
            raise SystemicError(f"the text detector's model file {model} is missing; reinstall it: "
                                f"`{PPOCR_INSTALL} --force-reinstall`")
    if not model.is_file():
        raise SystemicError(f"the text detector's model file {model} is missing; `{PPOCR_INSTALL}` ships it")
    return model


class PpOcrTextDetector:
    """PP-OCRv4's text detector on onnxruntime (CPU, `threads` intra-op threads). Frames are resized so their
    longer side is `side` (a multiple of 32); at 512, text of an 18-px font is found, in about 70 ms a frame on
    one thread (benchmarks/overlay_text_real.py)."""

    name = "ppocr"

    def __init__(self, model: Path | None = None, side: int = 512, threads: int = 1) -> None:
        import onnxruntime as ort

        if side <= 0 or side % 32:
            raise ValueError(f"side must be a positive multiple of 32, not {side}")
        path = text_model_file(model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for a corrupt or foreign file
            raise SystemicError(f"the text detector's model file {path} does not load: {e}") from e
        self.input = self.session.get_inputs()[0].name
        self.side = side

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """Text boxes (x, y, w, h, score) [n, 5] per RGB uint8 frame of `frames` [N, H, W, 3], in its pixels."""
        if len(frames) == 0:
            return []
        h, w = frames.shape[1:3]
        scale = self.side / max(h, w)
        rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
        pw, ph = -(-rw // 32) * 32, -(-rh // 32) * 32
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        out = []
        for start in range(0, len(frames), BATCH):
            chunk = frames[start:start + BATCH]
            x = np.zeros((len(chunk), 3, ph, pw), np.float32)
            for i, f in enumerate(chunk):
                small = cv2.resize(np.ascontiguousarray(f[..., ::-1]), (rw, rh), interpolation=interp)  # BGR
                x[i, :, :rh, :rw] = (small.transpose(2, 0, 1).astype(np.float32) / 255.0 - 0.5) / 0.5
            probs = self.session.run(None, {self.input: x})[0][:, 0]
            out += [db_boxes(p[:rh, :rw], w / rw, h / rh, w, h) for p in probs]
        return out


def db_boxes(prob: np.ndarray, sx: float, sy: float, width: int, height: int) -> np.ndarray:
    """DB post-processing of one probability map [h, w]: boxes (x, y, w, h, score) scaled by (sx, sy) into a
    `width` x `height` frame."""
    mask = cv2.dilate((prob > BIN_THRESH).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours[:MAX_CANDIDATES]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < MIN_SIDE:
            continue
        score = _mean_inside(prob, cv2.boxPoints(((cx, cy), (rw, rh), angle)))
        if score < BOX_THRESH:
            continue
        d = rw * rh * UNCLIP_RATIO / (2 * (rw + rh))
        if min(rw, rh) + 2 * d < MIN_SIDE + 2:
            continue
        pts = cv2.boxPoints(((cx, cy), (rw + 2 * d, rh + 2 * d), angle))
        x0, x1 = np.clip([pts[:, 0].min() * sx, pts[:, 0].max() * sx], 0, width)
        y0, y1 = np.clip([pts[:, 1].min() * sy, pts[:, 1].max() * sy], 0, height)
        if x1 - x0 > MIN_SIDE and y1 - y0 > MIN_SIDE:
            boxes.append((x0, y0, x1 - x0, y1 - y0, score))
    return np.asarray(boxes, np.float64).reshape(-1, 5)


def _mean_inside(prob: np.ndarray, pts: np.ndarray) -> float:
    """Mean of `prob` inside the polygon `pts` (rapidocr's fast box score)."""
    h, w = prob.shape
    x0, x1 = (int(np.clip(v, 0, w - 1)) for v in (np.floor(pts[:, 0].min()), np.ceil(pts[:, 0].max())))
    y0, y1 = (int(np.clip(v, 0, h - 1)) for v in (np.floor(pts[:, 1].min()), np.ceil(pts[:, 1].max())))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(pts - (x0, y0)).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])
