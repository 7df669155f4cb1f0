"""Choosing the media library by measurement: the shard stage's window cut (121 frames resampled to 25 fps,
frame k = the source frame on screen at start + k/25, i.e. the last frame with pts <= t; a square crop scaled
to 512x512, RGB uint8) done with each candidate library, for speed and for frame-exactness.

    python benchmarks/media_libraries.py [--out /tmp/bench-media] [--libs /tmp/medlibs] [--repeat 2]
    python benchmarks/media_libraries.py --skip-speed     # exactness only
    python benchmarks/media_libraries.py --skip-exact     # speed only

Candidates (each runs in its own subprocess, so decord and decord2 -- both import as `decord` -- never meet):

- pyav: `ltxa_data.media.read_frames` (PyAV; FFmpeg's crop + bicubic scale filter graph on the decoded picture);
- pyav-cv2: the same selection on PyAV written out here, full-size `to_ndarray("rgb24")` + cv2 INTER_CUBIC;
- decord, decord2: `VideoReader(num_threads=1)`, frame timestamps from `get_frame_timestamp`, the rule applied
  to them, `get_batch`, then numpy crop + cv2 INTER_CUBIC (decord has no crop; its own resize is whole-frame);
- torchcodec, torchcodec-approx: `VideoDecoder(device="cpu", num_ffmpeg_threads=1, seek_mode="exact" |
  "approximate")` with decoder transforms crop (the core's "crop" spec, which only RandomCrop exposes
  publicly) + `Resize` (bilinear, antialiased), `get_frames_played_at(t + 1e-6)`.

decord and decord2 are not project dependencies; install each into its own folder under --libs:

    .venv/bin/pip install --no-deps --target /tmp/medlibs/decord decord==0.6.0
    .venv/bin/pip install --no-deps --target /tmp/medlibs/decord2 decord2==3.4.0

Speed: the 8 windows of `benchmarks/cut.py` (1080x1080 crop at x=420 of its generated 90 s 1080p29.97 H.264
source), every candidate pinned to one core (taskset -c 0) with one decode thread, a fresh reader per window
(as the shard stage opens one per sample), against the ffmpeg CLI anchor of cut.py (decode + fps + crop +
scale). Best of --repeat runs each. Prints s/window and FFmpeg time / candidate time (>1: faster than FFmpeg).

Exactness: generated 1280x720 H.264 clips whose frames carry their own index as a 4x4 grid of bright/dark
blocks inside the 720x720 centre crop: CFR 23.976, 29.97 and 60 fps (x264 defaults: B-frames), VFR (120 fps
source thinned by `select` to 24 / 30 / 60 fps segments and random drops, -fps_mode vfr), and a long-GOP
clip (-g 600, no scene cuts: keyframes every 20 s) with windows starting 0.1 s before a keyframe and deep
inside GOPs. The truth is ffprobe's frame pts (integers x time base) paired with the index read from the
ffmpeg CLI's sequential decode; a window passes when every returned frame's index is the one the rule picks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cut import CROP, FPS, FRAMES, SIZE, _ffmpeg, source

EPS = 1e-6
CANDIDATES = ["pyav", "pyav-cv2", "decord", "decord2", "torchcodec", "torchcodec-approx"]
LIBS = {"decord": "decord", "decord2": "decord2"}  # candidate -> folder under --libs
_THREADS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# ---------------------------------------------------------------------------------------------------------
# Candidates: make_cut(name) -> cut(src, times, crop, size) -> uint8 [F, size, size, 3]
# ---------------------------------------------------------------------------------------------------------


def _cv2_crop_resize(frames: np.ndarray, crop, size: int) -> np.ndarray:
    import cv2

    x, y, w, h = crop
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f[y : y + h, x : x + w], (size, size), interpolation=cv2.INTER_CUBIC)
    return out


def _select(pts: np.ndarray, times) -> np.ndarray:
    """Index of the last frame with pts <= t (+EPS) for each t; frames before the first are the first."""
    return np.maximum(np.searchsorted(pts, np.asarray(times) + EPS, side="right") - 1, 0)


def _cut_pyav(src, times, crop, size):
    from ltxa_data.media import read_frames

    return read_frames(src, times, crop=tuple(crop), size=size)


def _cut_pyav_cv2(src, times, crop, size):
    import av

    out: list[np.ndarray | None] = [None] * len(times)
    with av.open(str(src)) as c:
        vs = c.streams.video[0]
        vs.thread_count = 1
        if times[0] > 2.0:
            c.seek(int((times[0] - 1.0) / vs.time_base), stream=vs, backward=True)
        k, held, held_img = 0, None, None
        for frame in c.decode(vs):
            ft = float(frame.time)
            while k < len(times) and times[k] + EPS < ft:
                if held_img is None:
                    held_img = _cv2_crop_resize(held.to_ndarray(format="rgb24")[None], crop, size)[0]
                out[k] = held_img
                k += 1
            if k >= len(times):
                break
            held, held_img = frame, None
        while k < len(times):
            if held_img is None:
                held_img = _cv2_crop_resize(held.to_ndarray(format="rgb24")[None], crop, size)[0]
            out[k] = held_img
            k += 1
    return np.stack(out)


def _cut_decord(src, times, crop, size):
    from decord import VideoReader, cpu

    vr = VideoReader(str(src), ctx=cpu(0), num_threads=1)
    pts = vr.get_frame_timestamp(np.arange(len(vr)))[:, 0]
    idx = _select(pts, times)
    uniq, inv = np.unique(idx, return_inverse=True)
    frames = vr.get_batch(uniq.tolist()).asnumpy()
    return _cv2_crop_resize(frames, crop, size)[inv]


def _torchcodec_cut(seek_mode: str):
    def cut(src, times, crop, size):
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import DecoderTransform, Resize

        class Crop(DecoderTransform):  # the core's "crop, h, w, x, y" spec (public only through RandomCrop)
            def __init__(self, x, y, w, h):
                self.box = (x, y, w, h)

            def _make_transform_spec(self, input_dims):
                x, y, w, h = self.box
                return f"crop, {h}, {w}, {x}, {y}"

            def _get_output_dims(self):
                return (self.box[3], self.box[2])

        dec = VideoDecoder(str(src), dimension_order="NHWC", num_ffmpeg_threads=1, device="cpu",
                           seek_mode=seek_mode, transforms=[Crop(*crop), Resize((size, size))])
        return dec.get_frames_played_at([t + EPS for t in times]).data.numpy()

    return cut


def make_cut(name: str):
    return {"pyav": _cut_pyav, "pyav-cv2": _cut_pyav_cv2, "decord": _cut_decord, "decord2": _cut_decord,
            "torchcodec": _torchcodec_cut("exact"), "torchcodec-approx": _torchcodec_cut("approximate")}[name]


def library_version(name: str) -> str:
    if name.startswith("pyav"):
        import av

        return f"av {av.__version__} (FFmpeg {av.ffmpeg_version_info})"
    if name.startswith("decord"):
        import decord

        return f"decord {decord.__version__} from {Path(decord.__file__).parent.parent}"
    import torchcodec
    from torchcodec._core import get_ffmpeg_library_versions

    return f"torchcodec {torchcodec.__version__} (system FFmpeg {get_ffmpeg_library_versions()['ffmpeg_version']})"


# ---------------------------------------------------------------------------------------------------------
# Index pattern: frame i carries i as 16 bits, a 4x4 grid of blocks filling the square crop
# ---------------------------------------------------------------------------------------------------------

W, H, GRID, BITS = 1280, 720, 4, 16
EX_CROP = ((W - H) // 2, 0, H, H)


def pattern(i: int) -> np.ndarray:
    img = np.full((H, W), 90, np.uint8)
    img[:, : EX_CROP[0]] = (i * 7) % 256  # changing picture outside the crop, so P-frames carry something
    cell = H // GRID
    for b in range(BITS):
        r, c = divmod(b, GRID)
        img[r * cell : (r + 1) * cell, EX_CROP[0] + c * cell : EX_CROP[0] + (c + 1) * cell] = 210 if i >> b & 1 else 40
    return img


def read_index(frame: np.ndarray) -> int:
    """The index in a crop's output frame (any square size), from the centre of each block."""
    s = frame.shape[0] / GRID
    g = frame.mean(axis=2) if frame.ndim == 3 else frame
    i = 0
    for b in range(BITS):
        r, c = divmod(b, GRID)
        y, x = int((r + 0.5) * s), int((c + 0.5) * s)
        q = max(1, int(s / 6))
        if g[y - q : y + q, x - q : x + q].mean() > 125:
            i |= 1 << b
    return i


