"""Cost of the face gates per target window: the targets stage's per-window work (decode, detection,
tracking) with the old default (Haar, no gates), with dlib's HOG detector, and with the active-speaker and
face-identity checks on, measured in one run on the same windows of a generated corpus.

    python benchmarks/face_gates.py [--clips 12] [--threads 1]

Prints ms per window for each configuration, the checks' own time and their share of the stage, and each
configuration's ratio to the old default.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ltxa_data.corpus.generate import generate_corpus, load_ground_truth
from ltxa_data.media import probe
from ltxa_data.recipe import CorpusConfig, Recipe
from ltxa_data.stages.targets import TargetsStage


def _stage(detector: str, gates: bool) -> TargetsStage:
    targets = {"crop": "face", "face": {"detector": detector},
               "active_speaker": {"check": gates}, "face_identity": {"check": gates}}
    stage = TargetsStage(Recipe.model_validate({"name": "bench", "input": {"paths": ["."]},
                                                "output": {"dir": "out"}, "targets": targets}))
    stage.setup()
    return stage


def _time(stage: TargetsStage, windows: list[tuple[dict, dict]]) -> tuple[float, float, int]:
    """(seconds per window, of which in the face checks, windows kept)."""
    spent = [0.0]
    check = stage.check_face

    def timed(*args: object) -> dict:
        t0 = time.perf_counter()
        try:
            return check(*args)  # type: ignore[arg-type]
        finally:
            spent[0] += time.perf_counter() - t0

    stage.check_face = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    kept = sum(stage.track(video, dict(row))["status"] == "ok" for video, row in windows)
    n = len(windows)
    return (time.perf_counter() - t0) / n, spent[0] / n, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=12, help="talking clips (one window each)")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads")
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory(prefix="ltxa_face_gates_") as td:
        cfg = CorpusConfig(seed=3, speakers=8, clips_per_speaker=max(1, -(-args.clips // 8)), two_speaker_clips=0,
                           scene_cut_clips=0, short_clips=0, listener_clips=0, still_clips=0, dub_clips=0,
                           lipsync_clips=0, phone_clips=0)
        root = Path(td)
        generate_corpus(root, cfg)
        windows = []
        for clip in load_ground_truth(root)["clips"][: args.clips]:
            path = root / clip["path"]
            p = probe(path)
            video = dict(path=str(path), rel_path=clip["path"], width=p.width, height=p.height,
                         duration_s=p.duration_s)
            windows.append((video, dict(target_id=clip["path"], start_frame=25, start_s=1.0, crop_x=0, crop_y=0,
                                        crop_w=0, crop_h=0, status="ok", error=None)))
        runs = {}
        for name, detector, gates in (("haar, no gates (old default)", "haar", False),
                                      ("dlib_hog, no gates", "dlib_hog", False),
                                      ("dlib_hog + both gates (default)", "dlib_hog", True)):
            runs[name] = _time(_stage(detector, gates), windows)
    base = runs["haar, no gates (old default)"][0]
    print(f"{len(windows)} windows of 121 frames, {args.threads} thread(s)")
    print(f"{'configuration':<34}{'ms/window':>10}{'in checks':>11}{'kept':>6}{'vs old':>8}")
    for name, (per, checks, kept) in runs.items():
        print(f"{name:<34}{1000 * per:>10.0f}{1000 * checks:>11.0f}{kept:>6}{per / base:>7.2f}x")
    gated, plain = runs["dlib_hog + both gates (default)"][0], runs["dlib_hog, no gates"][0]
    print(f"the gates add {1000 * (gated - plain):.0f} ms per window (decoding every frame of it, landmarks, "
          f"scoring, a descriptor): {(gated - plain) / gated:.0%} of the targets stage's work per window")


if __name__ == "__main__":
    main()
