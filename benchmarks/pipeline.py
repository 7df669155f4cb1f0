"""End-to-end pipeline throughput on a user-like corpus, per stage, against FFmpeg's and the models' own speed.

    python benchmarks/pipeline.py --scale ci        # 4 sources of ~1 min, 720p: a few minutes on 2 cores
    python benchmarks/pipeline.py                   # default: 12 sources of 2-4 min, 720p and 1080p
    python benchmarks/pipeline.py --scale full      # 32 sources of 2-10 min (about 3 h of video)
    python benchmarks/pipeline.py --scale ci --workers 2 --out /tmp/bench-pipeline

The corpus: `ltxa_data.corpus.generate.generate_corpus` draws short talking-head clips with espeak-ng speech
(`OUT/clips`, with its ground_truth.json); each source in `OUT/sources` concatenates clips of ONE speaker
(their order shuffled, looped to length) into a 1280x720 or 1920x1080 file at 25, 30000/1001 or 60 fps, with
camera-like temporal grain (`--grain`, so that bitrates and decode costs are a camera's, not a flat
drawing's), encoded by x264 with its default GOP (preset veryfast, crf 23) and AAC. Sources are cached
(OUT/sources-meta holds what each is); a rerun builds again from them. The recipe is recipes/demo.yaml less
its `corpus`, reading OUT/sources, writing OUT/build and OUT/manifests (deleted first: every run builds from
scratch), the local executor with `--workers` workers, one video per partition (so that a few sources keep
every worker busy) and small shards; it is written to OUT/recipe.yaml. Ours per stage = video seconds the
stage processed / its wall seconds (`StageReport.seconds`: planning, starting workers, loading models
included) / cores (min(workers, usable CPUs)):

    scan, fingerprints,  every ok source's duration
    scenes
    turns, voices        every source's audio duration (voices: the sources with turns)
    targets              4.84 s per window it analysed (targets rows ok or skipped, less `skipped_by: window`)
    references           every identified source's audio duration (no anchor)
    shards               4.84 s per ok sample

The anchors run after the build, on the same files, one core each (`taskset -c <first usable CPU>`):

    decode   ffmpeg -threads 1 -i SRC -map 0:v:0 -f null -                      (scan, fingerprints, scenes)
    window   ffmpeg -threads 1 -ss START -i SRC -frames:v 121 -filter_threads 1 \\
               -vf fps=25,scale=640:640:force_original_aspect_ratio=decrease -an -f rawvideo \\
               -pix_fmt rgb24 /dev/null                                         (targets: its windows,
                                                                                 read as it reads them)
    cut      ffmpeg -threads 1 -ss START -i SRC -frames:v 121 -filter_threads 1 \\
               -vf fps=25[,pad=...],crop=W:H:X:Y,scale=512:512:flags=bicubic -an -f rawvideo \\
               -pix_fmt rgb24 /dev/null                                         (shards: its samples' windows)
    x264     ffmpeg -f rawvideo -pix_fmt rgb24 -s 512x512 -r 25 -i WINDOW.rgb -c:v libx264 -preset veryfast \\
               -crf 18 -threads 1 -pix_fmt yuv420p -f mp4 OUT.mp4                (shards: `--x264-windows` of
                                                                                 those windows, cut beforehand)
    diarizer `load_diarizer(recipe)(audio, 16000)` on each source's 16 kHz mono audio, decoded beforehand,
             torch.set_num_threads(1), one warm-up call first                  (turns)
    embedder `load_embedder(recipe).embed(windows, 16000)` on exactly the windows the embed stage cuts
             from the turns manifest (`speech_windows`), audio decoded beforehand (voices)

With `--scale full` the decode and speech anchors measure `--anchor-sources` sources (one of each format
first); decode cost is extrapolated per format (size, rate) to the whole corpus. The window and cut anchors
measure at most `--anchor-windows` windows, evenly spread. "ffmpeg cut + x264" is both in a row on one core.
The targets stage also encodes the window of each target it keeps (its clip, which the shard stage takes instead
of cutting and encoding the window again): its second row is the window read plus x264 for the kept share of its
windows (samples / windows analysed), one core.
Printed: a markdown table (stage, video s, wall s, ours, anchor, anchor's speed, ours / anchor), the whole
build's wall time and real-time factor; OUT/results.json holds the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TARGET_S = 121 / 25
LANDSCAPE = {720: 1280, 1080: 1920}


@dataclass(frozen=True)
class Scale:
    speakers: int
    sources: int
    seconds: tuple[float, float]
    heights: tuple[int, ...]
    rates: tuple[str, ...]
    clips_per_speaker: int
    samples_per_shard: int
    anchor_sources: int


SCALES = {
    "ci": Scale(2, 4, (55.0, 65.0), (720,), ("25", "30000/1001", "60"), 4, 4, 4),
    "default": Scale(6, 12, (120.0, 240.0), (720, 1080), ("25", "30000/1001", "60"), 6, 8, 12),
    "full": Scale(8, 32, (120.0, 600.0), (720, 1080), ("25", "30000/1001", "60"), 8, 16, 12),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ corpus


def make_clips(out: Path, scale: Scale, seed: int) -> dict[str, list[dict]]:
    """Generated talking-head clips, per speaker: {speaker: [ground-truth clip entries]}."""
    from ltxa_data.corpus.generate import generate_corpus, load_ground_truth
    from ltxa_data.recipe import CorpusConfig

    cfg = CorpusConfig(seed=seed, speakers=scale.speakers, clips_per_speaker=scale.clips_per_speaker,
                       two_speaker_clips=0, scene_cut_clips=0, short_clips=0, listener_clips=0, still_clips=0,
                       dub_clips=0, lipsync_clips=0, phone_clips=0, clip_seconds=(10.0, 16.0))
    gt = load_ground_truth(generate_corpus(out, cfg))
    by_speaker: dict[str, list[dict]] = {}
    for c in gt["clips"]:
        # One speaker, their own face on screen, upright: the identity stays the same across the source.
        if c["kind"] == "single" and c["speakers"] == [c["identity"]] and not c.get("rotation"):
            by_speaker.setdefault(c["identity"], []).append(c)
    return by_speaker


def plan_sources(scale: Scale, clips: dict[str, list[dict]], seed: int, grain: int) -> list[dict]:
    rng = random.Random(seed)
    speakers = sorted(clips)
    plans = []
    for i in range(scale.sources):
        spk = speakers[i % len(speakers)]
        rate = scale.rates[i % len(scale.rates)]
        height = scale.heights[(i // len(scale.rates)) % len(scale.heights)]
        seconds = round(rng.uniform(*scale.seconds), 1)
        order: list[dict] = []
        while sum(c["duration_s"] for c in order) < seconds + 1.0:
            batch = rng.sample(clips[spk], len(clips[spk]))
            if order and len(batch) > 1 and batch[0]["path"] == order[-1]["path"]:
                batch.reverse()
            order += batch
        fps_tag = {"25": "25", "30000/1001": "2997", "60": "60"}[rate]
        plans.append(dict(name=f"s{i:02d}_{spk}_{height}p{fps_tag}_{round(seconds)}s.mp4", speaker=spk,
                          width=LANDSCAPE[height], height=height, rate=rate, seconds=seconds, grain=grain,
                          clips=[c["path"] for c in order]))
    return plans


def render_source(plan: dict, clips_dir: Path, dest: Path) -> None:
    """Concatenate the plan's clips (scaled, pillarboxed, resampled to the rate) into one x264/AAC file."""
    w, h, rate = plan["width"], plan["height"], plan["rate"]
    grain = f",noise=alls={plan['grain']}:allf=t" if plan["grain"] else ""
    args, chains, links = [], [], []
    for k, rel in enumerate(plan["clips"]):
        args += ["-i", str(clips_dir / rel)]
        chains.append(f"[{k}:v]fps={rate},scale={w}:{h}:force_original_aspect_ratio=decrease:flags=bicubic,"
                      f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=0x282828{grain},setsar=1,format=yuv420p[v{k}]")
        chains.append(f"[{k}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{k}]")
        links.append(f"[v{k}][a{k}]")
    graph = ";".join(chains) + ";" + "".join(links) + f"concat=n={len(links)}:v=1:a=1[v][a]"
    tmp = dest.with_name(dest.name + ".tmp.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, "-filter_complex", graph,
                    "-map", "[v]", "-map", "[a]", "-t", f"{plan['seconds']:.3f}", "-r", rate, "-c:v", "libx264",
                    "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ar", "48000",
                    "-movflags", "+faststart", str(tmp)], check=True)
    os.replace(tmp, dest)


