"""Ray's overhead against the local executor, and scaling from 1 to 2 workers on both: the demo corpus
built from scratch four times (local and Ray, 1 and 2 workers), in one run on the same files.

    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh \\
        .venv/bin/python benchmarks/executors.py [--small] [--out /tmp/bench-executors]

(The namespace keeps Ray's start-up probes of cloud-metadata addresses on this machine; Ray starts a
local cluster with as many CPUs as workers, on 127.0.0.1.) `--small` uses the tests' corpus.

Prints per stage: seconds on each configuration, seconds per partition, Ray / local at 2 workers, and
the speed-up from 1 to 2 workers on each executor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from ltxa_data.corpus.generate import generate_corpus
from ltxa_data.pipeline import StageReport, build
from ltxa_data.recipe import CorpusConfig, load_recipe

DEMO = CorpusConfig(seed=0, speakers=8, clips_per_speaker=3, two_speaker_clips=2, scene_cut_clips=1, short_clips=2)
SMALL = CorpusConfig(seed=1, speakers=4, clips_per_speaker=3, two_speaker_clips=1, scene_cut_clips=1, short_clips=1)


def _run(out: Path, corpus: Path, kind: str, workers: int) -> tuple[float, list[StageReport]]:
    import yaml

    folder = out / f"{kind}-{workers}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    demo = yaml.safe_load(Path(__file__).parents[1].joinpath("recipes/demo.yaml").read_text())
    demo.pop("corpus")
    demo["input"] = {"paths": [str(corpus)]}
    demo["output"] = {"dir": "build"}
    demo["executor"] = {"kind": kind, "workers": workers}
    if kind == "ray":
        demo["executor"]["ray"] = {"num_cpus": workers, "node_ip_address": "127.0.0.1"}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(demo))
    t0 = time.perf_counter()
    reports = build(load_recipe(folder / "recipe.yaml"), progress=False)
    return time.perf_counter() - t0, reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="the tests' corpus instead of the demo's")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-executors"))
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    corpus = args.out / ("corpus-small" if args.small else "corpus-demo")
    if not corpus.exists():
        generate_corpus(corpus, SMALL if args.small else DEMO)
    runs: dict[tuple[str, int], tuple[float, dict[str, StageReport]]] = {}
    for kind in ("local", "ray"):
        for workers in (1, 2):
            total, reports = _run(args.out, corpus, kind, workers)
            runs[kind, workers] = total, {r.stage: r for r in reports}
            print(f"{kind} x{workers}: {total:.1f} s", flush=True)
    stages = list(runs["local", 1][1])
    print(f"\n{'stage':>14} {'parts':>5} " + " ".join(f"{k + ' x' + str(w):>9}" for k, w in runs)
          + f" {'s/part L2':>9} {'s/part R2':>9} {'ray/local':>9} {'local 1->2':>10} {'ray 1->2':>9}")
    for name in stages:
        sec = {kw: r[1][name].seconds for kw, r in runs.items()}
        parts = runs["local", 2][1][name].ran or 1
        print(f"{name:>14} {parts:>5} " + " ".join(f"{sec[kw]:>9.1f}" for kw in runs)
              + f" {sec['local', 2] / parts:>9.2f} {sec['ray', 2] / parts:>9.2f}"
              + f" {sec['ray', 2] / sec['local', 2]:>9.2f} {sec['local', 1] / sec['local', 2]:>10.2f}"
              + f" {sec['ray', 1] / sec['ray', 2]:>9.2f}")
    tot = {kw: r[0] for kw, r in runs.items()}
    print(f"{'build':>14} {'':>5} " + " ".join(f"{tot[kw]:>9.1f}" for kw in runs) + f" {'':>9} {'':>9}"
          + f" {tot['ray', 2] / tot['local', 2]:>9.2f} {tot['local', 1] / tot['local', 2]:>10.2f}"
          + f" {tot['ray', 1] / tot['ray', 2]:>9.2f}")


if __name__ == "__main__":
    main()
