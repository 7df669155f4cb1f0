"""The GPU check: one script that takes the project's GPU figures, ready for whenever a GPU machine is at hand.

    python benchmarks/gpu_check.py            # on one GPU: under 8 minutes
    python benchmarks/gpu_check.py --dry      # on a CPU in about a minute: small VAE config, 64 px (the tests run it)

Prints, each against what bounds it, measured in the same run:
1. the machine: torch, the device, its memory, the vendor's dense bf16 peak when the card is known;
2. video VAE encode of 121-frame targets (the real LTX-2.3 encoder layout, random weights, bf16; uint8 frames in
   host memory, latents back on the host, as the shard stage does) at batch 1, 2, 4, 8: clips/s, peak memory,
   and the share of the card's peak it reaches (FLOPs per target counted by torch's FlopCounterMode on this
   very model, so the limit is "peak / FLOPs per target" clips/s; about 77 TFLOP per target, ~10-13 clips/s on
   an H100 per the issue's estimate);
3. two worker processes on the one card, each at the best batch size found in 2: their summed clips/s against one;
4. the audio VAE in float32 (4.84 s of 16 kHz stereo per clip) at batch 1 and 16;
5. H.264 decode of a 720p clip: FFmpeg in software (PyAV, threads), and with NVDEC where the libraries offer
   it (PyAV's `h264_cuvid`, torchcodec on the GPU); the reason when they do not;
6. the CUDA-marked tests (`pytest -m gpu`).
Each part that fails prints its reason and the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAMES = 121
AUDIO_SAMPLES = 77440  # 4.84 s at 16 kHz
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
                    "A10G": 70.0, "A10": 125.0, "RTX 4090": 165.0}
"""Vendors' dense bf16 tensor peaks (no sparsity), by a substring of the device name, the first match winning."""


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def video_rate(vae, size: int, batch: int, budget_s: float, min_calls: int) -> tuple[float, float]:
    """(clips/s, peak GiB) of `encode_video` on random frames at this batch (after one warm-up call)."""
    import torch

    device = vae.device.type
    frames = torch.randint(0, 256, (batch, FRAMES, size, size, 3), dtype=torch.uint8)
    if device == "cuda":
        frames = frames.pin_memory()
        torch.cuda.reset_peak_memory_stats()
    vae.encode_video(frames)
    sync(device)
    calls, t0 = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - t0 < budget_s:
        vae.encode_video(frames)
        calls += 1
        if calls >= 4 * min_calls and time.perf_counter() - t0 >= budget_s / 4:
            break
    sync(device)
    rate = calls * batch / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return rate, peak


def flops_per_clip(vae, size: int) -> float:
    """FLOPs of one target's video encode, counted on this model (convolutions and matmuls)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    frames = torch.randint(0, 256, (1, FRAMES, size, size, 3), dtype=torch.uint8)
    with FlopCounterMode(display=False) as counter:
        vae.encode_video(frames)
    return float(counter.get_total_flops())


def _worker(checkpoint: str, device: str, size: int, batch: int, calls: int, start, queue) -> None:
    """One encode worker of the two-worker check: load, warm up, wait for the other, encode, report."""
    import torch

    from ltxa_data.backends.ltx_vae import LtxVaeEncoders

    vae = LtxVaeEncoders(Path(checkpoint), device=device)
    frames = torch.randint(0, 256, (batch, FRAMES, size, size, 3), dtype=torch.uint8)
    vae.encode_video(frames)
    sync(device)
    start.wait()
    t0 = time.perf_counter()
    for _ in range(calls):
        vae.encode_video(frames)
    sync(device)
    queue.put((calls * batch, time.perf_counter() - t0))


def two_workers(checkpoint: Path, device: str, size: int, batch: int, calls: int) -> float:
    """Summed clips/s of two processes encoding at once on the one device."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    start, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(checkpoint), device, size, batch, calls, start, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return sum(n for n, _ in results) / max(dt for _, dt in results)


def audio_rates(vae, batches: tuple[int, ...]) -> dict[int, float]:
    import torch

    out = {}
    device = vae.device.type
    for b in batches:
        waves = torch.randn(b, 2, AUDIO_SAMPLES) * 0.1
        vae.encode_audio(waves, 16000)
        sync(device)
        t0, calls = time.perf_counter(), 0
        while calls < 3 or time.perf_counter() - t0 < 2.0:
            vae.encode_audio(waves, 16000)
            calls += 1
        sync(device)
        out[b] = calls * b / (time.perf_counter() - t0)
    return out