def make_clip(out: Path, name: str, rate: str, seconds: float, extra: list[str]) -> Path:
    path = out / f"{name}.mp4"
    if path.exists():
        return path
    n = round(seconds * float(Fraction(rate)))
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{W}x{H}",
           "-framerate", rate, "-i", "-", *extra, "-c:v", "libx264", "-preset", "veryfast", "-crf", "16",
           "-pix_fmt", "yuv420p", str(path)]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert p.stdin is not None
    for i in range(n):
        p.stdin.write(pattern(i).tobytes())
    p.stdin.close()
    if p.wait():
        raise SystemExit(f"ffmpeg failed making {path}")
    return path


def truth(src: Path) -> tuple[np.ndarray, list[int]]:
    """(pts in seconds, frame index read from pixels) of every frame in presentation order, by the ffmpeg CLI."""
    pr = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                         "stream=time_base:frame=pts,best_effort_timestamp", "-of", "json", str(src)],
                        check=True, capture_output=True, text=True)
    info = json.loads(pr.stdout)
    tb = Fraction(info["streams"][0]["time_base"])
    pts = [float(f.get("pts", f.get("best_effort_timestamp")) * tb) for f in info["frames"]]
    side = 64
    x, y, w, h = EX_CROP
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(src), "-fps_mode", "passthrough", "-vf",
                          f"crop={w}:{h}:{x}:{y},scale={side}:{side}", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, side, side)
    if len(frames) != len(pts):
        raise SystemExit(f"{src}: ffprobe lists {len(pts)} frames, ffmpeg decoded {len(frames)}")
    order = np.argsort(pts, kind="stable")
    return np.asarray(pts)[order], [read_index(frames[i]) for i in order]