def make_sources(out: Path, scale: Scale, seed: int, grain: int) -> Path:
    clips_dir = out / "clips"
    t0 = time.perf_counter()
    clips = make_clips(clips_dir, scale, seed)
    sources = out / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    plans = plan_sources(scale, clips, seed, grain)
    meta = out / "sources-meta"
    meta.mkdir(exist_ok=True)
    wanted = {p["name"] for p in plans}
    for old in sources.glob("*.mp4"):  # sources of another scale or seed would join the build
        if old.name not in wanted:
            old.unlink()
    made = 0
    for p in plans:
        dest, side = sources / p["name"], meta / (p["name"] + ".json")
        if dest.is_file() and side.is_file() and json.loads(side.read_text()) == p:
            continue
        render_source(p, clips_dir, dest)
        side.write_text(json.dumps(p, indent=1))
        made += 1
    total = sum(p["seconds"] for p in plans)
    log(f"corpus: {len(plans)} sources, {total / 60:.1f} min of video ({made} made, "
        f"{len(plans) - made} cached) in {time.perf_counter() - t0:.0f} s")
    return sources


# ------------------------------------------------------------------------------------------------- build


def write_recipe(out: Path, sources: Path, workers: int, scale: Scale) -> Path:
    data = yaml.safe_load((ROOT / "recipes" / "demo.yaml").read_text(encoding="utf-8"))
    data.pop("corpus", None)
    data["name"] = "bench-pipeline"
    data["input"] = {"paths": [str(sources)]}
    data["output"] = {"dir": str(out / "build"), "manifests": str(out / "manifests")}
    data["executor"] = {**data.get("executor", {}), "kind": "local", "workers": workers, "threads_per_worker": 1}
    # One video per unit of work: with a handful of long sources, bigger partitions leave workers idle.
    data.setdefault("scan", {})["files_per_partition"] = 1
    data.setdefault("scenes", {})["videos_per_partition"] = 1
    data.setdefault("duplicates", {})["videos_per_partition"] = 1  # the fingerprints stage's
    data.setdefault("diarize", {})["videos_per_partition"] = 1  # also targets' and references'
    data.setdefault("embed", {})["videos_per_partition"] = 1
    data.setdefault("shard", {})["samples_per_shard"] = scale.samples_per_shard
    path = out / "recipe.yaml"
    path.write_text("# Written by benchmarks/pipeline.py\n" + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_build(recipe_path: Path) -> tuple[object, list, float]:
    from ltxa_data.pipeline import build
    from ltxa_data.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    for d in (recipe.output_dir, recipe.manifests_dir):
        shutil.rmtree(d, ignore_errors=True)
    t0 = time.perf_counter()
    reports = build(recipe, progress=False)
    wall = time.perf_counter() - t0
    for r in reports:
        log(f"  {r.stage:>14}: {r.seconds:7.1f} s, {r.partitions} partitions, {r.counts}")
    return recipe, reports, wall


# ----------------------------------------------------------------------------------------------- anchors


def first_cpu() -> int:
    return min(os.sched_getaffinity(0))


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(["taskset", "-c", str(first_cpu()), *cmd], check=True)
    return time.perf_counter() - t0


def spread(rows: list[dict], n: int) -> list[dict]:
    if len(rows) <= n:
        return rows
    return [rows[round(i * (len(rows) - 1) / (n - 1))] for i in range(n)] if n > 1 else rows[:1]


def format_key(v: dict) -> str:
    return f"{v['width']}x{v['height']}@{v['fps']:.3f}"


def anchor_subset(videos: list[dict], n: int) -> list[dict]:
    """n sources, one of each format first."""
    seen: set[str] = set()
    first, rest = [], []
    for v in sorted(videos, key=lambda v: v["rel_path"]):
        (rest if format_key(v) in seen else first).append(v)
        seen.add(format_key(v))
    return (first + rest)[: max(n, 1)]


def decode_anchor(videos: list[dict], subset: list[dict]) -> tuple[float, float]:
    """(corpus video s, estimated single-core decode s of the whole corpus), per format from `subset`."""
    cost: dict[str, list[float]] = {}
    for v in subset:
        s = timed(["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", v["path"], "-map", "0:v:0",
                   "-f", "null", "-"])
        c = cost.setdefault(format_key(v), [0.0, 0.0])
        c[0] += s
        c[1] += v["duration_s"]
    overall = sum(c[0] for c in cost.values()) / sum(c[1] for c in cost.values())
    per = {k: c[0] / c[1] for k, c in cost.items()}
    total = sum(v["duration_s"] for v in videos)
    return total, sum(v["duration_s"] * per.get(format_key(v), overall) for v in videos)


def _window_head(row: dict) -> list[str]:
    return ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-ss", f"{row['start_frame'] / 25:.3f}",
            "-i", row["path"], "-frames:v", "121", "-filter_threads", "1"]


