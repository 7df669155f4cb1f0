"""Face tracks over a target window, the steady crop around them, and the face masks a sample carries.

Boxes are (x, y, w, h) floats. A track is a list of [frame offset in the window, x, y, w, h] in source
pixels at the sampled frames where the face was linked. The pixel mask of frame i is the integer box
`floor(x) <= column < ceil(x + w)`, `floor(y) <= row < ceil(y + h)` of `face_boxes[i]` (output pixels,
clipped to the frame); the latent mask marks a 32x32 cell of a latent frame when any pixel of any pixel
frame it covers is in the pixel mask, so a trainer masking those cells masks the whole face.

Masks cover the tracked box grown by `targets.face.mask_scale` about its centre (`frame_boxes`).

The default detector is dlib's HOG frontal-face detector (`targets.face.detector`). On real photographs
that ship inside Python packages (benchmarks/faces_real.py: 7 frontal photos at face heights 40-130 px in
the 320-px frame, four positions, in-plane angles up to 30 degrees) it finds the face in 86% of frames with
no false detection, against 62% and one false detection for OpenCV's Haar cascade (the old default) and 94%
for dlib's CNN detector at 76x Haar's CPU time; it holds at +-30 degrees (86%) where Haar falls to 4%.
"""

from __future__ import annotations

import math

import numpy as np

from ..media import crop_frame
from ..recipe import TARGET_FRAMES

LATENT_CELL = 32
"""Pixels per latent cell side (LTX-2 video VAE)."""
LATENT_TIME = 8
"""Pixel frames per latent frame after the first (LTX-2 video VAE: latent 0 <- frame 0, k <- 8k-7..8k)."""
ANALYSIS_SIDE = 224
"""Side of the face squares the active-speaker and face-identity checks look at (SyncNet's input size)."""
ANALYSIS_MARGIN = 1.8
"""Their side over the tracked face's side (syncnet_python pads the face box by 40% each way)."""


def sampled_offsets(every: int, num_frames: int = TARGET_FRAMES) -> list[int]:
    """Frames of a window that detection looks at: 0, every, 2*every, ... (the last frame included when
    the step lands on it)."""
    return list(range(0, num_frames, every))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def face_track(offsets: list[int], detections: list[np.ndarray], min_face_ratio: float,
               min_iou: float) -> tuple[list[list[float]] | None, str | None]:
    """(the smoothed track, None) when enough sampled frames show exactly one face; else (None, why).

    The track starts at the single-face frame nearest the median single-face box and is linked forward
    and backward by IoU with the last linked box, so a passing second face does not break it."""
    n = len(detections)
    counts = [len(d) for d in detections]
    single = [i for i, c in enumerate(counts) if c == 1]
    if len(single) / n < min_face_ratio - 1e-9:  # the `face` gate's comparison (`gates.TARGET_GATES`)
        several, none = sum(c >= 2 for c in counts), sum(c == 0 for c in counts)
        if several >= none:
            return None, f"more than one face in {several}/{n} sampled frames"
        return None, f"no face in {none}/{n} sampled frames"
    boxes = np.array([detections[i][0, :4] for i in single])
    median = np.median(boxes, axis=0)
    seed = single[int(np.argmin(np.abs(boxes - median).sum(axis=1)))]
    linked = {seed: detections[seed][0, :4]}
    for order in (range(seed + 1, n), range(seed - 1, -1, -1)):
        last = linked[seed]
        for i in order:
            if not len(detections[i]):
                continue
            scores = [iou(last, d[:4]) for d in detections[i]]
            j = int(np.argmax(scores))
            if scores[j] >= min_iou:
                last = linked[i] = detections[i][j, :4]
    idx = sorted(linked)
    pts = np.array([linked[i] for i in idx])
    # 3-tap moving average over linked samples (Haar boxes jitter by a few pixels); the two ends are
    # kept as detected, since a one-sided average would pull a moving face back by half a step.
    smooth = pts.copy()
    if len(pts) >= 3:
        smooth[1:-1] = (pts[:-2] + pts[1:-1] + pts[2:]) / 3
    return [[float(offsets[i]), *(round(float(v), 1) for v in b)] for i, b in zip(idx, smooth, strict=True)], None


def steady_crop(track: list[list[float]], margin: float, width: int,
                height: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """((x, y, side, side), (pad left, top, right, bottom)): one square for the window, centred on the
    union of the track's boxes, `margin` x the median face side and never smaller than that union. The
    square may leave the frame; the pad says by how many source pixels on each side."""
    t = np.array(track)[:, 1:]
    x0, y0 = t[:, 0].min(), t[:, 1].min()
    x1, y1 = (t[:, 0] + t[:, 2]).max(), (t[:, 1] + t[:, 3]).max()
    side = max(round(margin * float(np.median(np.maximum(t[:, 2], t[:, 3])))), math.ceil(x1 - x0),
               math.ceil(y1 - y0), 1)
    x, y = round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2)
    pad = (max(0, -x), max(0, -y), max(0, x + side - width), max(0, y + side - height))
    return (x, y, side, side), pad


def faces_outside(track: list[list[float]], crop: tuple[int, int, int, int]) -> int:
    """How many of the track's boxes have their centre outside the crop square."""
    x, y, w, h = crop
    return sum(not (x <= bx + bw / 2 <= x + w and y <= by + bh / 2 <= y + h) for _, bx, by, bw, bh in track)


def track_boxes(track: list[list[float]], num_frames: int = TARGET_FRAMES) -> np.ndarray:
    """The track's box at every frame of the window [num_frames, 4] (source pixels): linear between its
    samples, held before the first and after the last."""
    t = np.array(track)
    frames = np.arange(num_frames)
    return np.stack([np.interp(frames, t[:, 0], t[:, c]) for c in range(1, 5)], axis=1)


