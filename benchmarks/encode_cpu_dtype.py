"""One target's video encode on the CPU: the video VAE computing in bf16 (what the recipe's default
`encode.video_dtype: bfloat16` ran before) against float32 (what `LtxVaeEncoders` does on a CPU now, storing
the latents in bf16), with the real LTX-2.3 VAE config and random weights, in one run.

    python benchmarks/encode_cpu_dtype.py [--frames 121] [--size 256] [--threads 2]

Prints seconds per target for each compute dtype, their ratio, and how far the bf16-stored latents of the
two paths are apart. CPUs without bf16 units (no AVX512-BF16/AMX) run bf16 convolutions far slower than
float32; on those the ratio is large.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ltxa_data.backends.ltx_vae import LtxVaeEncoders
    from tests.fixtures.random_ltx import write_random_ltx_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_random_ltx_checkpoint(Path(tmp) / "ltx.safetensors", small=False)
        vae = LtxVaeEncoders(ckpt, device="cpu")
        frames = torch.randint(0, 256, (1, a.frames, a.size, a.size, 3), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        got = {}
        for dtype in (torch.float32, torch.bfloat16):
            vae.compute_dtype = dtype
            vae.video_encoder.to(dtype)
            vae.encode_video(frames[:, :9, :64, :64])  # warm-up
            t0 = time.perf_counter()
            got[dtype] = vae.encode_video(frames)
            seconds = time.perf_counter() - t0
            print(f"compute {str(dtype).removeprefix('torch.'):>8}: {seconds:7.1f} s per {a.frames}x{a.size}x{a.size} "
                  f"target ({a.threads} threads)", flush=True)
            got[str(dtype)] = seconds
        print(f"bf16 / float32 time: {got['torch.bfloat16'] / got['torch.float32']:.2f}x")
        diff = (got[torch.float32].float() - got[torch.bfloat16].float()).abs()
        print(f"stored bf16 latents: max |difference| {diff.max():.4f}, mean {diff.mean():.5f}, "
              f"latent std {got[torch.float32].float().std():.4f}")


if __name__ == "__main__":
    main()