def _raw_tail(dest: str) -> list[str]:
    return ["-an", "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", dest]


def cut_filter(row: dict, size: int) -> str:
    x, y, w, h = row["crop_x"], row["crop_y"], row["crop_w"], row["crop_h"]
    left, top, right, bottom = (int(p) for p in (row.get("crop_pad") or [0, 0, 0, 0]))
    vf = "fps=25"
    if left or top or right or bottom:
        left, top, right, bottom = (p + p % 2 for p in (left, top, right, bottom))  # even, for 4:2:0
        vf += f",pad=iw+{left + right}:ih+{top + bottom}:{left}:{top}"
        x, y = x + left, y + top
    return vf + f",crop={w}:{h}:{max(x, 0)}:{max(y, 0)},scale={size}:{size}:flags=bicubic"


def window_anchor(rows: list[dict]) -> float:
    """Single-core seconds to decode the windows at 25 fps, frames scaled to <= 640 px (targets' read)."""
    vf = "fps=25,scale=640:640:force_original_aspect_ratio=decrease"
    return sum(timed([*_window_head(r), "-vf", vf, *_raw_tail("/dev/null")]) for r in rows)


def cut_anchor(rows: list[dict], size: int) -> float:
    """Single-core seconds of ffmpeg's cut of the windows (decode + fps + crop + scale)."""
    return sum(timed([*_window_head(r), "-vf", cut_filter(r, size), *_raw_tail("/dev/null")]) for r in rows)