def decode_rates(folder: Path, seconds: float, cuda: bool) -> list[str]:
    """Lines: frames/s decoding a 720p H.264 clip in software and with NVDEC where offered, or why not."""
    import av

    from ltxa_data.media import write_video

    path = folder / "decode-720p.mp4"
    rng = np.random.default_rng(0)
    base = (rng.random((720, 1280, 3)) * 255).astype(np.uint8)
    n = round(seconds * 25)
    write_video(path, (np.roll(base, 8 * k, axis=1) for k in range(n)), fps=25, crf=23)
    lines = []

    def software() -> int:
        with av.open(str(path)) as c:
            c.streams.video[0].thread_type = "AUTO"
            return sum(1 for f in c.decode(video=0) if f.to_ndarray(format="rgb24") is not None)

    def cuvid() -> int:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            ctx = av.CodecContext.create("h264_cuvid", "r")
            ctx.extradata = stream.codec_context.extradata
            count = 0
            for packet in c.demux(stream):
                for frame in ctx.decode(packet):
                    frame.to_ndarray(format="rgb24")
                    count += 1
            for frame in ctx.decode(None):
                frame.to_ndarray(format="rgb24")
                count += 1
            return count

    def torchcodec_gpu() -> int:
        from torchcodec.decoders import VideoDecoder

        decoder = VideoDecoder(str(path), device="cuda")
        return sum(1 for _ in decoder)

    tries = [("FFmpeg software (PyAV, threads)", software)]
    if cuda:
        tries += [("NVDEC via PyAV h264_cuvid (frames to host)", cuvid), ("NVDEC via torchcodec (frames on GPU)",
                                                                          torchcodec_gpu)]
    else:
        lines.append("NVDEC: not tried (no CUDA device)")
    for name, fn in tries:
        try:
            t0 = time.perf_counter()
            count = fn()
            dt = time.perf_counter() - t0
            lines.append(f"{name}: {count / dt:.0f} frames/s ({count} frames of 1280x720)")
        except Exception as e:  # a library without the decoder, or a driver without NVDEC: say which
            lines.append(f"{name}: unavailable ({type(e).__name__}: {str(e)[:160]})")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry", action="store_true", help="small VAE config, 64 px, few calls: checks the script on a CPU")
    ap.add_argument("--no-tests", action="store_true", help="skip the CUDA-marked tests")
    a = ap.parse_args()
    import torch

    from ltxa_data.backends.ltx_vae import LtxVaeEncoders
    from tests.fixtures.random_ltx import write_random_ltx_checkpoint

    t_start = time.perf_counter()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    size, batches = (64, (1, 2)) if a.dry else (512, (1, 2, 4, 8))
    budget, min_calls = (0.0, 1) if a.dry else (12.0, 2)
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    memory = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else float("nan")
    peak = peak_tflops(name) if cuda else None
    print(f"[machine] torch {torch.__version__}, device {name}, {memory:.0f} GiB, dense bf16 peak "
          f"{f'{peak:.0f} TFLOPS' if peak else 'unknown'}; {'dry run: small config, 64 px' if a.dry else 'full'}",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        ckpt = write_random_ltx_checkpoint(folder / "ltx-2.3-random.safetensors", small=a.dry)
        vae = LtxVaeEncoders(ckpt, device=device)
        print(f"[checkpoint] random weights in the real layout ({'small' if a.dry else 'real'} config), "
              f"{ckpt.stat().st_size / 2**20:.0f} MiB, written and loaded in {time.perf_counter() - t0:.1f} s; "
              f"video encoder computes in {vae.compute_dtype}", flush=True)
        flops = None
        try:
            flops = flops_per_clip(vae, size)
            print(f"[video encode] {flops / 1e12:.2f} TFLOP per 121x{size}x{size} target (counted on this model)")
        except Exception as e:  # FlopCounterMode may not know an op of a later ltx-core
            print(f"[video encode] FLOPs not counted ({type(e).__name__}: {e})")
        best = (0.0, 1)
        for b in batches:
            try:
                rate, gib = video_rate(vae, size, b, budget, min_calls)
            except torch.cuda.OutOfMemoryError:
                print(f"[video encode] batch {b}: out of memory")
                torch.cuda.empty_cache()
                break
            limit = (peak * 1e12 / flops) if peak and flops else None
            share = f", {rate / limit:.0%} of the card's peak ({limit:.1f} clips/s)" if limit else ""
            mem = f", peak {gib:.1f} GiB" if cuda else ""
            print(f"[video encode] batch {b}: {rate:.3f} clips/s{mem}{share}", flush=True)
            best = max(best, (rate, b))
        del vae
        if cuda:
            torch.cuda.empty_cache()
        try:
            calls = 1 if a.dry else max(2, round(20 * best[0] / (2 * best[1])))  # ~20 s of work each
            both = two_workers(ckpt, device, size, best[1], calls)
            print(f"[two workers] batch {best[1]} each: {both:.3f} clips/s together, {both / best[0]:.2f}x one worker "
                  f"({best[0]:.3f})", flush=True)
        except Exception as e:  # out of memory with two copies, or a spawn failure: say so
            print(f"[two workers] failed: {type(e).__name__}: {str(e)[:200]}")
        vae = LtxVaeEncoders(ckpt, device=device)
        rates = audio_rates(vae, (1, 4) if a.dry else (1, 16))
        print("[audio encode, float32] " + ", ".join(f"batch {b}: {r:.2f} clips/s" for b, r in rates.items()),
              flush=True)
        del vae
        for line in decode_rates(folder, 2.0 if a.dry else 10.0, cuda):
            print(f"[decode] {line}", flush=True)
    if a.dry or a.no_tests or not cuda:
        print("[cuda tests] not run" + (" (--dry)" if a.dry else " (--no-tests)" if a.no_tests else " (no CUDA)"))
    else:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                              "tests/test_ltx_vae.py", "tests/test_speech_backends.py"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
        tail = (run.stdout + run.stderr).strip().splitlines()
        print(f"[cuda tests] exit {run.returncode}: {tail[-1] if tail else 'no output'}")
        for line in tail[-12:-1] if run.returncode else []:
            print(f"    {line}")
    print(f"[done] in {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