def cases(out: Path) -> list[dict]:
    vfr_select = ("select='if(lt(t,5),not(mod(n,5)),if(lt(t,10),not(mod(n,4)),if(lt(t,15),not(mod(n,2)),"
                  "lt(random(0),0.35))))'")
    specs = [
        ("cfr23.976", "24000/1001", 20, [], [0.0, 2.5, 7.123, 12.2, 15.0]),
        ("cfr29.97", "30000/1001", 20, [], [0.0, 2.5, 7.123, 12.2, 15.0]),
        ("cfr60", "60", 20, [], [0.0, 2.5, 7.123, 12.2, 15.0]),
        ("vfr", "120", 20, ["-vf", vfr_select, "-fps_mode", "vfr"], [0.0, 2.5, 7.123, 12.2, 15.0]),
        ("long-gop", "30000/1001", 60, ["-g", "600", "-keyint_min", "600", "-sc_threshold", "0"],
         [19.9, 33.3, 54.0]),
    ]
    return [{"name": n, "src": str(make_clip(out, n, r, s, x)), "starts": st} for n, r, s, x, st in specs]


# ---------------------------------------------------------------------------------------------------------
# Worker (one candidate, one process) and driver
# ---------------------------------------------------------------------------------------------------------


def worker(name: str, job: dict) -> dict:
    import cv2

    cv2.setNumThreads(1)
    cut = make_cut(name)
    res: dict = {"version": library_version(name)}
    windows = [[s + k / job["fps"] for k in range(job["frames"])] for s in job["starts"]]
    if job["mode"] == "speed":
        cut(job["src"], windows[0][:2], job["crop"], job["size"])  # lazy imports and library init
        t0 = time.perf_counter()
        for times in windows:
            got = cut(job["src"], times, job["crop"], job["size"])
            assert got.shape == (len(times), job["size"], job["size"], 3) and got.dtype == np.uint8, got.shape
        res["seconds"] = time.perf_counter() - t0
    else:
        res["indices"] = []
        for times in windows:
            try:
                got = cut(job["src"], times, job["crop"], job["size"])
                res["indices"].append([read_index(f) for f in got])
            except Exception as e:  # a candidate that cannot cut a window fails that window
                res["indices"].append(f"{type(e).__name__}: {e}"[:200])
    return res


