"""The HTML build report on a large build: synthetic manifests of 100k targets (every table, with the wide
columns real builds carry: voice embeddings, face descriptors), and a few real samples in a tar that every
shard row points to, so the report's contact sheets and players read real media by byte offset.

    python benchmarks/report.py                    # 100k targets
    python benchmarks/report.py --targets 1000000

Prints, for a baseline build of 1k targets and the large one, in the same run: the report's wall time, what it
wrote, the peak memory, and the time of reading every manifest in full with polars; then the ratio of the two
report times (bounded: media are a fixed sample, aggregates are polars). Target: under a minute for 100k targets.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import yaml

from ltxa_data.media import encode_video, encode_wav
from ltxa_data.recipe import load_recipe
from ltxa_data.reporting.report import write_report
from ltxa_data.schemas import TABLES, conform
from ltxa_data.shard_format import ShardWriter
from ltxa_data.stages.shard import face_members
from ltxa_data.storage import table_path, write_table_atomic

FPS, FRAMES, SIZE, RATE = 25, 121, 512, 16000


def _table(name: str, columns: dict[str, object], n: int) -> pa.Table:
    """A schema-checked table: the given columns, every other one null."""
    schema = TABLES[name].arrow
    arrays = []
    for f in schema:
        value = columns.get(f.name)
        arrays.append(pa.nulls(n, f.type) if value is None else pa.array(value, type=f.type))
    return conform(name, pa.Table.from_arrays(arrays, schema=schema))


def _status(rng: np.random.Generator, n: int, bad: float, reasons: list[str]) -> tuple[list[str], list[str | None]]:
    drop = rng.random(n) < bad
    which = rng.integers(0, len(reasons), n)
    status = np.where(drop, "skipped", "ok").tolist()
    error = [f"clip_{i:07d}.mp4: {reasons[w]} ({rng.random():.2f} s)" if d else None
             for i, (d, w) in enumerate(zip(drop, which, strict=True))]
    return status, error


def synthetic_manifests(m: Path, targets: int, seed: int = 0) -> None:
    """Every manifest of a build with `targets` target rows (about one in ten skipped)."""
    rng = np.random.default_rng(seed)
    n_videos = max(10, targets // 5)
    n_ids = max(3, targets // 50)
    vid = [f"{i:016x}" for i in range(n_videos)]
    status, error = _status(rng, n_videos, 0.03, ["no audio track", "truncated", "too short", "cannot decode"])
    write_table_atomic(table_path(m, "videos"), _table("videos", dict(
        video_id=vid, path=[f"/data/in/clip_{i:07d}.mp4" for i in range(n_videos)],
        rel_path=[f"clip_{i:07d}.mp4" for i in range(n_videos)], duration_s=rng.uniform(20, 600, n_videos),
        fps=np.full(n_videos, 25.0), width=np.full(n_videos, 1280), height=np.full(n_videos, 720),
        status=status, error=error), n_videos))
    ok_vid = [v for v, s in zip(vid, status, strict=True) if s == "ok"]
    turn_video = np.repeat(ok_vid, 5)
    starts = rng.uniform(0, 500, len(turn_video))
    write_table_atomic(table_path(m, "turns"), _table("turns", dict(
        turn_id=[f"{v}-S0-{i:09d}" for i, v in enumerate(turn_video)], video_id=turn_video, speaker=["S0"] * len(
            turn_video), start_s=starts, end_s=starts + rng.uniform(1, 30, len(turn_video)),
        overlap=rng.random(len(turn_video)) < 0.05, status=["ok"] * len(turn_video)), len(turn_video)))
    voice = [f"{v}-S0" for v in ok_vid]
    emb = rng.standard_normal((len(voice), 256)).astype(np.float32)
    write_table_atomic(table_path(m, "voices"), _table("voices", dict(
        voice_id=voice, video_id=ok_vid, speaker=["S0"] * len(voice), embedding=list(emb),
        speech_s=rng.uniform(10, 300, len(voice)), status=["ok"] * len(voice)), len(voice)))
    ident = [f"id-{i:012x}" for i in rng.integers(0, n_ids, len(voice))]
    write_table_atomic(table_path(m, "identities"), _table("identities", dict(
        voice_id=voice, video_id=ok_vid, speaker=["S0"] * len(voice), identity_id=ident,
        status=["ok"] * len(voice)), len(voice)))
    t_video_i = rng.integers(0, len(ok_vid), targets)
    t_video = [ok_vid[i] for i in t_video_i]
    tid = [f"{v}-S0-{k:09d}" for k, v in enumerate(t_video)]
    t_status, t_error = _status(rng, targets, 0.1, ["the face does not speak with the voice",
                                                    "no single face in most sampled frames",
                                                    "the face is not the voice's"])
    write_table_atomic(table_path(m, "targets"), _table("targets", dict(
        target_id=tid, video_id=t_video, voice_id=[f"{v}-S0" for v in t_video],
        identity_id=[ident[i] for i in t_video_i], start_frame=rng.integers(0, 10000, targets),
        num_frames=np.full(targets, FRAMES), duration_s=np.full(targets, FRAMES / FPS),
        speech_ratio=rng.uniform(0.5, 1, targets), sync_score=rng.normal(5, 2, targets),
        face_distance=rng.uniform(0, 0.7, targets), face_descriptor=list(rng.random((targets, 128), np.float32)),
        skipped_by=["active_speaker" if s != "ok" else None for s in t_status], status=t_status, error=t_error),
        targets))
    n_refs = 2 * targets
    r_video_i = rng.integers(0, len(ok_vid), n_refs)
    rid = [f"{ok_vid[i]}-S0-{k:09d}" for k, i in enumerate(r_video_i)]
    lufs = rng.normal(-24, 4, n_refs)
    write_table_atomic(table_path(m, "references"), _table("references", dict(
        reference_id=rid, video_id=[ok_vid[i] for i in r_video_i], identity_id=[ident[i] for i in r_video_i],
        duration_s=np.full(n_refs, 3.5), speech_ratio=rng.uniform(0.6, 1, n_refs), lufs=lufs,
        snr_db=rng.uniform(10, 60, n_refs), gain_db=-23 - lufs, status=["ok"] * n_refs), n_refs))
    ok_t = [i for i, s in enumerate(t_status) if s == "ok"]
    split = rng.choice(["train", "val", "test"], len(ok_t), p=[0.8, 0.1, 0.1])
    keys = [tid[i] for i in ok_t]
    write_table_atomic(table_path(m, "pairs"), _table("pairs", dict(
        key=keys, target_id=keys, reference_ids=[[rid[i]] for i in rng.integers(0, n_refs, len(ok_t))],
        identity_id=[ident[t_video_i[i]] for i in ok_t], target_video_id=[t_video[i] for i in ok_t],
        split=split, status=["ok"] * len(ok_t)), len(ok_t)))
    held = [i for i, s in enumerate(split) if s != "train"][: max(1, targets // 20)]
    write_table_atomic(table_path(m, "swap_eval"), _table("swap_eval", dict(
        case_id=[f"{keys[i]}-swap-train" for i in held], kind=["swap"] * len(held), split=[split[i] for i in held],
        target_id=[keys[i] for i in held], seed_a=[0] * len(held), seed_b=[0] * len(held),
        b_in_train=[True] * len(held), status=["ok"] * len(held)), len(held)))


def real_samples(shards: Path, n: int = 8) -> list[tuple[str, int, int]]:
    """`n` real samples (H.264 target, wavs, face boxes) in one tar; their (shard, offset, nbytes)."""
    rng = np.random.default_rng(1)
    writer = ShardWriter(shards / "train", "bench", 1 << 40)
    places = []
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for k in range(n):
        face = ((xx - 256) ** 2 / 90**2 + (yy - 240) ** 2 / 120**2 < 1)[None, :, :, None]
        frames = np.broadcast_to((rng.random(3) * 200).astype(np.uint8), (FRAMES, SIZE, SIZE, 3)).copy()
        frames = np.where(face, np.uint8(210), frames)
        audio = (0.1 * np.sin(np.arange(int(RATE * FRAMES / FPS)) * 2 * np.pi * 220 / RATE))[None].repeat(2, 0)
        meta = dict(key=f"k{k}", identity_id=f"id-{k}", split="train", source=f"clip_{k}.mp4", start_s=1.0,
                    variants=1, references=[dict(source="other.mp4", start_s=2.0, lufs=-20.0, output_lufs=-23.0,
                                                 snr_db=30.0)])
        members = {"json": json.dumps(meta).encode(),
                   "mp4": encode_video(frames, FPS), "wav": encode_wav(audio.astype(np.float32), RATE),
                   "ref0.wav": encode_wav(audio[:, : int(3.5 * RATE)].astype(np.float32), RATE)}
        members.update(face_members([[0, 166, 120, 180, 240], [120, 166, 120, 180, 240]], [0, 0, SIZE, SIZE], SIZE))
        p = writer.add(f"k{k}", members)
        places.append((f"train/{p.shard}", p.offset, p.nbytes))
    writer.close()
    return places


def shard_index(m: Path, places: list[tuple[str, int, int]]) -> None:
    """The shards table: every ok pair, pointing round-robin at the real samples."""
    pairs = pl.read_parquet(table_path(m, "pairs")).select("key", "split")
    n = pairs.height
    idx = np.arange(n) % len(places)
    write_table_atomic(table_path(m, "shards"), _table("shards", dict(
        key=pairs["key"].to_list(), split=pairs["split"].to_list(), shard=[places[i][0] for i in idx],
        offset=[places[i][1] for i in idx], nbytes=[places[i][2] for i in idx], members=[["x"]] * n,
        status=["ok"] * n), n))


def _size(path: Path) -> int:
    """Bytes under a folder."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(targets: int) -> dict[str, float]:
    """Write a synthetic build of `targets` targets and time its report; the figures."""
    root = Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        recipe_path = root / "recipe.yaml"
        (root / "in").mkdir()
        recipe_path.write_text(yaml.safe_dump({"name": "bench", "input": {"paths": ["in"]},
                                               "output": {"dir": "out"}}))
        recipe = load_recipe(recipe_path)
        m = recipe.manifests_dir
        m.mkdir(parents=True)
        synthetic_manifests(m, targets)
        shard_index(m, real_samples(recipe.shards_dir))
        t0 = time.perf_counter()
        rows = sum(pl.read_parquet(p).height for p in sorted(m.glob("*.parquet")))
        floor = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = write_report(recipe)
        took = time.perf_counter() - t0
        return dict(rows=rows, parquet_mib=sum(p.stat().st_size for p in m.glob("*.parquet")) / 2**20, floor=floor,
                    report=took, written_mib=_size(index.parent) / 2**20, html_kib=index.stat().st_size / 2**10,
                    peak_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=100_000)
    ap.add_argument("--baseline", type=int, default=1_000, help="targets of the baseline build, same run")
    args = ap.parse_args()
    base, big = run(args.baseline), run(args.targets)
    for n, r in ((args.baseline, base), (args.targets, big)):
        print(f"{n:>9,} targets: {r['rows']:>9,} manifest rows, {r['parquet_mib']:6.1f} MiB parquet; full read "
              f"{r['floor']:5.2f} s; report {r['report']:5.1f} s, {r['written_mib']:.1f} MiB written "
              f"({r['html_kib']:.0f} KiB html); peak RSS so far {r['peak_gib']:.2f} GiB")
    print(f"ratio report time {args.targets:,} / {args.baseline:,} targets: {big['report'] / base['report']:.2f}x "
          f"for {args.targets / args.baseline:.0f}x the rows; report / full manifest read at "
          f"{args.targets:,}: {big['report'] / big['floor']:.1f}x")
    met = big["report"] < 60
    print(f"target: under 60 s for {args.targets:,} targets: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
