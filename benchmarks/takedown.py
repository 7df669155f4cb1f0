"""Take-down time: removing one identity.

1. The demo: the demo recipe built from scratch into a temporary folder (the baseline: what a take-down would
   cost by rebuilding), then `ltxa-data remove --identity` of the identity with the most samples (the real
   command: records the removal, reruns what it touched, copies unchanged samples, checks for traces).
2. 100k synthetic samples (2,500 identities, 25k videos, tars of `--sample-kib` KiB samples): the take-down's
   work past the per-video stages, timed step by step: resolve and record the removal, draw the pairs again,
   rewrite the shards (unchanged samples copied from the hard-linked tars; a re-referenced sample "rendered" as
   a stand-in of the same size, counted), and the trace check (`verify.check_removals`, every manifest, state
   file and shard member). Baseline, same run: copying every shard byte (`shutil.copytree`).

    python benchmarks/takedown.py                      # both
    python benchmarks/takedown.py --skip-demo --samples 20000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import _table  # noqa: E402  (benchmarks/report.py: a schema-checked synthetic table)

from ltxa_data.commands.remove import Request, resolve, take_down  # noqa: E402
from ltxa_data.recipe import load_recipe  # noqa: E402
from ltxa_data.removals import append  # noqa: E402
from ltxa_data.reporting.verify import check_removals  # noqa: E402
from ltxa_data.schemas import to_table  # noqa: E402
from ltxa_data.shard_format import ShardWriter  # noqa: E402
from ltxa_data.stages.pairs import PairsStage  # noqa: E402
from ltxa_data.stages.shard import ShardStage, metadata_of  # noqa: E402
from ltxa_data.storage import read_frame, table_path, write_table_atomic  # noqa: E402


def _most_samples(recipe) -> str:
    pairs = read_frame(recipe.manifests_dir, "pairs", ok_only=True)
    return pairs.group_by("identity_id").len().sort(["len", "identity_id"], descending=[True, False])["identity_id"][0]


def demo(root: Path) -> dict:
    """Build the demo from scratch (timed), then take down its largest identity (timed)."""
    from ltxa_data.corpus.generate import generate_corpus
    from ltxa_data.pipeline import build

    data = yaml.safe_load((REPO / "recipes/demo.yaml").read_text())
    src = load_recipe(REPO / "recipes/demo.yaml")
    corpus = src.resolve(src.input.paths[0])
    assert src.corpus is not None
    generate_corpus(corpus, src.corpus)
    data["input"]["paths"] = [str(corpus)]
    data["output"] = {"dir": str(root / "build")}
    (root / "recipe.yaml").write_text(yaml.safe_dump(data))
    recipe = load_recipe(root / "recipe.yaml")
    t0 = time.perf_counter()
    build(recipe, progress=False)
    full = time.perf_counter() - t0
    identity = _most_samples(recipe)
    samples = read_frame(recipe.manifests_dir, "shards", ok_only=True).height
    done = take_down(recipe, [Request("identity", identity)], "benchmark", progress=False)
    return dict(full=full, took=done.seconds, identity=identity, samples=samples, done=done)


class _StandInShards(ShardStage):
    """The shard stage with a stand-in renderer (synthetic samples have no media): a sample it must render
    gets a json and `size` random bytes, and is counted."""

    size = 16 << 10
    rendered = 0

    def setup(self) -> None:
        self.encoder = None

    def _cut(self, sample: dict):  # type: ignore[override]
        return sample

    def _write(self, writer: ShardWriter, sample: dict, cut, latents=None) -> dict:  # type: ignore[override]
        _StandInShards.rendered += 1
        return self._copy(writer, sample, stand_in(sample, self.size))


def stand_in(sample: dict, size: int) -> dict[str, bytes]:
    meta = {"key": sample["key"], **metadata_of(sample), "references": [{"source": r["rel_path"]}
                                                                         for r in sample["references"]]}
    return {"json": json.dumps(meta, sort_keys=True).encode(), "mp4": os.urandom(size)}


def synthetic(root: Path, samples: int, sample_kib: int, seed: int = 0) -> tuple:
    """A recipe and the manifests and tars of `samples` samples: (recipe, tables, plan of the shard stage)."""
    (root / "in").mkdir(parents=True)
    (root / "recipe.yaml").write_text(yaml.safe_dump({"name": "takedown", "input": {"paths": ["in"]},
                                                      "output": {"dir": "out"}, "shard": {"samples_per_shard": 256}}))
    recipe = load_recipe(root / "recipe.yaml")
    m = recipe.manifests_dir
    m.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    n_ids, per_id = max(3, samples // 40), 10
    n_videos = n_ids * per_id
    vid = [f"{i:016x}" for i in range(n_videos)]
    owner = np.repeat(np.arange(n_ids), per_id)
    ident = [f"id-{i:012x}" for i in owner]
    centres = rng.standard_normal((n_ids, 256)).astype(np.float32)
    emb = centres[owner] + 0.3 * rng.standard_normal((n_videos, 256)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    voice = [f"{v}-S0" for v in vid]
    ok = ["ok"] * n_videos
    tables = {
        "videos": _table("videos", dict(video_id=vid, path=[f"/data/in/clip_{i:07d}.mp4" for i in range(n_videos)],
                                        rel_path=[f"clip_{i:07d}.mp4" for i in range(n_videos)],
                                        fingerprint=[v + "0" * 48 for v in vid], duration_s=np.full(n_videos, 60.0),
                                        width=np.full(n_videos, 1280), height=np.full(n_videos, 720), status=ok),
                         n_videos),
        "voices": _table("voices", dict(voice_id=voice, video_id=vid, speaker=["S0"] * n_videos, embedding=list(emb),
                                        status=ok), n_videos),
        "identities": _table("identities", dict(voice_id=voice, video_id=vid, speaker=["S0"] * n_videos,
                                                identity_id=ident, status=ok), n_videos),
    }
    per_video = max(1, samples // n_videos)
    t_video = np.repeat(np.arange(n_videos), per_video)
    tid = [f"{vid[v]}-S0-{1000 * (k % per_video):09d}" for k, v in enumerate(t_video)]
    n_t = len(tid)
    tables["targets"] = _table("targets", dict(
        target_id=tid, video_id=[vid[v] for v in t_video], voice_id=[voice[v] for v in t_video],
        identity_id=[ident[v] for v in t_video], start_frame=np.zeros(n_t, int), start_s=np.zeros(n_t),
        num_frames=np.full(n_t, 121), duration_s=np.full(n_t, 4.84), crop_x=np.zeros(n_t, int),
        crop_y=np.zeros(n_t, int), crop_w=np.full(n_t, 720), crop_h=np.full(n_t, 720), crop_mode=["center"] * n_t,
        crop_pad=[[0, 0, 0, 0]] * n_t, status=["ok"] * n_t), n_t)
    r_video = np.repeat(np.arange(n_videos), 2)
    n_r = len(r_video)
    tables["references"] = _table("references", dict(
        reference_id=[f"{vid[v]}-S0-{500 * (k % 2):09d}" for k, v in enumerate(r_video)],
        video_id=[vid[v] for v in r_video], voice_id=[voice[v] for v in r_video],
        identity_id=[ident[v] for v in r_video], start_s=np.zeros(n_r), duration_s=np.full(n_r, 3.5),
        speech_ratio=rng.uniform(0.7, 1, n_r), lufs=rng.normal(-24, 3, n_r), peak_dbfs=np.full(n_r, -3.0),
        clipped_fraction=np.zeros(n_r), snr_db=rng.uniform(10, 40, n_r), quality=rng.uniform(0.3, 1, n_r),
        gain_limited=[False] * n_r, status=["ok"] * n_r), n_r)
    tables["duplicates"] = _table("duplicates", {}, 0)
    for name, t in tables.items():
        write_table_atomic(table_path(m, name), t)
    frames = {k: pl.from_arrow(t) for k, t in tables.items()}
    frames["pairs"] = draw_pairs(recipe, frames)
    write_table_atomic(table_path(m, "pairs"), frames["pairs"].to_arrow())
    stage = _StandInShards(recipe)
    stage.size = sample_kib << 10
    stage.setup()
    parts = stage.plan(frames)
    rows = []
    for part in parts:
        rows += stage.process(part).rows
    write_table_atomic(table_path(m, "shards"), to_table("shards", rows))
    return recipe, frames, {p.key: p.input_hash for p in parts}


def draw_pairs(recipe, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    stage = PairsStage(recipe)
    [part] = stage.plan(frames)
    return pl.from_arrow(stage.finalize(to_table("pairs", stage.process(part).rows)))  # type: ignore[return-value]


def synthetic_takedown(root: Path, samples: int, sample_kib: int) -> dict:
    t0 = time.perf_counter()
    recipe, frames, old_hashes = synthetic(root, samples, sample_kib)
    made = time.perf_counter() - t0
    m = recipe.manifests_dir
    shard_bytes = sum(p.stat().st_size for p in recipe.shards_dir.rglob("*.tar"))
    t0 = time.perf_counter()
    shutil.copytree(recipe.shards_dir, root / "copy")
    copy = time.perf_counter() - t0
    shutil.rmtree(root / "copy")

    identity = _most_samples(recipe)
    before = frames["pairs"].select("key", "reference_ids")
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    rows = resolve(recipe, [Request("identity", identity)], "benchmark")
    append(recipe, rows)
    steps["resolve and record"] = time.perf_counter() - t0
    gone = {r["video_id"] for r in rows}
    # What the per-video stages' reruns leave: the tables without the removed videos.
    for name in ("videos", "voices", "identities", "targets", "references"):
        frames[name] = frames[name].filter(~pl.col("video_id").is_in(list(gone)))
        write_table_atomic(table_path(m, name), frames[name].to_arrow())
    t0 = time.perf_counter()
    frames["pairs"] = draw_pairs(recipe, frames)
    write_table_atomic(table_path(m, "pairs"), frames["pairs"].to_arrow())
    steps["draw the pairs again"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage = _StandInShards(recipe)
    stage.size = sample_kib << 10
    stage.setup()
    _StandInShards.rendered = 0
    # As the pipeline does: the earlier plan's shard counts per split (keys `train-00003-of-00008`) are kept.
    stage.previous_buckets = {f"{k.split('-')[0]}-": int(k.rsplit("-of-", 1)[1]) for k in old_hashes}
    parts = stage.plan(frames)
    todo = [p for p in parts if old_hashes.get(p.key) != p.input_hash]
    stage.before_run(todo)
    new_rows = {p.key: stage.process(p).rows for p in todo}
    stage.after_run()
    old = read_frame(m, "shards")
    keep = old.filter(~pl.col("shard").is_in([r["shard"] for rs in new_rows.values() for r in rs]))
    planned = {f"{p.data['split']}/{p.data['split']}-{p.data['bucket']}" for p in parts}
    for tar in recipe.shards_dir.rglob("*.tar"):  # shards no partition writes any more
        if tar.relative_to(recipe.shards_dir).as_posix().rsplit("-", 1)[0] not in planned:
            tar.unlink()
    keep = keep.filter(pl.col("key").is_in(frames["pairs"]["key"].to_list()))
    table = pl.concat([keep, pl.from_arrow(to_table("shards", [r for rs in new_rows.values() for r in rs]))])
    write_table_atomic(table_path(m, "shards"), table.unique("key", keep="last").sort("key").to_arrow())
    steps["rewrite the shards"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    problems = check_removals(recipe)
    steps["trace check"] = time.perf_counter() - t0
    after = dict(frames["pairs"].filter(pl.col("status") == "ok").select("key", "reference_ids").iter_rows())
    return dict(made=made, copy=copy, shard_bytes=shard_bytes, steps=steps, problems=problems, identity=identity,
                removed=len(gone), dropped=sum(k not in after for k in before["key"].to_list()),
                rereferenced=sum(k in after and list(after[k]) != list(r) for k, r in before.iter_rows()),
                partitions=len(parts), rewritten=len(todo), rendered=_StandInShards.rendered,
                samples=len(before))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--sample-kib", type=int, default=16, help="bytes of each synthetic sample in its tar")
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    if not args.skip_demo:
        with tempfile.TemporaryDirectory(prefix="takedown-demo-") as td:
            d = demo(Path(td))
        done = d["done"]
        print(f"demo: full build from scratch {d['full']:.1f} s; take-down of {d['identity']} "
              f"({done.removed_videos} videos) {done.seconds:.1f} s: {len(done.dropped_samples)} of {d['samples']} "
              f"samples dropped, {len(done.rereferenced_samples)} re-referenced, {done.shards_rewritten} shard "
              f"partitions rewritten, {done.samples_rendered} samples rendered, {done.jsons_rewritten} jsons "
              f"rewritten (the others copied); traces left: "
              f"{len(done.problems)}")
        print(f"ratio take-down / full rebuild (demo): {done.seconds / d['full']:.2f}")
    with tempfile.TemporaryDirectory(prefix="takedown-synthetic-") as td:
        s = synthetic_takedown(Path(td), args.samples, args.sample_kib)
    total = sum(s["steps"].values())
    print(f"synthetic: {s['samples']:,} samples in {s['partitions']} shards ({s['shard_bytes'] / 2**30:.2f} GiB, made "
          f"in {s['made']:.0f} s); take-down of {s['identity']} ({s['removed']} videos): {s['dropped']} samples "
          f"dropped, {s['rereferenced']} re-referenced, {s['rewritten']} of {s['partitions']} shards rewritten, "
          f"{s['rendered']} samples rendered (stand-ins), traces left: {len(s['problems'])}")
    for name, sec in s["steps"].items():
        print(f"  {name:<22}{sec:8.2f} s")
    print(f"  {'total':<22}{total:8.2f} s")
    print(f"baseline: copying every shard byte {s['copy']:.2f} s; ratio take-down / copy: {total / s['copy']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