def run_worker(name: str, job: dict, libs: Path, pin: bool) -> dict:
    env = {**os.environ, **_THREADS_ENV}
    if name in LIBS:
        folder = libs / LIBS[name]
        if not (folder / "decord").is_dir():
            return {"error": f"not installed in {folder} (pip install --no-deps --target {folder} ...)"}
        env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = (["taskset", "-c", "0"] if pin else []) + [sys.executable, __file__, "--worker", name, json.dumps(job)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        return {"error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1][:200]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def speed(args, names: list[str]) -> None:
    src = source(args.out, args.seconds)
    span = FRAMES / FPS
    starts = [round(1.0 + i * (args.seconds - span - 2.0) / max(1, args.windows - 1), 3)
              for i in range(args.windows)]
    job = {"mode": "speed", "src": str(src), "starts": starts, "fps": FPS, "frames": FRAMES, "crop": list(CROP),
           "size": SIZE}
    best: dict[str, float | str] = {}
    versions: dict[str, str] = {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for s in starts:
            subprocess.run(_ffmpeg(src, s), check=True)
        best["ffmpeg"] = min(float(best.get("ffmpeg", 1e9)), time.perf_counter() - t0)
        for n in names:
            if isinstance(best.get(n), str):
                continue
            r = run_worker(n, job, args.libs, pin=True)
            if "error" in r:
                best[n] = r["error"]
                continue
            versions[n] = r["version"]
            best[n] = min(float(best.get(n, 1e9)), r["seconds"])
    anchor = float(best["ffmpeg"])
    print(f"\nSpeed: {len(starts)} windows of {FRAMES} frames at {FPS} fps, crop {CROP} -> {SIZE}^2, from {src.name}; "
          f"one core (taskset -c 0), one decode thread; best of {args.repeat}")
    print(f"  {'candidate':18} {'s/window':>9} {'FFmpeg/cand':>12}")
    print(f"  {'ffmpeg CLI':18} {anchor / len(starts):9.3f} {1.0:12.2f}")
    for n in names:
        v = best[n]
        if isinstance(v, str):
            print(f"  {n:18} FAILED: {v}")
        else:
            print(f"  {n:18} {v / len(starts):9.3f} {anchor / v:12.2f}   {versions[n]}")


def exactness(args, names: list[str]) -> None:
    out = args.out / "exact"
    out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[str, str]] = {n: {} for n in names}
    cs = cases(out)
    for case in cs:
        pts, idx = truth(Path(case["src"]))
        if case["name"] != "vfr" and idx != list(range(len(idx))):
            raise SystemExit(f"{case['src']}: the ffmpeg CLI's indices are not 0..N-1; the pattern did not survive")
        job = {"mode": "exact", "src": case["src"], "starts": case["starts"], "fps": FPS, "frames": FRAMES,
               "crop": list(EX_CROP), "size": SIZE}
        for n in names:
            r = run_worker(n, job, args.libs, pin=False)
            if "error" in r:
                table[n][case["name"]] = "ERROR " + r["error"][:60]
                continue
            bad, total, first = 0, 0, ""
            for s, got in zip(case["starts"], r["indices"], strict=True):
                times = [s + k / FPS for k in range(FRAMES)]
                want = [idx[i] for i in _select(pts, times)]
                if isinstance(got, str):
                    bad, total, first = bad + FRAMES, total + FRAMES, first or f"start {s}: {got}"
                    continue
                wrong = [k for k in range(FRAMES) if got[k] != want[k]]
                total += FRAMES
                bad += len(wrong)
                if wrong and not first:
                    k = wrong[0]
                    first = f"start {s} t={times[k]:.4f}: want #{want[k]} got #{got[k]}"
            table[n][case["name"]] = "pass" if not bad else f"FAIL {bad}/{total} ({first})"
    print(f"\nExactness: windows of {FRAMES} frames at {FPS} fps, the rule 'last frame with pts <= t'; "
          f"clips in {out}")
    for n in names:
        print(f"  {n}")
        for c in cs:
            print(f"    {c['name']:10} {table[n][c['name']]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-media"))
    ap.add_argument("--libs", type=Path, default=Path("/tmp/medlibs"), help="folders holding decord, decord2")
    ap.add_argument("--seconds", type=float, default=90.0, help="speed source length")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2, help="speed: best of this many runs")
    ap.add_argument("--only", nargs="*", choices=CANDIDATES, help="candidates to run (default: all)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("job", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.job))))
        return
    names = args.only or CANDIDATES
    if not args.skip_exact:
        exactness(args, names)
    if not args.skip_speed:
        speed(args, names)


if __name__ == "__main__":
    main()
