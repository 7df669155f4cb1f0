"""Encode throughput: the shard stage's encode path against a naive baseline, in the same run.

    python benchmarks/encode.py                      # CPU: small random-weight VAE config, 128 px targets
    python benchmarks/encode.py --full --size 512    # GPU: the real LTX-2.3 VAE config, 121x512x512

Both paths encode the same samples cut from generated 640x360 talking-head clips (121 frames, the
target audio and one 3.5 s reference each) with the same random-weight checkpoint in the real layout:

- naive: one clip at a time: decode and cut, then encode video, target audio and reference, then
  serialise; nothing overlaps;
- pipeline: what the shard stage does (`ltxa_data.ltx.encode`): cutting on CPU threads ahead of the
  encoder (`prefetched`), batches of `--batch` through `SampleEncoder.encode`.

Prints clips/s of each and their ratio (target: >= 2x on a GPU), the audio encoder alone (one clip
at a time vs batched), and on CUDA the mean GPU utilisation during each path (nvidia-smi, 5 Hz).
Random weights give meaningless latents but the real architecture's cost at `--full`.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_clips(folder: Path, n: int, seconds: float = 6.0) -> list[Path]:
    """n talking-head clips drawn by the corpus painter (mouth moving), 640x360 at 25 fps, with noise audio."""
    from ltxa_data.corpus.faces import LOOKS, MOUTH_LEVELS, Framing, ShotArt
    from ltxa_data.media import write_video

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        art = ShotArt(640, 360, LOOKS[i % len(LOOKS)], Framing((90, 110, 140), (0, 0, 1, 1), (90, 110, 140),
                                                                    320.0, 170.0, 150.0))
        frames = round(seconds * 25)
        audio = (rng.standard_normal((2, round(seconds * 16000))) * 0.05).astype(np.float32)
        path = folder / f"clip_{i:02d}.mp4"
        write_video(path, (art.frame(int(abs(np.sin(k / 3)) * (MOUTH_LEVELS - 1))) for k in range(frames)), fps=25,
                    audio=audio, sample_rate=16000, crf=18)
        paths.append(path)
    return paths


def sample_of(path: Path, i: int) -> dict:
    """A shard-stage sample dict: the clip's first 121 frames, centre crop, one reference from the next clip."""
    return dict(key=f"s{i:03d}", split="train", identity_id="id", target_id=f"t{i}", video_id=f"v{i}",
                path=str(path), rel_path=path.name, start_frame=0, crop=[140, 0, 360, 360], crop_mode="center",
                crop_pad=[0, 0, 0, 0], face_track=None,
                references=[dict(reference_id=f"r{i}", video_id=f"w{i}", path=str(path), rel_path=path.name,
                                 start_s=1.0, duration_s=3.5, gain_db=None)])


class GpuUtilisation:
    """Mean GPU utilisation (%) while in the `with` block, sampled with nvidia-smi at 5 Hz."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._ok = shutil.which("nvidia-smi") is not None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                      "-i", "0"], capture_output=True, text=True, timeout=2).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> GpuUtilisation:
        if self._ok:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ok:
            self._thread.join()

    @property
    def mean(self) -> str:
        return f"{np.mean(self.samples):.0f}%" if self.samples else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--size", type=int, default=128, help="target side in pixels (512 for the real size)")
    ap.add_argument("--full", action="store_true", help="the real LTX-2.3 VAE config (use on a GPU)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4, help="cutting threads of the pipeline")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()

    import torch

    from ltxa_data.ltx.encode import CutSample, SampleEncoder, prefetched, video_latent_dict
    from ltxa_data.recipe import parse_recipe
    from ltxa_data.stages.shard import cut_sample
    from tests.fixtures.random_ltx import write_random_ltx_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        ckpt = write_random_ltx_checkpoint(tmp_path / "ltx.safetensors", small=not a.full)
        samples = [sample_of(p, i) for i, p in enumerate(make_clips(tmp_path, a.clips))]
        recipe = parse_recipe({"name": "encode-benchmark", "input": {"paths": ["."]}, "output": {"dir": "out"},
                               "encode": {"backend": "ltx", "checkpoint": str(ckpt), "device": a.device,
                                          "batch_size": a.batch, "decode_threads": a.threads}}, base_dir=tmp_path)
        enc = SampleEncoder(recipe, checkpoint_sha256="benchmark")
        vae = enc.vae
        print(f"device {vae.device}, {'real' if a.full else 'small'} VAE config, {a.clips} clips of "
              f"121x{a.size}x{a.size}, batch {a.batch}, {a.threads} cutting threads, torch {torch.__version__}")

        def sync() -> None:
            if vae.device.type == "cuda":
                torch.cuda.synchronize()

        def naive() -> None:
            for s in samples:
                cut = cut_sample(s, a.size, "black")
                v = vae.encode_video(torch.from_numpy(cut.frames)[None])
                au = vae.encode_audio(torch.from_numpy(cut.audio)[None], 16000)
                r = vae.encode_audio(torch.from_numpy(cut.references[0])[None], 16000)
                torch.save([video_latent_dict(v[0]), au, r], io.BytesIO())

        def pipeline() -> None:
            batch: list[CutSample] = []
            for _, fut in prefetched(lambda s: cut_sample(s, a.size, "black"), samples, a.threads, 2 * a.batch):
                batch.append(fut.result())
                if len(batch) == a.batch:
                    enc.encode(batch)
                    batch = []
            if batch:
                enc.encode(batch)

        enc.encode([cut_sample(samples[0], a.size, "black")])  # warm-up: kernels, allocator
        results = {}
        for name, fn in (("naive", naive), ("pipeline", pipeline)):
            with GpuUtilisation() as gpu:
                t0 = time.perf_counter()
                fn()
                sync()
                dt = time.perf_counter() - t0
            results[name] = a.clips / dt
            print(f"{name:>9}: {dt:7.2f} s  {a.clips / dt:7.3f} clips/s  GPU utilisation {gpu.mean}")
        print(f"pipeline / naive: {results['pipeline'] / results['naive']:.2f}x")

        waves = [cut_sample(s, 64, "black").audio for s in samples]
        t0 = time.perf_counter()
        for w in waves:
            vae.encode_audio(torch.from_numpy(w)[None], 16000)
        sync()
        one = len(waves) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        vae.encode_audio(torch.from_numpy(np.stack(waves)), 16000)
        sync()
        batched = len(waves) / (time.perf_counter() - t0)
        print(f"audio encoder (4.84 s clips): one at a time {one:.2f} clips/s, batched {batched:.2f} clips/s "
              f"({batched / one:.2f}x)")


if __name__ == "__main__":
    main()
