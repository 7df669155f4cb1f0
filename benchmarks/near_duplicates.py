"""Near-duplicate detection (`ltxa_data.analysis.fingerprint`): copies of generated talking-head clips found,
look-alikes rejected, fingerprint cost against FFmpeg's plain decode, and the candidate search at 100k and 1M
videos.

    python benchmarks/near_duplicates.py                        # media part, then 100k and 1M fingerprints
    python benchmarks/near_duplicates.py --sizes 100000         # the 1M search takes minutes
    python benchmarks/near_duplicates.py --no-media             # the scale part only
    python benchmarks/near_duplicates.py --out /tmp/bench-nd    # media cached there (default: a temp dir)

Media: `generate_corpus` (seed 7, 8 speakers x 6 clips and one of each other kind). Eighteen clips get a copy
of each kind: `reencode` (x264 crf 36, AAC 48k), `vp9_opus` (VP9 crf 40, Opus 32k), `rescale` (half size),
`crop` (10 % off every side), `crop_asym` (10 % off the left and the top only), `trim` (1.0625 s off the start:
half a sound hop off the grid, the worst case; 1.5 s off the end), `fps` (30 or 29.97 -> 25, else -> 29.97),
`combined` (trimmed 1.3 s / 1 s, 7 % margin crop, a third of the size, another rate, x265 crf 30, AAC 64k)
and `silent` (the audio dropped: the picture decides). spk7's six clips are only in a 1280x720 25 fps
compilation (all six, twice, scaled and pillarboxed, camera-like grain, x264 veryfast), which has two copies:
`long_trim` (20.3 s off the start, 10 s off the end, 640x360) and `long_remux` (cut at a keyframe near 15 s
without re-encoding); spk7's clips are `compilation` members of it. `other_picture`: per speaker, clip 02's
picture over clip 03's sound: a copy of clip 03's speech (the decision rule says so) and, against clip 02,
the hardest look-alike (same face, background and voice; other words).

Printed: per kind, recall (the copy ends in its original's group from `duplicate_groups`: faiss candidates,
then `match`) and precision (its verified pairs that are true), and the lowest sound agreement with its
original; per kind of look-alike, pairs matched exhaustively and how many were called copies, and the highest
sound agreement; the fingerprint's seconds per video-hour on one core against `ffmpeg -threads 1 -i F -f null -`
on the same files in the same run (their ratio), for the short clips and the 720p compilation separately.

Scale: synthetic candidate vectors (64-d) of n videos, drawn to look like the real ones measured above
(see `planted`): speakers of ~20 videos (cosine ~0.4 between one speaker's videos: one person, one
studio), 5 % of the videos with 1-3 planted copies (cosine 0.64-0.999, median 0.97, as measured).
`candidate_pairs` (the search `duplicate_pairs` runs) in a fresh process per run, exact (at sizes up to
--exact-max) and as an inverted file searched in --nprobe lists: wall seconds, peak memory, candidate pairs
per video, recall of the planted pairs (every two members of a planted group), of copy-original pairs, and
the share of copies joined to their original through true candidate pairs (all that grouping needs); the
verification of all candidates is projected from `match`'s measured time per pair (one core).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac"]
KINDS = ("reencode", "vp9_opus", "rescale", "crop", "crop_asym", "trim", "fps", "combined", "silent")
ORIGINALS = (*(f"spk{i}/clip_0{j}.mp4" for i in range(7) for j in (0, 1)), "spk0/dialog_00.mp4",
             "spk4/phone_00.mp4", "spk6/still_00.mp4", "spk2/short_00.mp4")
COMPILED = "spk7"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def copy_args(kind: str, clip: dict) -> tuple[list[str], list[str], str]:
    """(arguments before -i, after -i, file suffix) of one kind of copy of a ground-truth clip."""
    dur = clip["duration_s"]
    if kind == "reencode":
        return [], ["-c:v", "libx264", "-preset", "veryfast", "-crf", "36", "-c:a", "aac", "-b:a", "48k"], "mp4"
    if kind == "vp9_opus":
        return [], ["-c:v", "libvpx-vp9", "-crf", "40", "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8",
                    "-c:a", "libopus", "-b:a", "32k"], "webm"
    if kind == "rescale":
        return [], ["-vf", "scale=trunc(iw/4)*2:-2", *X264], "mp4"
    if kind == "crop":
        return [], ["-vf", "crop=trunc(iw*0.8/2)*2:trunc(ih*0.8/2)*2", *X264], "mp4"
    if kind == "crop_asym":
        return [], ["-vf", "crop=trunc(iw*0.9/2)*2:trunc(ih*0.9/2)*2:iw*0.1:ih*0.1", *X264], "mp4"
    if kind == "trim":
        return ["-ss", "1.0625"], ["-t", f"{dur - 2.5625:.4f}", *X264], "mp4"
    if kind == "fps":
        rate = "25" if clip["fps"] > 29 else "30000/1001"
        return [], ["-vf", f"fps={rate}", *X264], "mp4"
    if kind == "combined":
        rate = "25" if clip["fps"] > 29 else "30000/1001"
        return ["-ss", "1.3"], ["-t", f"{dur - 2.3:.3f}", "-vf", f"crop=trunc(iw*0.86/2)*2:trunc(ih*0.86/2)*2,"
                                f"scale=trunc(iw/3)*2:-2,fps={rate}", "-c:v", "libx265", "-crf", "30",
                                "-x265-params", "log-level=error", "-c:a", "aac", "-b:a", "64k"], "mp4"
    if kind == "silent":
        return [], ["-an", *X264[:6]], "mp4"
    raise ValueError(kind)


def make_media(out: Path) -> list[dict]:
    """The files to compare: [{path, name, kind, truth (the group it belongs in), speaker, picture_of}]."""
    from ltxa_data.corpus.generate import generate_corpus, load_ground_truth
    from ltxa_data.recipe import CorpusConfig

    clips_dir = out / "clips"
    if not (clips_dir / "ground_truth.json").is_file():
        generate_corpus(clips_dir, CorpusConfig(seed=7, speakers=8, clips_per_speaker=6))
    gt = {c["path"]: c for c in load_ground_truth(clips_dir)["clips"]}
    files = []
    for rel in sorted(gt):
        compiled = rel.startswith(f"{COMPILED}/clip_")
        files.append(dict(path=str(clips_dir / rel), name=rel, kind="compilation" if compiled else "original",
                          truth="compilation" if compiled else rel, speaker=rel.split("/")[0]))
    copies = out / "copies"
    copies.mkdir(exist_ok=True)
    for rel in ORIGINALS:
        for kind in KINDS:
            before, after, suffix = copy_args(kind, gt[rel])
            dest = copies / f"{rel.replace('/', '_')[:-4]}.{kind}.{suffix}"
            if not dest.is_file():
                ffmpeg(*before, "-i", str(clips_dir / rel), *after, str(dest))
            files.append(dict(path=str(dest), name=f"{rel}:{kind}", kind=kind, truth=rel, speaker=rel.split("/")[0]))
    for i in range(7):
        a, b = f"spk{i}/clip_02.mp4", f"spk{i}/clip_03.mp4"
        dest = copies / f"spk{i}_other_picture.mp4"
        if not dest.is_file():
            ffmpeg("-i", str(clips_dir / a), "-i", str(clips_dir / b), "-map", "0:v", "-map", "1:a", *X264,
                   "-shortest", str(dest))
        files.append(dict(path=str(dest), name=f"{b}:other_picture", kind="other_picture", truth=b,
                          speaker=f"spk{i}", picture_of=a))
    long = out / "compilation_720p.mp4"
    if not long.is_file():
        render_compilation(clips_dir, sorted(r for r in gt if r.startswith(f"{COMPILED}/clip_")), long)
    files.append(dict(path=str(long), name="compilation", kind="long_original", truth="compilation",
                      speaker=COMPILED))
    dur = float(json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                                           "json", str(long)], capture_output=True, check=True, text=True).stdout)
                ["format"]["duration"])
    for kind, before, after in (
        ("long_trim", ["-ss", "20.3"], ["-t", f"{dur - 30.3:.3f}", "-vf", "scale=640:360", *X264[:4], "-crf",
                                        "28", "-c:a", "aac"]),
        ("long_remux", ["-ss", "15"], ["-c", "copy"]),
    ):
        dest = out / f"compilation.{kind}.mp4"
        if not dest.is_file():
            ffmpeg(*before, "-i", str(long), *after, str(dest))
        files.append(dict(path=str(dest), name=f"compilation:{kind}", kind=kind, truth="compilation",
                          speaker=COMPILED))
    return files


def render_compilation(clips_dir: Path, rels: list[str], dest: Path) -> None:
    """The clips, twice (the second time reversed), as one 1280x720 25 fps x264/AAC file with camera grain."""
    order = rels + rels[::-1]
    args, chains, links = [], [], []
    for k, rel in enumerate(order):
        args += ["-i", str(clips_dir / rel)]
        chains.append(f"[{k}:v]fps=25,scale=1280:720:force_original_aspect_ratio=decrease:flags=bicubic,"
                      f"pad=1280:720:(ow-iw)/2:(oh-ih)/2:color=0x282828,noise=alls=12:allf=t,setsar=1,"
                      f"format=yuv420p[v{k}]")
        chains.append(f"[{k}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{k}]")
        links.append(f"[v{k}][a{k}]")
    graph = ";".join(chains) + ";" + "".join(links) + f"concat=n={len(links)}:v=1:a=1[v][a]"
    ffmpeg(*args, "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "veryfast",
           "-c:a", "aac", "-b:a", "128k", str(dest))


# ------------------------------------------------------------------------------------------------- media


def timed_decode(paths: list[str]) -> float:
    """Seconds FFmpeg takes to decode the files, one thread on this process's first CPU."""
    cpu = str(min(os.sched_getaffinity(0)))
    t0 = time.perf_counter()
    for p in paths:
        subprocess.run(["taskset", "-c", cpu, "ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-i", p,
                        "-f", "null", "-"], check=True)
    return time.perf_counter() - t0


