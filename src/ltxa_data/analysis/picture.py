"""Picture measures of a target window's face: how sharp it is, how much the output enlarges it, and
which way the head points.

They work on what the targets stage already has per window (`TargetsStage.check_face`): the window's
frames as a steady square around the tracked face resized to 224 px, the face boxes and dlib's 68 landmarks
in those squares, and the window's source crop square and output side. `benchmarks/picture_real.py`
calibrates each measure on real photographs that ship inside Python packages; the numbers quoted below are
from it.
"""

from __future__ import annotations

import math

import numpy as np

SHARPNESS_SIDE = 48
"""Side the face box is resized to before its sharpness is measured."""

POSE_POINTS = (17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8)
"""The 68-point landmarks (iBUG 300-W order) fitted to `POSE_MODEL`: brow ends, eye corners, nose wings,
mouth corners, lower lip, chin."""

POSE_MODEL = np.array([
    [-6.825897, -6.760612, -4.402142], [-1.330353, -7.122144, -6.903745],
    [1.330353, -7.122144, -6.903745], [6.825897, -6.760612, -4.402142],
    [-5.311432, -5.485328, -3.987654], [-1.789930, -5.393625, -4.413414],
    [1.789930, -5.393625, -4.413414], [5.311432, -5.485328, -3.987654],
    [-2.005628, -1.409845, -6.165652], [2.005628, -1.409845, -6.165652],
    [-2.774015, 2.080775, -5.048531], [2.774015, 2.080775, -5.048531],
    [0.0, 3.116408, -6.097667], [0.0, 7.415691, -4.070434],
])
"""A generic head (an anthropometric 3D face model, centimetres) at `POSE_POINTS`, in camera axes: x to the
image's right, y down, z away from the camera (the nose is nearest). A frontal upright face is the identity."""


def face_sharpness(frames: np.ndarray, boxes: np.ndarray, side: int = SHARPNESS_SIDE) -> float:
    """Sharpness of the face over a window: per frame the variance of the Laplacian of the grey face box
    resized to `side` x `side` (area averaging when shrinking), the median over frames (NaN when no box
    lies in its frame). `frames`: RGB uint8 [N, S, S, 3]; `boxes`: [N, 4] (x, y, w, h) in those pixels.

    Why this measure: among the variance of the Laplacian at 40, 48, 64 and 112 px, the same normalised by
    the face's contrast, brightness or a coarser band, Tenengrad (Sobel energy) and the re-blur index, it
    separates focused real faces (Gaussian sigma <= 1 px) from defocused ones (sigma >= 3 px) with no error:
    its weakest sharp face is 1.33x its strongest defocused one (1.39-1.43x at 64 and 112 px, which depend
    far more on face size); the normalised ones, Tenengrad and re-blur overlap, since faces' texture and
    lighting vary more than their blur. Why 48 px: a real face's finest detail is softened at its own
    pixel scale (optics, demosaicing, compression), so the more pixels a face has, the sharper it looks
    at a given side. At 48 px the same face at 240 px measures 1.12-1.27x its value at 120 px (64 px: up
    to 1.41x, 112 px: up to 2.1x), while defocus still separates (40 px: only a 1.16x margin).

    Calibration (17 real faces at 90 and 120 px in a 640x360 frame, JPEG q80, the 224-px analysis square
    1.8x the face): focused 397-2510, sigma 1 px 176-1175, sigma 2 px 43-367, sigma 3 px 17-132, sigma 6 px
    6-39; 152 separates sigma <= 1 from sigma >= 3 with no error. A face that small in the working frame
    that its analysis square enlarges it measures lower: from a 1280x720 source a 64-px face reads 118-499,
    a 40-px face 46-191. dlib-detected drawn faces of the demo corpus read 1389-3181."""
    import cv2

    values = []
    for frame, (x, y, w, h) in zip(frames, np.asarray(boxes, np.float64), strict=True):
        fh, fw = frame.shape[:2]
        x0, y0 = max(0, round(x)), max(0, round(y))
        x1, y1 = min(fw, round(x + w)), min(fh, round(y + h))
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        grey = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
        shrink = min(x1 - x0, y1 - y0) > side
        face = cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        values.append(float(cv2.Laplacian(face, cv2.CV_32F).var()))
    return float(np.median(values)) if values else math.nan


