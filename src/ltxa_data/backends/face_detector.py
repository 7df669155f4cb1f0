"""Face detectors on OpenCV: the bundled Haar cascade (offline default) and YuNet from a local .onnx file."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import SystemicError

HAAR_CASCADE = "haarcascade_frontalface_default.xml"


class FaceDetector(Protocol):
    """Faces in RGB uint8 frames [N, H, W, 3]: per frame a float array [n, 5] of (x, y, w, h, score)
    in that frame's pixels."""

    def detect(self, frames: np.ndarray) -> list[np.ndarray]: ...


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade; the score is 1 (the cascade gives none)."""

    def __init__(self, min_neighbors: int = 3, min_size: int = 24) -> None:
        import cv2

        self._cv2 = cv2
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + HAAR_CASCADE)
        if self.cascade.empty():
            raise SystemicError(f"OpenCV's {HAAR_CASCADE} does not load; reinstall opencv-python-headless")
        self.min_neighbors, self.min_size = min_neighbors, min_size

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        out = []
        for f in frames:
            gray = self._cv2.cvtColor(np.ascontiguousarray(f), self._cv2.COLOR_RGB2GRAY)
            found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=self.min_neighbors,
                                                  minSize=(self.min_size, self.min_size))
            boxes = np.asarray(found, np.float64).reshape(-1, 4)
            out.append(np.hstack([boxes, np.ones((len(boxes), 1))]))
        return out


class YuNetFaceDetector:
    """OpenCV's FaceDetectorYN (YuNet) from a local .onnx model."""

    def __init__(self, model: Path, score_threshold: float = 0.7) -> None:
        import cv2

        check_yunet_model(model)
        self._cv2 = cv2
        self.net = cv2.FaceDetectorYN.create(str(model), "", (320, 320), score_threshold)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        out = []
        for f in frames:
            self.net.setInputSize((f.shape[1], f.shape[0]))
            _, faces = self.net.detect(self._cv2.cvtColor(np.ascontiguousarray(f), self._cv2.COLOR_RGB2BGR))
            faces = np.zeros((0, 15)) if faces is None else np.asarray(faces, np.float64)
            out.append(faces[:, [0, 1, 2, 3, 14]])  # box, then 10 landmark coordinates, then the score
        return out


def check_yunet_model(model: Path) -> None:
    """Refuse a YuNet model path that is not a readable .onnx file."""
    if not model.is_file():
        raise SystemicError(f"targets.face.yunet_model {model} does not exist; download "
                            "face_detection_yunet_2023mar.onnx from opencv_zoo and set its path")
    if model.suffix.lower() != ".onnx":
        raise SystemicError(f"targets.face.yunet_model {model} is not an .onnx file")
