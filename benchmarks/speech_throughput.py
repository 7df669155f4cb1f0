"""Throughput of the production speech backends, in hours of audio per minute of compute.

    python benchmarks/speech_throughput.py                 # CPU (and CUDA when present)
    python benchmarks/speech_throughput.py --minutes 2 --threads 2

The models are the real architectures (pyannote community-1: PyanNet segmentation, WeSpeaker
ResNet34 embeddings, VBx clustering; speechbrain ECAPA-TDNN, 20.8M parameters) with random
weights written in the real folder layouts by `tests/fixtures/`, so the compute is the real one;
random weights make pyannote hear two overlapping speakers in every chunk, which is its costliest
case (every chunk is embedded once per active speaker). Audio is noise at speech level.

Printed per device: diarization at pyannote's default segmentation step (0.1 of a 10 s chunk)
and at 0.5, with their ratio; ECAPA embeddings of windows cut the way the embed stage cuts them
(3 s, and shorter remainders), batched (`--batch`) against one window at a time (the baseline),
with their ratio; and GPU/CPU ratios when CUDA is present.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 16000


def _rate(audio_s: float, wall_s: float) -> float:
    """Hours of audio per minute of wall time."""
    return (audio_s / 3600) / (wall_s / 60)


def diarization_rate(model: Path, device: str, audio: np.ndarray, step: float | None) -> float:
    from ltxa_data.backends.pyannote_diarizer import PyannoteDiarizer
    from ltxa_data.recipe import PyannoteConfig

    diarizer = PyannoteDiarizer(PyannoteConfig(model=str(model), device=device, segmentation_step=step), ROOT)
    diarizer(audio[: SR * 12], SR)  # warm-up: lazy inits, CUDA kernels
    t = time.perf_counter()
    diarizer(audio, SR)
    _sync(device)
    return _rate(len(audio) / SR, time.perf_counter() - t)


def embedding_rate(model: Path, device: str, windows: list[np.ndarray], batch: int) -> float:
    from ltxa_data.backends.speechbrain_embedder import SpeechbrainEmbedder
    from ltxa_data.recipe import SpeechbrainConfig

    embedder = SpeechbrainEmbedder(SpeechbrainConfig(model=str(model), device=device, batch_size=batch), ROOT)
    embedder.embed(windows[:batch], SR)  # warm-up
    t = time.perf_counter()
    embedder.embed(windows, SR)
    _sync(device)
    return _rate(sum(len(w) for w in windows) / SR, time.perf_counter() - t)


def realistic_windows(audio: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`n` windows cut the way the embed stage cuts them (3 s windows and remainders on its grid)
    from turns of exponential length (mean 3 s), so batching meets the real mix of lengths."""
    from ltxa_data.stages.embed import speech_windows

    spans, t = [], 0.0
    while len(speech_windows(spans, 3.0, 10**9)) < n:
        length = float(rng.exponential(3.0))
        spans.append((t, t + length))
        t += length + 0.3
    cuts = speech_windows(spans, 3.0, 10**9)[:n]
    room = len(audio) - 3 * SR
    return [audio[(o := round(s * SR) % room) : o + round((e - s) * SR)] for s, e in cuts]


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="audio diarized per measurement")
    ap.add_argument("--windows", type=int, default=128, help="3 s windows embedded per measurement")
    ap.add_argument("--batch", type=int, default=64, help="ECAPA batch size")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()

    import torch

    from tests.fixtures.random_ecapa import write_random_ecapa
    from tests.fixtures.random_pyannote import write_random_pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(SR * 60 * args.minutes)) * 0.05).astype(np.float32)
    windows = realistic_windows(audio, args.windows, rng)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ", no CUDA device"))
    results: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pyannote = write_random_pipeline(Path(tmp) / "pyannote")
        ecapa = write_random_ecapa(Path(tmp) / "ecapa")
        for device in devices:
            results[device, "diarize step 0.1"] = diarization_rate(pyannote, device, audio, None)
            results[device, "diarize step 0.5"] = diarization_rate(pyannote, device, audio, 0.5)
            results[device, "embed batch 1"] = embedding_rate(ecapa, device, windows, 1)
            results[device, f"embed batch {args.batch}"] = embedding_rate(ecapa, device, windows, args.batch)
            print(f"\n[{device}] hours of audio per minute")
            for (dev, what), rate in results.items():
                if dev == device:
                    print(f"  {what:<22}{rate:>10.3f}")
            d1, d5 = results[device, "diarize step 0.1"], results[device, "diarize step 0.5"]
            e1, eb = results[device, "embed batch 1"], results[device, f"embed batch {args.batch}"]
            print(f"  ratio step 0.5 / step 0.1 (default): {d5 / d1:.2f}x")
            print(f"  ratio batch {args.batch} / batch 1 (baseline): {eb / e1:.2f}x")
    if "cuda" in devices:
        print("\nGPU / CPU")
        for (dev, what), rate in results.items():
            if dev == "cuda":
                print(f"  {what:<22}{rate / results['cpu', what]:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
