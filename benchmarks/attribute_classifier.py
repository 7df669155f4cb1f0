"""Cost per window of the attribute classifier (`attributes.<name>.backend: speechbrain_classifier`) on the CPU,
against the speaker embedding every window already pays for (the baseline, in the same run).

    python benchmarks/attribute_classifier.py                       # 2 threads, batch 32, 3.5 s and 4.84 s
    python benchmarks/attribute_classifier.py --threads 4 --windows 128

The models are the real architectures with random weights, written in the real folder layouts by
tests/test_attribute_classifier.py (VoxLingua107 language ID: ECAPA-TDNN on 60 mels, 256-d, x-vector
classifier; CommonAccent accent ID: ECAPA-TDNN on 80 mels, 192-d, cosine classifier; sizes not shrunk) and
tests/fixtures/random_ecapa.py (the baseline: speechbrain/spkrec-ecapa-voxceleb through `SpeechbrainEmbedder`),
so the compute is the real one. Audio is noise at speech level, in windows of one length per measurement (the
classifier batches windows of one length, as the embedder does).

Printed per window length: milliseconds per window of each, wall and CPU (process time: all threads; the
less sensitive to other load on the machine), the median of --repeats passes over --windows windows after a
warm-up batch, the models taking turns within each pass; and each classifier's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 16000


def ms_per_window(models: dict[str, Callable[[list[np.ndarray]], object]], windows: list[np.ndarray], batch: int,
                  repeats: int) -> dict[str, tuple[float, float]]:
    """Per model, the median (wall, CPU) milliseconds per window over all `windows`, after a warm-up batch;
    the models take turns within each pass, so that other load on the machine falls on all of them alike."""
    for run in models.values():
        run(windows[:batch])
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, run in models.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run(windows)
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: (1000 * float(np.median([w for w, _ in t])) / len(windows),
                   1000 * float(np.median([c for _, c in t])) / len(windows)) for name, t in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--batch", type=int, default=32, help="windows per forward pass (both models)")
    ap.add_argument("--windows", type=int, default=32, help="windows per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per model and length (median)")
    ap.add_argument("--lengths", type=float, nargs="+", default=[3.5, 4.84], help="window lengths, seconds")
    args = ap.parse_args()

    import torch

    from ltxa_data.backends.speechbrain_classifier import SpeechbrainClassifier
    from ltxa_data.backends.speechbrain_embedder import SpeechbrainEmbedder
    from ltxa_data.recipe import AttributeConfig, SpeechbrainConfig
    from tests.fixtures.random_ecapa import write_random_ecapa
    from tests.test_attribute_classifier import write_random_classifier

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {args.batch}, "
          f"{args.windows} windows x {args.repeats} passes per measurement")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        embedder = SpeechbrainEmbedder(SpeechbrainConfig(model=str(write_random_ecapa(Path(tmp) / "ecapa")),
                                                         device="cpu", batch_size=args.batch), ROOT)
        models: dict[str, Callable[[list[np.ndarray]], object]] = {"speaker embedding (baseline)":
                                                                    lambda w: embedder.embed(w, SR)}
        for layout in ("voxlingua107", "commonaccent"):
            folder = write_random_classifier(Path(tmp) / layout, layout, shrink=False)
            clf = SpeechbrainClassifier(AttributeConfig(backend="speechbrain_classifier", model=str(folder),
                                                        device="cpu", batch_size=args.batch), ROOT,
                                        f"attributes.{layout}.model")
            models[f"{layout} classifier"] = clf.classify
        for seconds in args.lengths:
            n = round(seconds * SR)
            windows = [(rng.standard_normal(n) * 0.05).astype(np.float32) for _ in range(args.windows)]
            cost = ms_per_window(models, windows, args.batch, args.repeats)
            base = cost["speaker embedding (baseline)"]
            print(f"\n{seconds:g} s windows: ms per window{'wall':>13}{'cpu':>8}   ratio to baseline (wall, cpu)")
            for name, (wall, cpu) in cost.items():
                print(f"  {name:<30}{wall:>8.1f}{cpu:>8.1f}"
                      + ("" if "baseline" in name else f"   {wall / base[0]:.2f}x, {cpu / base[1]:.2f}x"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