def media_part(out: Path) -> float:
    """Runs and prints the media part; returns `match`'s mean seconds per verified candidate pair."""
    from ltxa_data.analysis.fingerprint import duplicate_groups, duplicate_pairs, is_duplicate, match, video_fingerprint
    from ltxa_data.media import probe

    t0 = time.perf_counter()
    files = make_media(out)
    log(f"media: {len(files)} files ready in {time.perf_counter() - t0:.0f} s")
    durations = [probe(f["path"]).duration_s for f in files]
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # one core, as the FFmpeg baseline
    prints, seconds = [], []
    for f, d in zip(files, durations, strict=True):
        t = time.perf_counter()
        prints.append(video_fingerprint(f["path"], duration_s=d))
        seconds.append(time.perf_counter() - t)
    long = [i for i, f in enumerate(files) if f["kind"] == "long_original"]
    short = [i for i, f in enumerate(files) if not f["kind"].startswith("long")]
    rows = []
    for label, sel in (("short clips (<= 640x640)", short), ("720p25 compilation, grain", long)):
        hours = sum(durations[i] for i in sel) / 3600
        ours = sum(seconds[i] for i in sel)
        base = timed_decode([files[i]["path"] for i in sel])
        rows.append((label, len(sel), hours * 60, ours / hours, base / hours, ours / base))
    os.sched_setaffinity(0, cpus)

    t = time.perf_counter()
    # The candidate search itself (the library verifies every pair of a set under 200 videos instead).
    pairs = duplicate_pairs(prints, exhaustive_below=0)
    search_s = time.perf_counter() - t
    names = [f["name"] for f in files]
    groups = duplicate_groups(names, prints, exhaustive_below=0)
    group_of = {n: g[0] for g in groups for n in g}
    truth = [f["truth"] for f in files]
    n_cand = _count_candidates(prints)
    per_pair = _time_matches(prints, 300)

    print(f"\n{len(files)} files ({sum(durations) / 60:.1f} min), {len(pairs)} verified pairs from {n_cand} "
          f"candidates in {search_s:.1f} s; {len(groups)} groups\n")
    print(f"{'kind':<15}{'files':>6}{'recall':>8}{'precision':>11}{'pairs':>7}{'min sound':>11}{'min picture':>13}")
    by_name = {f["name"]: i for i, f in enumerate(files)}
    for kind in (*KINDS, "other_picture", "compilation", "long_trim", "long_remux"):
        sel = [i for i, f in enumerate(files) if f["kind"] == kind]
        anchor = [by_name.get(truth[i], by_name["compilation"]) for i in sel]
        grouped = sum(group_of.get(names[i], names[i]) == group_of.get(names[a], names[a]) for i, a in zip(sel, anchor,
                                                                                                         strict=True))
        mine = [(i, j) for i, j, _ in pairs if i in sel or j in sel]
        good = sum(truth[i] == truth[j] for i, j in mine)
        ms = [match(prints[a], prints[i]) for i, a in zip(sel, anchor, strict=True)]
        sounds = [m.sound for m in ms if m.sound is not None]
        print(f"{kind:<15}{len(sel):>6}{grouped / len(sel):>8.3f}{(good / len(mine) if mine else 1.0):>11.3f}"
              f"{len(mine):>7}{(min(sounds) if sounds else float('nan')):>11.3f}{min(m.picture for m in ms):>13.3f}")

    print(f"\nlook-alikes, matched exhaustively (not only candidates):\n{'kind':<42}{'pairs':>7}{'copies':>8}"
          f"{'max sound':>11}{'max picture':>13}")
    clips = [i for i, f in enumerate(files) if f["kind"] in ("original", "compilation")]
    same_speaker = [(i, j) for i, j in itertools.combinations(clips, 2) if files[i]["speaker"] == files[j]["speaker"]
                    and truth[i] != truth[j]]
    other = [(by_name[f["picture_of"]], i) for i, f in enumerate(files) if f["kind"] == "other_picture"]
    unrelated = [(i, j) for i, j in itertools.combinations(clips, 2) if files[i]["speaker"] != files[j]["speaker"]]
    for label, sel in (("same speaker, other clip (same face, voice)", same_speaker),
                       ("same picture, same voice, other words", other),
                       ("other speakers' clips", unrelated)):
        ms = [match(prints[i], prints[j]) for i, j in sel]
        print(f"{label:<42}{len(ms):>7}{sum(map(is_duplicate, ms)):>8}"
              f"{max(m.sound or 0 for m in ms):>11.3f}{max(m.picture for m in ms):>13.3f}")

    true_pairs = {(i, j) for i, j in itertools.combinations(range(len(files)), 2) if truth[i] == truth[j]}
    found = {(i, j) for i, j, _ in pairs}
    print(f"\nall pairs: precision {len(found & true_pairs) / max(1, len(found)):.3f}, recall "
          f"{len(found & true_pairs) / len(true_pairs):.3f} ({len(true_pairs)} true pairs; a pair of copies of one "
          f"clip counts; grouping needs only a path of them)")
    print(f"match: {per_pair * 1e3:.2f} ms per candidate pair (these files)")
    print(f"\nfingerprint cost, one core, against `ffmpeg -threads 1 -i F -f null -` on the same files:\n"
          f"{'files':<28}{'count':>6}{'minutes':>9}{'s per video-hour':>18}{'ffmpeg':>9}{'ratio':>7}")
    for label, count, minutes, ours, base, ratio in rows:
        print(f"{label:<28}{count:>6}{minutes:>9.1f}{ours:>18.0f}{base:>9.0f}{ratio:>7.2f}")
    size = sum(len(p.picture) * 32 + (0 if p.sound is None else 4 * len(p.sound)) + p.vectors.nbytes for p in prints)
    print(f"fingerprint size: {size / (sum(durations) / 3600) / 1024:.0f} KiB per video-hour (+ list overhead)")
    return per_pair