def upscale_factor(crop_side_px: float, output_side: int) -> float:
    """How many times the output enlarges the source: output pixels per source pixel, `output_side /
    crop_side_px` (the window's crop square in source pixels, padding included).

    The face is scaled with its crop, so this is also the face's side in the output over its side in the
    source, whatever the margin. It is the number that says whether the source face box covers the face's
    output resolution: at or below 1 every output pixel of the face comes from at least one source pixel
    (LatentSync keeps only clips whose face box is at least its output resolution, 256 px); above 1 the
    output interpolates detail the source does not have. `min_face_side` turns a limit on it into a source
    face size.

    On real faces (512-px output, crop 2.2x the face) the output face keeps, of the fine detail (variance of
    the Laplacian at its own pixel size) it has at 0.91x, 0.78 at 1.0x, 0.66 at 1.2x, 0.52 at 1.45x, 0.35
    at 1.8x and 0.25 at 2.4x; the sharpness gate sees the loss only from about 3.6x (a 64-px face)."""
    if crop_side_px <= 0:
        raise ValueError(f"crop side must be positive, not {crop_side_px}")
    return output_side / crop_side_px


def min_face_side(output_side: int, margin: float, max_upscale: float = 1.0) -> float:
    """The smallest tracked face side (source pixels) whose `margin` x crop stays within `max_upscale`
    of the output: `output_side / (margin * max_upscale)`. A face that moves within the window gets a
    larger crop (`steady_crop`), so it may pass with a smaller face."""
    return output_side / (margin * max_upscale)


def _euler(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head rotation in `POSE_MODEL`'s camera axes, as rot = Ry(yaw)
    Rx(pitch) Rz(roll): yaw and pitch from where the nose points, roll about the face's own axis."""
    nose = -rot[:, 2]  # the model's -z: out of the face
    yaw = math.atan2(nose[0], -nose[2])
    pitch = math.atan2(-nose[1], math.hypot(nose[0], nose[2]))
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    rz = (ry @ rx).T @ rot
    roll = math.atan2(-rz[1, 0], rz[0, 0])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def head_pose(landmarks: np.ndarray, frame_side: int, focal: float | None = None) -> np.ndarray:
    """(yaw, pitch, roll) in degrees per frame [N, 3] from 68 landmarks [N, 68, 2] (pixels of square frames
    of side `frame_side`); NaN where the fit fails.

    `cv2.solvePnP` fits `POSE_MODEL` to 14 landmarks with a pinhole camera centred on the frame (focal
    `frame_side` unless given: a face square cut from a wider shot is seen through a longer lens, but
    with the face filling the square the angles hardly depend on it), starting from a frontal head in
    front of the camera so that the fit never flips behind it. Signs: yaw > 0 when the nose points to the
    image's right, pitch > 0 when it points up, roll > 0 when the face turns counter-clockwise on screen.

    A generic head on dlib's landmarks (benchmark, real photos): roll follows in-plane turns of +-10 and
    +-20 degrees within 2.3 (mean 0.6) and +30 within 2.6; at -30 one face of six mis-fits (12.7). Frontal
    portraits read yaw -2..+1; pitch carries a bias of up to about 8 degrees from the person's proportions
    and the generic model. A flat picture turned about the vertical axis reads +-15 within 3 degrees, +-30
    within 11, +-45 far too little; dlib's landmarks on a profile keep a near-frontal shape (a cameraman in
    profile reads yaw -12), so turns beyond about 40 degrees are not measured (HOG does not find them)."""
    import cv2

    lm = np.asarray(landmarks, np.float64)
    f = float(focal or frame_side)
    camera = np.array([[f, 0, frame_side / 2], [0, f, frame_side / 2], [0, 0, 1]])
    model_width = float(np.ptp(POSE_MODEL[:, 0]))
    out = np.full((len(lm), 3), np.nan)
    for i, pts in enumerate(lm):
        img = np.ascontiguousarray(pts[list(POSE_POINTS)])
        if not np.isfinite(img).all():
            continue
        width = float(np.ptp(img[:, 0])) or 1.0
        centre = img.mean(axis=0)
        depth = f * model_width / width
        tvec = np.array([[(centre[0] - frame_side / 2) * depth / f], [(centre[1] - frame_side / 2) * depth / f],
                         [depth]])
        ok, rvec, tvec = cv2.solvePnP(POSE_MODEL, img, camera, None, np.zeros((3, 1)), tvec,
                                      useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        if ok and tvec[2, 0] > 0:
            out[i] = _euler(cv2.Rodrigues(rvec)[0])
    return out


def pose_extremes(poses: np.ndarray, percentile: float = 95.0) -> dict[str, float]:
    """The window's largest head turn per angle: the `percentile` of |yaw|, |pitch|, |roll| over its frames
    (NaN frames left out; NaN when none is left). At 95 on 121 frames, the six worst frames (a blink or a
    hand mis-fitting the landmarks) do not decide it."""
    p = np.abs(np.asarray(poses, np.float64).reshape(-1, 3))
    p = p[np.isfinite(p).all(axis=1)]
    if not len(p):
        return {"yaw": math.nan, "pitch": math.nan, "roll": math.nan}
    q = np.percentile(p, percentile, axis=0)
    return {"yaw": float(q[0]), "pitch": float(q[1]), "roll": float(q[2])}
