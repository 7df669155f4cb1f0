"""The active-speaker gate on a real face and real speech: Grace Hopper's photo (matplotlib's sample data) animated
to talk with the two speakers of pyannote.audio's sample, each clip encoded (H.264 + AAC, 640x360, 25 fps) and one
121-frame window of it read, tracked and scored by `TargetsStage.track` with the recipe's defaults (dlib HOG, the
mouth_motion backend, threshold 3.5, search ±8, max offset 6).

    python benchmarks/active_speaker_real.py [--jobs 2] [--stretches 3]

The clips are those of `tests/test_real_face_gates.py` (see there how the mouth is warped and the voices cut), more
of them: `--stretches` 8-s stretches per speaker of each speaker's solo speech, and per stretch the kinds

    talking             the mouth follows the loudness of the heard speech
    talking_offset      the same with the sound d frames after the mouth, d in -6..+6 (each d on 2 stretches)
    talking_loose       a looser mouth: the loudness smoothed (jaw inertia), a random gain per syllable-length
                        stretch (0.4-1.2) and 0.8 px of noise, as a real mouth follows loudness only roughly
    talking_motion      talking, the head translating a few px and scaling ±3% slowly
    still / still_motion    the photo untouched, without and with the head motion
    dub_other           the mouth follows the other speaker's speech
    dub_same            the mouth follows the same speaker at the start furthest in time from this one
    dub_motion          dub_other with head motion
    listener            closed but for 4 small openings (1.5-3.5 px) at random times
    listener_big        6 larger openings (3.5-8 px: murmurs, smiles) at random times

Printed: per kind the score (z) and the correlation (min / median / max), the largest error of the offset found
(talking kinds) and the fraction kept against what it should be; per offset the offsets found; then the separation
of talking (all kept kinds) from non-talking windows under the scorer's z-score and under the raw correlation at the
best offset (the baseline): the lowest talking and highest non-talking value, their gap, the gap between the groups'
medians, the worst-case gap relative to the median gap (scale-free: 1 would mean the groups are as far apart at their
edges as at their middles, <= 0 that they overlap), and the ratio of the two separators' relative gaps.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

OFFSETS = [d for d in range(-6, 7) if d]
KEPT_KINDS = ("talking", "talking_offset", "talking_loose", "talking_motion")
_worker: dict = {}


def loose_opening(opening: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A mouth that follows loudness only roughly: `opening` smoothed (attack 0.6, release 0.3 per frame), times a
    random gain (0.4-1.2) per 5-10 frames, plus 0.8 px of noise, clipped to 0-12 px."""
    out = np.zeros_like(opening)
    level = 0.0
    for i, o in enumerate(opening):
        level += (0.6 if o > level else 0.3) * (o - level)
        out[i] = level
    gain = np.empty_like(opening)
    i = 0
    while i < len(gain):
        n = int(rng.integers(5, 11))
        gain[i: i + n] = rng.uniform(0.4, 1.2)
        i += n
    return np.clip(out * gain + rng.normal(0, 0.8, len(out)), 0, 12)


def specs(tracks: dict[str, np.ndarray], stretches: int) -> list:
    """The benchmark's clips (`ClipSpec`), each named kind/speaker@start[/offset]. The stretches of a speaker
    start evenly from 0 to the last start whose scored window (up to 6.2 s into the clip) is still speech; each
    offset of -6..+6 is given to two stretches, cycling over all of them."""
    from ltxa_data.recipe import TARGET_FPS
    from tests.test_real_face_gates import CLIP_S, ClipSpec, head_motion, listener_opening, stretch

    frames = round(CLIP_S * TARGET_FPS)
    speakers = sorted(tracks)
    last = min(len(t) for t in tracks.values()) / 16000 - 6.3
    starts = [float(s) for s in np.linspace(0.0, last, stretches).round(2)] if stretches > 1 else [0.0]
    total = len(speakers) * len(starts)
    out = []
    for si, spk in enumerate(speakers):
        track, other = tracks[spk], tracks[speakers[1 - si]]
        for j, s0 in enumerate(starts):
            rng = np.random.default_rng(1000 * si + j)
            tag = f"{spk}@{s0:.1f}"
            heard, mouth = stretch(track, s0)
            _, dub = stretch(other, s0)
            far = max([0.0, last, *starts], key=lambda s: abs(s - s0))  # >= 2.3 s away: other words
            _, dub_same = stretch(track, far)
            out += [ClipSpec(f"talking/{tag}", heard, mouth, None, 0),
                    ClipSpec(f"talking_loose/{tag}", heard, loose_opening(mouth, rng), None, 0),
                    ClipSpec(f"talking_motion/{tag}", heard, mouth, head_motion(frames, rng), 0),
                    ClipSpec(f"still/{tag}", heard, np.zeros(frames), None, None),
                    ClipSpec(f"still_motion/{tag}", heard, np.zeros(frames), head_motion(frames, rng), None),
                    ClipSpec(f"dub_other/{tag}", heard, dub, None, None),
                    ClipSpec(f"dub_same/{tag}<{far:.1f}", heard, dub_same, None, None),
                    ClipSpec(f"dub_motion/{tag}", heard, dub, head_motion(frames, rng), None),
                    ClipSpec(f"listener/{tag}", heard, listener_opening(frames, rng), None, None),
                    ClipSpec(f"listener_big/{tag}", heard, 2.3 * listener_opening(frames, rng, events=6), None,
                             None)]
            g = si * len(starts) + j
            for i, d in enumerate(OFFSETS):
                if (i + g) % total < 2 or total < 2:
                    h, m = stretch(track, s0, delay=d)
                    out.append(ClipSpec(f"talking_offset/{tag}/{d:+d}", h, m, None, d))
    return out


