"""Cutting target windows against FFmpeg's own speed: 8 windows of 121 frames at 25 fps, a 1080x1080 crop
scaled to 512x512, from a 90 s 1080p29.97 H.264 source (x264 defaults: long GOPs), one CPU core each.

    python benchmarks/cut.py [--seconds 90] [--out /tmp/bench-cut]

The anchor is the ffmpeg CLI doing decode + fps + crop + scale of exactly the same windows (input seeking,
one thread, raw RGB out); ours is `media.read_frames`, as the shard stage calls it. Both run pinned to one
core (taskset). Prints seconds per window, real-time factors and ours / FFmpeg's speed (the target is
>= 0.8).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

FPS, FRAMES, SIZE, CROP = 25, 121, 512, (420, 0, 1080, 1080)


def source(out: Path, seconds: float) -> Path:
    """A generated 1080p29.97 H.264 clip with sound (moving test pattern; x264 veryfast, default GOP)."""
    path = out / f"src1080p2997-{seconds:g}s.mp4"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=1920x1080:rate=30000/1001", "-f", "lavfi", "-i",
                        "sine=frequency=440:sample_rate=48000", "-t", str(seconds), "-c:v", "libx264", "-preset",
                        "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def _ffmpeg(src: Path, start: float) -> list[str]:
    x, y, w, h = CROP
    return ["taskset", "-c", "0", "ffmpeg", "-loglevel", "error", "-threads", "1", "-ss", f"{start:.3f}", "-i",
            str(src), "-frames:v", str(FRAMES), "-filter_threads", "1", "-vf",
            f"fps={FPS},crop={w}:{h}:{x}:{y},scale={SIZE}:{SIZE}:flags=bicubic", "-an", "-f", "rawvideo", "-pix_fmt",
            "rgb24", "-y", "/dev/null"]


_OURS = """
import json, sys, time
from ltxa_data.media import read_frames
src, starts, fps, frames, size, crop = json.loads(sys.argv[1])
t0 = time.perf_counter()
for s in starts:
    out = read_frames(src, [s + k / fps for k in range(frames)], crop=tuple(crop), size=size)
    assert out.shape == (frames, size, size, 3)
print(time.perf_counter() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0, help="source length")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-cut"))
    args = ap.parse_args()
    src = source(args.out, args.seconds)
    span = FRAMES / FPS
    starts = [round(1.0 + i * (args.seconds - span - 2.0) / max(1, args.windows - 1), 3) for i in range(args.windows)]
    t0 = time.perf_counter()
    for s in starts:
        subprocess.run(_ffmpeg(src, s), check=True)
    anchor = time.perf_counter() - t0
    arg = json.dumps([str(src), starts, FPS, FRAMES, SIZE, list(CROP)])
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    import os

    ours = float(subprocess.run(["taskset", "-c", "0", sys.executable, "-c", _OURS, arg], check=True,
                                capture_output=True, text=True, env={**os.environ, **env}).stdout.split()[-1])
    video_s = len(starts) * span
    print(f"{len(starts)} windows of {FRAMES} frames ({video_s:.1f} s of video) from {src.name}, one core each")
    print(f"  ffmpeg CLI (decode + fps + crop + scale): {anchor:6.1f} s  {anchor / len(starts):.2f} s/window  "
          f"{video_s / anchor:.2f}x real time")
    print(f"  media.read_frames:                        {ours:6.1f} s  {ours / len(starts):.2f} s/window  "
          f"{video_s / ours:.2f}x real time")
    print(f"  ours / FFmpeg speed: {anchor / ours:.2f}x (target >= 0.8)")


if __name__ == "__main__":
    main()
