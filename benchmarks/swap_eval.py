"""The swap-eval scorer on simulated generators, and its cost per generated file against decoding the file.

    python benchmarks/swap_eval.py [--recipe recipes/demo.yaml]   # a finished build (make demo); ~4 min on the demo

For each simulated generator (`ltxa_data.evaluation.simulate`: `oracle` shows the reference's identity, `blind`
the target's whatever the reference, `half` follows the reference in a seeded half of the B runs), the build's
swap-eval runs are "generated" from the build's own clips and scored by `ltxa-data eval` (as evals named
`simulated-<kind>`, which the build report then shows). Printed per generator and measure: the swap effect and
the seed floor with their 95% intervals, the two-choice accuracy, the share of cases beyond the floor, and the
verdict. The cost: seconds per generated file (121 frames, 4.84 s of audio) for the whole eval, against
decoding the same files (every frame as RGB and the audio at 16 kHz) in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from ltxa_data.evaluation.evaluate import evaluate
from ltxa_data.evaluation.simulate import GENERATORS, simulate
from ltxa_data.media import probe, read_audio, read_frames
from ltxa_data.recipe import load_recipe


def decode_seconds(files: list[Path]) -> float:
    """Seconds per file to decode every frame and the audio: the floor of anything that looks at a file."""
    t0 = time.perf_counter()
    for f in files:
        facts = probe(f, check_packets=False)
        read_frames(f, [(k + 0.5) / facts.fps for k in range(facts.num_frames)])
        read_audio(f, 16000, channels=1)
    return (time.perf_counter() - t0) / len(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(Path(__file__).parents[1] / "recipes" / "demo.yaml"))
    args = ap.parse_args()
    recipe = load_recipe(args.recipe)
    print(f"build {recipe.name}: {recipe.manifests_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in GENERATORS:
            folder = Path(tmp) / f"simulated-{kind}"
            t0 = time.perf_counter()
            n = simulate(recipe, kind, folder)
            made = time.perf_counter() - t0
            result = evaluate(recipe, folder, progress=False)
            floor = decode_seconds(sorted(folder.glob("*.mp4")))
            cases = result.cases.filter(pl.col("measure") == "voice").height
            per_run = result.seconds_per_run
            print(f"\n{kind}: {n} runs simulated in {made:.1f} s for {cases} cases; eval {per_run:.2f} s per run "
                  f"({per_run * n / cases:.2f} s per case), decoding {floor:.2f} s per run: {per_run / floor:.1f}x the "
                  "decode")
            for r in result.summary.filter(pl.col("group") == "all").iter_rows(named=True):
                print(f"  {r['measure']:<5} effect {r['effect']:+.3f} [{r['effect_lo']:+.3f}, {r['effect_hi']:+.3f}]"
                      f"  seed floor {r['seed_effect']:+.3f} [{r['seed_lo']:+.3f}, {r['seed_hi']:+.3f}]  "
                      f"effect - floor {r['difference']:+.3f} [{r['difference_lo']:+.3f}, {r['difference_hi']:+.3f}]"
                      f"  accuracy {r['accuracy']:.2f}  beyond the floor {r['beyond_floor']:.2f}  "
                      f"({r['scored']} cases, {r['identities']} identities, intervals over {r['unit']}s): "
                      f"{r['verdict']}")


if __name__ == "__main__":
    main()