def _init(folder: str) -> None:
    import cv2

    from tests.test_real_face_gates import Material, default_stage

    cv2.setNumThreads(1)
    _worker.update(material=Material(), stage=default_stage(), folder=Path(folder))


def _run(spec) -> tuple[str, int | None, dict]:
    from tests.test_real_face_gates import run_clip

    w = _worker
    named = replace(spec, kind="".join(c if c.isalnum() or c in "+-." else "_" for c in spec.kind))
    got = run_clip(w["stage"], w["material"].head, named, w["folder"])
    (w["folder"] / f"{named.kind}.mp4").unlink()
    return spec.kind, spec.expect_offset, got


def _mmm(v: list[float]) -> str:
    return f"{min(v):6.2f} {float(np.median(v)):6.2f} {max(v):6.2f}" if v else f"{'-':>6} {'-':>6} {'-':>6}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (each single-threaded)")
    ap.add_argument("--stretches", type=int, default=3, help="8-s stretches per speaker")
    args = ap.parse_args()
    from ltxa_data.recipe import DEFAULT_SYNC_SCORE, Recipe
    from tests.test_real_face_gates import missing_material, sample_paths, voice_tracks

    why = missing_material()
    if why:
        sys.exit(f"no real material: {why}")
    sample = sample_paths()
    assert sample is not None
    tracks = voice_tracks(*sample)
    clips = specs(tracks, args.stretches)
    cfg = Recipe.model_validate({"name": "x", "input": {"paths": ["."]}, "output": {"dir": "o"}}).targets
    threshold = DEFAULT_SYNC_SCORE["mouth_motion"]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ltxa_asr_") as td, mp.get_context("fork").Pool(
            args.jobs, _init, (td,)) as pool:
        rows = pool.map(_run, clips, chunksize=1)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{len(rows)} clips (8 s, 640x360, H.264 + AAC), one 121-frame window each, {args.jobs} worker(s): "
          f"{wall:.0f} s wall, {ru.ru_utime + ru.ru_stime:.0f} s CPU; voices: "
          + ", ".join(f"{s} {len(t) / 16000:.1f} s solo" for s, t in tracks.items()))
    print(f"gate: mouth_motion, threshold {threshold}, search ±{cfg.active_speaker.search_frames}, "
          f"max offset {cfg.active_speaker.max_offset_frames}")
    fails = [(k, g) for k, _, g in rows if g["skipped_by"] not in (None, "active_speaker")]
    for k, g in fails:
        print(f"  NOT SCORED {k}: {g['error']}")
    kinds = sorted({k.split("/")[0] for k, _, _ in rows}, key=lambda s: (s not in KEPT_KINDS, s))
    print(f"\n{'kind':<16}{'n':>3}  {'score z: min    med    max':<27}{'corr: min    med    max':<25}"
          f"{'offset err':>11}{'kept':>6}{'should':>8}")
    for kind in kinds:
        got = [(e, g) for k, e, g in rows if k.split("/")[0] == kind and g["sync_score"] is not None]
        z = [g["sync_score"] for _, g in got]
        c = [g["sync_confidence"] for _, g in got]
        err = [abs(g["sync_offset"] - e) for e, g in got if e is not None]
        kept = sum(g["status"] == "ok" for _, g in got) / max(len(got), 1)
        should = "kept" if kind in KEPT_KINDS else "skipped"
        print(f"{kind:<16}{len(got):>3}  {_mmm(z):<27}{_mmm(c):<25}"
              f"{(f'max {max(err)}' if err else '-'):>11}{kept:>6.0%}{should:>8}")
    print("\noffset (sound after mouth, frames) -> offsets found [scores]")
    for d in OFFSETS:
        got = [g for k, e, g in rows if k.startswith("talking_offset/") and e == d]
        print(f"  {d:+d}: " + ", ".join(f"{g['sync_offset']:+d} [{g['sync_score']:.1f}]" for g in got))
    talk = [g for k, _, g in rows if k.split("/")[0] in KEPT_KINDS and g["sync_score"] is not None]
    other = [g for k, _, g in rows if k.split("/")[0] not in KEPT_KINDS and g["sync_score"] is not None]
    print(f"\nseparation, {len(talk)} talking vs {len(other)} non-talking windows:")
    print(f"{'separator':<22}{'lowest talking':>15}{'highest other':>15}{'gap':>8}{'median gap':>12}{'relative':>10}")
    rel = {}
    for name, key in (("z-score (the gate)", "sync_score"), ("raw correlation", "sync_confidence")):
        a, b = np.array([g[key] for g in talk]), np.array([g[key] for g in other])
        typical = float(np.median(a) - np.median(b))
        rel[name] = (a.min() - b.max()) / typical
        print(f"{name:<22}{a.min():>15.3f}{b.max():>15.3f}{a.min() - b.max():>8.3f}{typical:>12.3f}{rel[name]:>10.2f}")
    z_t = min(g["sync_score"] for g in talk)
    z_o = max(g["sync_score"] for g in other)
    print(f"threshold {threshold}: margin {z_t - threshold:+.2f} above it for the lowest talking window, "
          f"{threshold - z_o:+.2f} below it for the highest non-talking one")
    print(f"ratio: the z-score's worst-case gap is {rel['z-score (the gate)'] / rel['raw correlation']:.2f}x the raw "
          f"correlation's (each relative to its own median gap, same run)")


if __name__ == "__main__":
    main()
