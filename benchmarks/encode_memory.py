"""Peak host memory (RSS) of one encode worker on CPU, measured, against `ltxa_data.memory`'s estimate.

    python benchmarks/encode_memory.py                          # small random-weight VAE config, a few sizes
    python benchmarks/encode_memory.py --full --batches 1       # the real LTX-2.3 VAE config (~2.5 min)
    python benchmarks/encode_memory.py --full --dtype bfloat16 --sizes 121x256 121x512 --batches 1  # ~12 min
    python benchmarks/encode_memory.py measure CKPT --frames 17 --size 64 --batch 1   # one measurement, JSON

Each measurement runs in a fresh subprocess, as an encode worker would: import torch and ltx-core, load
the encoders with `LtxVaeEncoders` (CPU, `--dtype`, default float32; on this AVX512/AMX CPU bf16 was as
fast, on CPUs without bf16 convolutions it is far slower), then encode two batches of random uint8 frames
[B, F, S, S, 3], the targets' audio (4.84 s) and their references (`--refs` per target, 3.5 s).
It reads the kernel's peak RSS (VmHWM, reset through /proc/self/clear_refs between phases) and prints,
in bytes:

- `runtime`: RSS after the imports, before any weights;
- `load_peak`, `loaded`: peak RSS while loading, RSS once loaded;
- `inputs`: the batch's frames, audio and references (RSS rise when made);
- `video`, `audio`, `refs`: each phase's peak RSS above the RSS before it (the batch's activation peak;
  weights stored in the dtype they are loaded in stay mapped from the file until the video phase touches
  them, so there it includes them), and `*_kept`: what the phase left resident (the allocator's heap);
- `peak`: the highest RSS after loading (what the worker needs, beside `load_peak`).

The table compares them with `ltxa_data.memory`'s estimate (activation peak and the whole worker's host
peak; ratio = estimate / measured). Its constants (CPU_VIDEO_BYTES_PER_VOXEL, VIDEO_FIXED_BYTES,
AUDIO_BYTES_PER_SECOND, RUNTIME_BYTES) come from this script's measurements at `--full` (float32 and
`--dtype bfloat16`) and at the small config: `B/vox` = (video - fixed) / (batch x F x S x S).
Random weights: the memory is real, the latents are not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

GIB = 1 << 30


def _hwm() -> int:
    """Peak RSS (VmHWM) of this process since start or the last reset, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(a: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints its JSON line."""
    import torch

    from ltxa_data.backends.ltx_vae import LtxVaeEncoders

    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    runtime = _rss()
    _reset_peak()
    vae = LtxVaeEncoders(Path(a.checkpoint), device="cpu", video_dtype=getattr(torch, a.dtype))
    load_peak, loaded = _hwm(), _rss()
    out = {"frames": a.frames, "size": a.size, "batch": a.batch, "dtype": a.dtype, "threads": a.threads,
           "runtime": runtime, "load_peak": load_peak, "loaded": loaded}
    frames = torch.randint(0, 256, (a.batch, a.frames, a.size, a.size, 3), dtype=torch.uint8, generator=gen)
    audio = torch.randn(a.batch, 2, a.audio_samples, generator=gen) * 0.1
    refs = torch.randn(a.refs * a.batch, 2, a.ref_samples, generator=gen) * 0.1
    out["inputs"] = _rss() - loaded
    peak = 0
    for phase, run in (("video", lambda: vae.encode_video(frames)), ("audio", lambda: vae.encode_audio(audio, 16000)),
                       ("refs", lambda: vae.encode_audio(refs, 16000))):
        before = _rss()
        _reset_peak()
        for _ in range(2):  # the second batch shows what the allocator keeps from the first
            z = run()
            del z
        out[phase], out[f"{phase}_kept"] = max(0, _hwm() - before), _rss() - before
        peak = max(peak, _hwm())
    out["peak"] = peak
    print(json.dumps(out), flush=True)


def measure(checkpoint: Path, frames: int, size: int, batch: int, dtype: str = "float32", threads: int = 2,
            timeout: float = 600) -> dict:
    """One measurement in a fresh subprocess (see `child`)."""
    cmd = [sys.executable, __file__, "measure", str(checkpoint), "--frames", str(frames), "--size", str(size),
           "--batch", str(batch), "--dtype", dtype, "--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"measurement failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def estimate(checkpoint: Path, frames: int, size: int, batch: int, dtype: str, refs: int = 1):
    """`ltxa_data.memory`'s estimate for this measurement: the batch's inputs, not a prefetch queue, no media."""
    from ltxa_data.memory import encoder_weights, worker_memory

    return worker_memory(encoder_weights(checkpoint, None, dtype), frames=frames, size=size, references=refs,
                         device="cpu", prefetch_batches=0, keep_media=False)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "measure":
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("checkpoint")
        ap.add_argument("--frames", type=int, default=17)
        ap.add_argument("--size", type=int, default=64)
        ap.add_argument("--batch", type=int, default=1)
        ap.add_argument("--dtype", default="float32")
        ap.add_argument("--threads", type=int, default=2)
        ap.add_argument("--audio-samples", type=int, default=77_440)
        ap.add_argument("--ref-samples", type=int, default=56_000)
        ap.add_argument("--refs", type=int, default=1, help="references per target")
        child(ap.parse_args())
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the real LTX-2.3 VAE config (a 0.7 GB checkpoint)")
    ap.add_argument("--checkpoint", type=Path, help="an existing checkpoint instead of a random one")
    ap.add_argument("--sizes", nargs="+", default=["121x64", "121x128"], help="FRAMESxSIDE")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = a.checkpoint
        if ckpt is None:
            from tests.fixtures.random_ltx import write_random_ltx_checkpoint

            ckpt = write_random_ltx_checkpoint(Path(tmp) / "ltx.safetensors", small=not a.full)
        print(f"{'F x S':>7} {'B':>2} {'runtime':>7} {'load pk':>7} {'loaded':>7} {'video':>6} {'B/vox':>5} "
              f"{'audio':>6} {'refs':>6} {'peak':>6} | {'est act':>7} {'ratio':>5} {'est host':>8} {'ratio':>5}  (GiB)")
        for spec in a.sizes:
            f, s = (int(x) for x in spec.split("x"))
            for b in a.batches:
                m = measure(ckpt, f, s, b, a.dtype, a.threads)
                need = estimate(ckpt, f, s, b, a.dtype)
                # weights stored in the load dtype stay mapped from the file until the first batch touches them
                paged = max(0, m["runtime"] + need.weights_bytes - m["loaded"])
                video = max(0, m["video"] - paged)
                act = max(video, m["audio"], m["refs"])
                host = max(m["load_peak"], m["peak"])
                per_voxel = (video - need.fixed_activation_bytes) / (b * f * s * s)
                est_act, est_host = need.activation_bytes(b), need.host_bytes(b)
                print(f"{spec:>7} {b:>2} {m['runtime'] / GIB:7.3f} {m['load_peak'] / GIB:7.3f} "
                      f"{m['loaded'] / GIB:7.3f} {video / GIB:6.3f} {per_voxel:5.0f} {m['audio'] / GIB:6.3f} "
                      f"{m['refs'] / GIB:6.3f} {host / GIB:6.3f} | {est_act / GIB:7.3f} {est_act / act:5.2f} "
                      f"{est_host / GIB:8.3f} {est_host / host:5.2f}", flush=True)

if __name__ == "__main__":
    main()