def frame_boxes(track: list[list[float]], crop: tuple[int, int, int, int], size: int, grow: float = 1.0,
                num_frames: int = TARGET_FRAMES) -> np.ndarray:
    """Per-frame face-mask boxes [num_frames, 4] in output pixels: the track interpolated linearly
    between its samples (held before the first and after the last), each box grown by `grow` about its
    centre, mapped through the crop and resize, and clipped to the output frame."""
    src = track_boxes(track, num_frames)
    scale = size / crop[2]
    w, h = src[:, 2] * grow * scale, src[:, 3] * grow * scale
    x0 = (src[:, 0] + src[:, 2] / 2 - crop[0]) * scale - w / 2
    y0 = (src[:, 1] + src[:, 3] / 2 - crop[1]) * scale - h / 2
    x1, y1 = np.clip(x0 + w, 0, size), np.clip(y0 + h, 0, size)
    x0, y0 = np.clip(x0, 0, size), np.clip(y0, 0, size)
    return np.round(np.stack([x0, y0, np.maximum(x1 - x0, 0), np.maximum(y1 - y0, 0)], axis=1), 2)


def _pixel_span(lo: float, extent: float, size: int) -> tuple[int, int]:
    return max(0, math.floor(lo)), min(size, math.ceil(lo + extent))


def pixel_face_mask(boxes: np.ndarray, size: int) -> np.ndarray:
    """The pixel mask bool [F, size, size] that `boxes` [F, 4] (output pixels) describe."""
    mask = np.zeros((len(boxes), size, size), bool)
    for i, (x, y, w, h) in enumerate(boxes):
        c0, c1 = _pixel_span(x, w, size)
        r0, r1 = _pixel_span(y, h, size)
        mask[i, r0:r1, c0:c1] = True
    return mask


def latent_frame_groups(num_frames: int = TARGET_FRAMES) -> list[range]:
    """The pixel frames each latent frame covers: [0], [1..8], [9..16], ..."""
    return [range(0, 1)] + [range(8 * k - 7, 8 * k + 1) for k in range(1, (num_frames - 1) // LATENT_TIME + 1)]


def latent_face_mask(boxes: np.ndarray, size: int) -> np.ndarray:
    """uint8 [latent frames, size/32, size/32]: 1 where a cell holds any face pixel of any frame it covers."""
    cells = size // LATENT_CELL
    groups = latent_frame_groups(len(boxes))
    mask = np.zeros((len(groups), cells, cells), np.uint8)
    for k, group in enumerate(groups):
        for i in group:
            x, y, w, h = boxes[i]
            c0, c1 = _pixel_span(x, w, size)
            r0, r1 = _pixel_span(y, h, size)
            if c1 > c0 and r1 > r0:
                mask[k, r0 // LATENT_CELL: -(-r1 // LATENT_CELL), c0 // LATENT_CELL: -(-c1 // LATENT_CELL)] = 1
    return mask


def dominant_face(descriptors: np.ndarray, max_distance: float, max_exact: int = 2000) -> np.ndarray:
    """The dominant face of `descriptors` [n, d]: the mean descriptor of their largest group.

    Groups come from average linkage cut at `max_distance` (Euclidean); ties go to the group holding the
    earliest descriptor. Above `max_exact` descriptors the groups are found on an evenly spaced sample."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(descriptors)
    if n == 1:
        return descriptors[0]
    sample = descriptors if n <= max_exact else descriptors[np.linspace(0, n - 1, max_exact).round().astype(int)]
    labels = fcluster(linkage(sample, method="average", metric="euclidean"), t=max_distance, criterion="distance")
    sizes = np.bincount(labels)
    biggest = [lab for lab in range(len(sizes)) if sizes[lab] == sizes.max()]
    best = min(biggest, key=lambda lab: int(np.flatnonzero(labels == lab)[0]))
    return sample[labels == best].mean(axis=0)


def face_views(frames: np.ndarray, track: list[list[float]], work: float = 1.0,
               at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(faces uint8 [F, ANALYSIS_SIDE, ANALYSIS_SIDE, 3], the track's box in each [F, 4]): one steady square
    around the tracked face, `ANALYSIS_MARGIN` x its side, cut from every frame. `frames` are the window's
    frames at `at` (default: all of them, in order), at `work` x the size the track's source pixels refer to."""
    at = np.arange(len(frames)) if at is None else np.asarray(at)
    square, _ = steady_crop([[t[0], *(v * work for v in t[1:])] for t in track], ANALYSIS_MARGIN,
                            frames.shape[2], frames.shape[1])
    faces = np.stack([crop_frame(f, square, ANALYSIS_SIDE) for f in frames])
    boxes = track_boxes(track, int(at.max()) + 1)[at] * work
    scale = ANALYSIS_SIDE / square[2]
    boxes = np.column_stack([(boxes[:, 0] - square[0]) * scale, (boxes[:, 1] - square[1]) * scale,
                             boxes[:, 2] * scale, boxes[:, 3] * scale])
    return faces, boxes


def descriptor_frames(count: int, num_frames: int = TARGET_FRAMES) -> np.ndarray:
    """The `count` frames of a window the face descriptor is averaged over: evenly spaced, ends excluded."""
    return np.linspace(0, num_frames - 1, count + 2)[1:-1].round().astype(int)


def mean_descriptor(analyzer, faces: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The mean of the descriptors of `faces` [n, H, W, 3] with their landmarks [n, 68, 2] (a
    `FaceDescriber`)."""
    return np.stack([analyzer.describe(f, lm[None])[0] for f, lm in zip(faces, landmarks, strict=True)]).mean(axis=0)