def x264_anchor(rows: list[dict], size: int, crf: int) -> float:
    """Single-core seconds of x264 encoding the windows' cut frames (cut beforehand, untimed, into /dev/shm)."""
    enc = 0.0
    scratch = Path(tempfile.mkdtemp(prefix="bench-x264-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        raw, mp4 = scratch / "window.rgb", scratch / "window.mp4"
        for r in rows:
            subprocess.run([*_window_head(r), "-vf", cut_filter(r, size), *_raw_tail(str(raw))], check=True)
            enc += timed(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                          f"{size}x{size}", "-r", "25", "-i", str(raw), "-c:v", "libx264", "-preset", "veryfast",
                          "-crf", str(crf), "-threads", "1", "-pix_fmt", "yuv420p", "-f", "mp4", "-y", str(mp4)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return enc


def speech_anchors(recipe, subset: list[dict], turns) -> tuple[float, float, float, float]:
    """(audio s, diarizer s, audio s of sources with turns, embedder s): bare backend calls, one thread."""
    import numpy as np
    import polars as pl
    import torch

    from ltxa_data.backends import load_diarizer, load_embedder
    from ltxa_data.media import read_audio
    from ltxa_data.stages.embed import speech_windows

    torch.set_num_threads(1)
    diarizer, embedder = load_diarizer(recipe), load_embedder(recipe)
    cfg, sr = recipe.embed, 16000
    d_s = d_t = e_s = e_t = 0.0
    warm = False
    for v in subset:
        audio = read_audio(v["path"], sr, channels=1, duration_s=v["duration_s"])[0]
        if not warm:  # first calls build the models' graphs
            diarizer(audio[: 10 * sr], sr)
            embedder.embed([audio[: 2 * sr]], sr)
            warm = True
        t0 = time.perf_counter()
        diarizer(audio, sr)
        d_t += time.perf_counter() - t0
        d_s += v["duration_s"]
        vt = turns.filter((pl.col("video_id") == v["video_id"]) & (pl.col("status") == "ok") & ~pl.col("overlap"))
        if vt.height == 0:
            continue
        full = read_audio(v["path"], sr, channels=1)[0]  # as the embed stage reads it
        clips: list[np.ndarray] = []
        for _, g in vt.sort("start_s").group_by("speaker", maintain_order=True):
            spans = list(zip(g.get_column("start_s").to_list(), g.get_column("end_s").to_list(), strict=True))
            if sum(e - s for s, e in spans) < cfg.min_speech_s:
                continue
            clips += [full[round(s * sr) : round(s * sr) + round((e - s) * sr)].copy()
                      for s, e in speech_windows(spans, cfg.window_s, cfg.max_windows)]
        t0 = time.perf_counter()
        if clips:
            embedder.embed(clips, sr)
        e_t += time.perf_counter() - t0
        e_s += v["duration_s"]
    return d_s, d_t, e_s, e_t


# ------------------------------------------------------------------------------------------------ report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="default")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-pipeline"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--grain", type=int, default=8,
                    help="temporal noise strength (FFmpeg `noise`) added like camera grain; 8 gives x264 about "
                    "3.7 Mbit/s at 720p25 where a clean drawing gives 0.15; 0: none")
    ap.add_argument("--anchor-sources", type=int, default=None,
                    help="sources the decode and speech anchors measure (default: all, 12 with --scale full)")
    ap.add_argument("--anchor-windows", type=int, default=24,
                    help="at most this many windows (evenly spread) for the targets' read and cut anchors")
    ap.add_argument("--x264-windows", type=int, default=8, help="of the cut windows, this many for the x264 anchor")
    args = ap.parse_args()
    scale = SCALES[args.scale]
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    cores = min(args.workers, len(os.sched_getaffinity(0)))

    import polars as pl

    from ltxa_data.storage import read_frame

    sources = make_sources(out, scale, args.seed, args.grain)
    recipe_path = write_recipe(out, sources, args.workers, scale)
    log(f"build: {recipe_path}, {args.workers} workers on {cores} cores")
    recipe, reports, build_wall = run_build(recipe_path)
    m = recipe.manifests_dir

    videos_df = read_frame(m, "videos", ok_only=True)
    videos = videos_df.to_dicts()
    turns = read_frame(m, "turns")
    targets = read_frame(m, "targets")
    shards = read_frame(m, "shards", ok_only=True)
    identities = read_frame(m, "identities", ok_only=True)
    dur = dict(zip(videos_df.get_column("video_id").to_list(), videos_df.get_column("duration_s").to_list(),
                   strict=True))
    total_s = sum(dur.values())
    with_turns = set(turns.filter(pl.col("status") == "ok").get_column("video_id").to_list())
    identified = set(identities.get_column("video_id").to_list())
    vcols = videos_df.select("video_id", "path", "width", "height", "fps")
    analysed = (targets.filter(pl.col("status").is_in(["ok", "skipped"]) & pl.col("start_frame").is_not_null()
                               & (pl.col("skipped_by").is_null() | (pl.col("skipped_by") != "window")))
                .join(vcols, on="video_id").sort("target_id"))
    samples = (shards.select("key").join(targets, left_on="key", right_on="target_id").join(vcols, on="video_id")
               .sort("key"))
    processed = {
        "scan": total_s, "fingerprints": total_s, "scenes": total_s, "diarize": total_s,
        "embed": sum(dur[v] for v in with_turns if v in dur),
        "targets": analysed.height * TARGET_S,
        "references": sum(dur[v] for v in identified if v in dur),
        "shard": samples.height * TARGET_S,
    }

    # Anchors: after the build, one core each.
    n_sub = args.anchor_sources or (12 if args.scale == "full" else len(videos))
    subset = anchor_subset(videos, n_sub)
    log(f"anchors: decode of {len(subset)} sources")
    dec_s, dec_t = decode_anchor(videos, subset)
    win_rows = spread(analysed.to_dicts(), args.anchor_windows)
    log(f"anchors: targets' read of {len(win_rows)} windows")
    win_t = window_anchor(win_rows)
    cut_rows = spread(samples.to_dicts(), args.anchor_windows)
    log(f"anchors: ffmpeg cut of {len(cut_rows)} sample windows")
    cut_t = cut_anchor(cut_rows, recipe.targets.size)
    enc_rows = spread(cut_rows, args.x264_windows)
    log(f"anchors: x264 on {len(enc_rows)} of them")
    enc_t = x264_anchor(enc_rows, recipe.targets.size, recipe.shard.video_crf)
    log(f"anchors: diarizer and embedder on {len(subset)} sources")
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {first_cpu()})
    try:
        d_s, d_t, e_s, e_t = speech_anchors(recipe, subset, turns)
    finally:
        os.sched_setaffinity(0, affinity)

    def rate(video_s: float, wall_s: float) -> float | None:
        return video_s / wall_s if wall_s > 0 and video_s > 0 else None

    win_s, cut_s, enc_s = len(win_rows) * TARGET_S, len(cut_rows) * TARGET_S, len(enc_rows) * TARGET_S
    cut_rate, enc_rate = rate(cut_s, cut_t), rate(enc_s, enc_t)
    anchors = {
        "scan": ("ffmpeg decode", rate(dec_s, dec_t)),
        "fingerprints": ("ffmpeg decode", rate(dec_s, dec_t)),
        "scenes": ("ffmpeg decode", rate(dec_s, dec_t)),
        "diarize": ("diarizer forward", rate(d_s, d_t)),
        "embed": ("embedder forward", rate(e_s, e_t)),
        "targets": ("ffmpeg decode+fps+scale<=640 of its windows", rate(win_s, win_t)),
        "shard": ("ffmpeg cut (decode+fps+crop+scale)", cut_rate),
    }
    both = 1 / (1 / cut_rate + 1 / enc_rate) if cut_rate and enc_rate else None  # cut, then encode, one core
    extra = [("shard", "x264 alone", enc_rate), ("shard", "ffmpeg cut + x264", both)]
    win_rate, kept = rate(win_s, win_t), samples.height / max(1, analysed.height)
    if win_rate and enc_rate:  # the targets stage encodes the clip of each window it keeps
        extra.append(("targets", "window read + x264 of the kept ones", 1 / (1 / win_rate + kept / enc_rate)))

    rows = []
    for r in reports:
        vs = processed.get(r.stage)
        ours = rate(vs, r.seconds) / cores if vs and rate(vs, r.seconds) else None
        name, anchor = anchors.get(r.stage, ("", None))
        rows.append(dict(stage=r.stage, video_s=vs, wall_s=r.seconds, ours=ours, anchor=name, anchor_rate=anchor,
                         ratio=ours / anchor if ours and anchor else None, counts=r.counts))
        for _, ename, erate in (e for e in extra if e[0] == r.stage):
            rows.append(dict(stage=r.stage, video_s=vs, wall_s=r.seconds, ours=ours, anchor=ename,
                             anchor_rate=erate, ratio=ours / erate if ours and erate else None, counts=r.counts))

    def f(x: float | None, spec: str) -> str:
        return "" if x is None else format(x, spec)

    print(f"\n{len(videos)} sources, {total_s / 60:.1f} min of video ({args.scale}); {args.workers} workers on "
          f"{cores} cores; speeds in video s per wall s per core; anchors one core each, same files, same run\n")
    print("| stage | video s | wall s | ours | anchor | anchor's | ours / anchor |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for row in rows:
        print(f"| {row['stage']} | {f(row['video_s'], '.0f')} | {row['wall_s']:.1f} | {f(row['ours'], '.2f')} | "
              f"{row['anchor']} | {f(row['anchor_rate'], '.2f')} | {f(row['ratio'], '.2f')} |")
    print(f"\nbuild: {build_wall:.1f} s wall for {total_s:.0f} s of video: {total_s / build_wall:.2f}x real time "
          f"({total_s / build_wall / cores:.2f}x per core); {analysed.height} target windows analysed, "
          f"{samples.height} samples")
    load = os.getloadavg()
    print(f"load average after the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    (out / "results.json").write_text(json.dumps(dict(
        scale=args.scale, workers=args.workers, cores=cores, sources=len(videos), video_s=total_s,
        build_wall_s=build_wall, windows_analysed=analysed.height, samples=samples.height, rows=rows,
        anchors=dict(decode_sources=len(subset), window_count=len(win_rows), cut_count=len(cut_rows),
                     x264_count=len(enc_rows),
                     fps=[str(Fraction(v["fps"]).limit_denominator(1001)) for v in subset])), indent=1))


if __name__ == "__main__":
    main()