def _count_candidates(prints: list) -> int:
    from ltxa_data.analysis.fingerprint import candidate_pairs

    owners = np.concatenate([np.full(len(p.vectors), i) for i, p in enumerate(prints)])
    has_sound = np.array([p.sound is not None for p in prints])
    return len(candidate_pairs(np.concatenate([p.vectors for p in prints]), owners, has_sound))


def _time_matches(prints: list, n: int) -> float:
    from ltxa_data.analysis.fingerprint import match

    rng = np.random.default_rng(0)
    pairs = rng.integers(0, len(prints), size=(n, 2))
    t = time.perf_counter()
    for i, j in pairs.tolist():
        match(prints[i], prints[j])
    return (time.perf_counter() - t) / n


# ------------------------------------------------------------------------------------------------- scale

DIM = 64


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors float32 [n, 64], original [n]: the index of each video's original, itself for originals).

    Every part is drawn from one anisotropic Gaussian (variance of the i-th of 64 random directions
    proportional to 1/i: flatter than the real vectors' spectrum, harder for an inverted file): speakers'
    centres, each clip around its speaker's centre (cosine ~0.4 within a speaker, ~0 across), each copy
    around its original at a log-uniform relative distance 0.05-1.2 (cosine 0.64-0.999, median ~0.97).
    """
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0].astype(np.float32)
    scale = (basis * np.sqrt(1.0 / np.arange(1, DIM + 1, dtype=np.float32) / np.sum(1.0 / np.arange(1, DIM + 1))))

    def draw(m: int, size: float | np.ndarray = 1.0) -> np.ndarray:
        return (rng.standard_normal((m, DIM), dtype=np.float32) @ scale.T) * np.asarray(size, np.float32)

    n_orig = int(n / (1 + 0.05 * 2))
    speakers = draw(max(1, n_orig // 20))
    x = np.empty((n, DIM), np.float32)
    for s in range(0, n_orig, 200_000):
        m = min(n_orig, s + 200_000) - s
        x[s : s + m] = speakers[rng.integers(0, len(speakers), m)] + draw(m, np.sqrt(1.5))
    original = np.arange(n)
    n_copies = n - n_orig
    with_copies = rng.choice(n_orig, size=n_copies, replace=True)  # ~5 % of originals, 1-3 copies each
    original[n_orig:] = with_copies
    rel = np.exp(rng.uniform(np.log(0.05), np.log(1.2), n_copies)).astype(np.float32)[:, None]
    for s in range(0, n_copies, 200_000):
        e = min(n_copies, s + 200_000)
        src = x[with_copies[s:e]]
        x[n_orig + s : n_orig + e] = src + draw(e - s, rel[s:e] * np.linalg.norm(src, axis=1, keepdims=True))
    return x, original


def _scale_run(n: int, nprobe: int, out: mp.Queue) -> None:
    """nprobe 0: exact search."""
    from ltxa_data.analysis import fingerprint

    x, original = planted(n)
    copies = np.flatnonzero(original != np.arange(n))
    z = fingerprint._standardised(x, np.ones(n, bool))
    cos = np.einsum("ij,ij->i", z[copies], z[original[copies]])
    del z
    t0 = time.perf_counter()
    cand = fingerprint.candidate_pairs(x, np.arange(n), np.ones(n, bool), nprobe=max(1, nprobe),
                                       exact_below=n + 1 if nprobe == 0 else 0)
    seconds = time.perf_counter() - t0
    # Planted pairs: every two members of a group (original and its copies).
    group = original
    true = group[cand[:, 0]] == group[cand[:, 1]]
    sizes = np.bincount(group, minlength=n)
    n_true = int((sizes * (sizes - 1) // 2).sum())
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in cand[true].tolist():
        ri, rj = root(i), root(j)
        parent[max(ri, rj)] = min(ri, rj)
    joined = np.mean([root(int(c)) == root(int(original[c])) for c in copies])
    found = {(i, j) for i, j in cand[true].tolist()}
    direct = np.mean([(int(original[c]), int(c)) in found for c in copies])
    out.put(dict(n=n, seconds=seconds, peak_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                 candidates=len(cand), true_found=int(true.sum()), n_true=n_true, joined=float(joined),
                 copies=len(copies), cos=(float(cos.min()), float(np.median(cos))),
                 direct=float(direct)))


def scale_part(sizes: list[int], nprobes: list[int], exact_max: int, per_pair_s: float) -> None:
    print(f"\ncandidate search on synthetic fingerprints (k=16, cosine >= 0.5), one fresh process per run:\n"
          f"{'videos':>9}{'search':>10}{'copies':>8}{'copy cos min/med':>18}{'seconds':>9}{'peak GiB':>10}"
          f"{'cand/video':>11}{'pair recall':>13}{'to orig.':>10}{'joined':>8}{'verify (proj.)':>16}")
    ctx = mp.get_context("spawn")
    for n in sizes:
        for nprobe in ([0] if n <= exact_max else []) + nprobes:
            q: mp.Queue = ctx.Queue()
            p = ctx.Process(target=_scale_run, args=(n, nprobe, q))
            p.start()
            r = q.get()
            p.join()
            verify = r["candidates"] * per_pair_s
            print(f"{r['n']:>9}{'exact' if nprobe == 0 else f'ivf/{nprobe}':>10}{r['copies']:>8}"
                  f"{r['cos'][0]:>9.2f}/{r['cos'][1]:.2f}    {r['seconds']:>9.1f}{r['peak_gib']:>10.2f}"
                  f"{r['candidates'] / r['n']:>11.2f}{r['true_found'] / r['n_true']:>13.4f}{r['direct']:>10.4f}"
                  f"{r['joined']:>8.4f}{verify / 60:>12.0f} min", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16], help="inverted-file lists searched")
    ap.add_argument("--exact-max", type=int, default=100_000, help="largest size also searched exactly")
    ap.add_argument("--out", type=Path, default=None, help="media folder, kept (default: a temporary one)")
    ap.add_argument("--no-media", action="store_true", help="skip the media part (verification time: 0.3 ms/pair)")
    args = ap.parse_args(argv)
    per_pair = 3e-4
    if not args.no_media:
        out = args.out or Path(tempfile.mkdtemp(prefix="bench-nd-"))
        out.mkdir(parents=True, exist_ok=True)
        try:
            per_pair = media_part(out)
        finally:
            if args.out is None:
                shutil.rmtree(out, ignore_errors=True)
    if args.sizes:
        scale_part(sorted(args.sizes), args.nprobe, args.exact_max, per_pair)
    return 0


if __name__ == "__main__":
    sys.exit(main())
