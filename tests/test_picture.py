"""The picture measures on a real photograph (matplotlib's grace_hopper.jpg, Grace Hopper's portrait): sharpness
against Gaussian blur and face size, roll against in-plane turns of the photo, yaw of the frontal face, and the
head-pose conventions on a projected generic head. The face is cut as the targets stage cuts it: a square 1.8x
the face box around it, resized to 224 px, with dlib's landmarks from the box. `benchmarks/picture_real.py`
measures the same on more photos."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from ltxa_data.analysis.faces import steady_crop
from ltxa_data.analysis.picture import (
    POSE_MODEL,
    POSE_POINTS,
    face_sharpness,
    head_pose,
    min_face_side,
    pose_extremes,
    upscale_factor,
)
from ltxa_data.corpus.faces import real_photo
from ltxa_data.media import crop_frame

BOX = np.array([191.0, 146.0, 165.0, 165.0])
"""The face in grace_hopper.jpg (dlib's CNN detection on the full photo)."""
SIDE, MARGIN = 224, 1.8


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(real_photo()).convert("RGB"))


@pytest.fixture(scope="module")
def dlib_models():
    from ltxa_data.backends.face_detector import DlibFaceAnalyzer, DlibFaceDetector, dlib_model_files
    from ltxa_data.errors import SystemicError

    try:
        return DlibFaceDetector("hog", 1, None), DlibFaceAnalyzer(dlib_model_files(None))
    except SystemicError as e:
        pytest.skip(str(e))


def _square(frame: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The analysis square around `box` and the box in it."""
    sq, _ = steady_crop([[0.0, *box]], MARGIN, frame.shape[1], frame.shape[0])
    k = SIDE / sq[2]
    return crop_frame(frame, sq, SIDE), np.array([(box[0] - sq[0]) * k, (box[1] - sq[1]) * k, box[2] * k, box[3] * k])


def _scaled(photo: np.ndarray, face: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo resized so that its face box is `face` px, and that box."""
    s = face / BOX[3]
    img = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return img, BOX * s


def test_sharpness_falls_with_blur(photo: np.ndarray) -> None:
    frame, box = _scaled(photo, 120)
    values = []
    for sigma in (0, 1, 2, 3, 4, 6):
        blurred = cv2.GaussianBlur(frame, (0, 0), sigma) if sigma else frame
        sq, b = _square(blurred, box)
        values.append(face_sharpness(sq[None], b[None]))
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert values[0] > 10 * values[3], values


def test_sharpness_hardly_depends_on_face_size(photo: np.ndarray) -> None:
    small = face_sharpness(*(a[None] for a in _scaled(photo, 120)))
    large = face_sharpness(*(a[None] for a in _scaled(photo, 240)))
    assert 1 / 1.3 < large / small < 1.3, (small, large)


def test_sharpness_is_the_median_over_frames(photo: np.ndarray) -> None:
    frame, box = _scaled(photo, 120)
    soft = cv2.GaussianBlur(frame, (0, 0), 3)
    one = {name: face_sharpness(f[None], box[None]) for name, f in (("sharp", frame), ("soft", soft))}
    window = np.stack([frame, soft, frame])
    assert face_sharpness(window, np.stack([box] * 3)) == pytest.approx(one["sharp"])
    outside = np.array([frame.shape[1] + 10, 0, 50, 50], np.float64)
    assert face_sharpness(window, np.stack([outside, box, outside])) == pytest.approx(one["soft"])
    assert math.isnan(face_sharpness(frame[None], outside[None]))


def test_upscale_factor() -> None:
    assert upscale_factor(1024, 512) == 0.5
    assert upscale_factor(256, 512) == 2.0
    # a 2.2x crop around the smallest face allowed at 1.5x gives exactly 1.5x
    assert upscale_factor(2.2 * min_face_side(512, 2.2, 1.5), 512) == pytest.approx(1.5)
    assert min_face_side(512, 2.2) == pytest.approx(232.73, abs=0.01)
    with pytest.raises(ValueError):
        upscale_factor(0, 512)


def _pose(frame: np.ndarray, box: np.ndarray, dlib_models) -> np.ndarray:
    detector, analyzer = dlib_models
    sq, b = _square(frame, box)
    found = detector.detect(sq[None])[0]
    if len(found):
        b = found[np.argmax(found[:, 2]), :4]
    return head_pose(analyzer.landmarks(sq, b[None]), SIDE)[0]


def test_frontal_photo_faces_the_camera(photo: np.ndarray, dlib_models) -> None:
    yaw, pitch, roll = _pose(*_scaled(photo, 120), dlib_models)
    assert abs(yaw) < 5 and abs(roll) < 5 and abs(pitch) < 12, (yaw, pitch, roll)


def test_roll_follows_in_plane_turns(photo: np.ndarray, dlib_models) -> None:
    frame, box = _scaled(photo, 120)
    centre = (box[0] + box[2] / 2, box[1] + box[3] / 2)
    upright = _pose(frame, box, dlib_models)[2]
    for angle in (-30, -20, -10, 10, 20, 30):
        m = cv2.getRotationMatrix2D(centre, angle, 1.0)
        turned = cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REPLICATE)
        roll = _pose(turned, box, dlib_models)[2]
        assert roll - upright == pytest.approx(angle, abs=3), (angle, roll, upright)


def _projected(yaw: float, pitch: float, roll: float, side: int = SIDE) -> np.ndarray:
    """68 landmarks [1, 68, 2] of the generic head turned by these angles (the others at its centre)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), math.sin(r), 0], [-math.sin(r), math.cos(r), 0], [0, 0, 1]])
    cam = np.array([[side, 0, side / 2], [0, side, side / 2], [0, 0, 1]], np.float64)
    pts, _ = cv2.projectPoints(POSE_MODEL, cv2.Rodrigues(ry @ rx @ rz)[0], np.array([0.0, 0.0, 40.0]), cam, None)
    lm = np.full((68, 2), side / 2)
    lm[list(POSE_POINTS)] = pts[:, 0]
    return lm[None]


@pytest.mark.parametrize("angles", [(0, 0, 0), (20, 0, 0), (-35, 10, 0), (0, -20, 15), (15, 15, -25)])
def test_head_pose_recovers_a_turned_generic_head(angles: tuple[float, float, float]) -> None:
    assert head_pose(_projected(*angles), SIDE)[0] == pytest.approx(angles, abs=0.5)


def test_head_pose_signs() -> None:
    """Yaw > 0: the nose (nearer the camera) moves to the image's right; pitch > 0: up; roll > 0: the eye line
    turns counter-clockwise on screen (the image-right eye rises)."""
    nose, eyes = [31, 35], [36, 39, 42, 45]

    def nose_from_eyes(lm: np.ndarray) -> np.ndarray:
        return lm[0, nose].mean(axis=0) - lm[0, eyes].mean(axis=0)

    front = nose_from_eyes(_projected(0, 0, 0))
    assert nose_from_eyes(_projected(20, 0, 0))[0] > front[0] + 1
    assert nose_from_eyes(_projected(0, 20, 0))[1] < front[1] - 1
    lm = _projected(0, 0, 20)[0]
    assert lm[45, 1] < lm[36, 1]


def test_pose_extremes() -> None:
    poses = np.zeros((121, 3))
    poses[:, 0] = np.linspace(-10, 10, 121)
    poses[:3] = [90, -90, 90]  # three mis-fitted frames
    poses[3] = np.nan
    ext = pose_extremes(poses)
    assert ext["yaw"] == pytest.approx(10, abs=0.5) and ext["pitch"] < 1 and ext["roll"] < 1
    assert pose_extremes(poses, 100)["pitch"] == 90
    assert all(math.isnan(v) for v in pose_extremes(np.full((4, 3), np.nan)).values())
