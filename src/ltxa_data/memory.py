"""How much memory one encode worker needs, what the machine holds, and how many workers and how large a
batch fit (`encode.backend: ltx`).

One worker holds, at its peak:

- the runtime: Python, torch, ltx-core, the decoders (`RUNTIME_BYTES`; with CUDA, its host side too);
- the two encoders' weights at the dtypes they are loaded in (video VAE encoder in `encode.video_dtype`,
  audio VAE encoder in float32), counted from the checkpoint's safetensors header, not guessed; while
  loading, also the stored tensors that are being cast (a bf16 file loaded in float32);
- the activations of one batch: a part that grows with the batch (`per_sample_bytes`, per target) and one
  that does not (the largest layer's weights, reordered for the convolution, ...). The video encoder's
  peak grows with the target's voxels (frames x side x side); the audio encoder's with the seconds of
  audio (target audio and references run as separate batches after the video);
- the cut samples waiting for the encoder, on the host: `prefetch_batches` + 1 batches of uint8 frames,
  audio and references (`ltxa_data.ltx.encode.prefetched`).

On CPU all of it is host memory; on CUDA the weights and activations are GPU memory (plus the CUDA
context) and the host keeps the runtime and the cut samples.

The activation constants were measured on CPU (float32) with random-weight checkpoints in the real
layout, the real LTX-2.3 VAE config and the tests' small one: `python benchmarks/encode_memory.py --full`
(see its docstring), peak RSS (VmHWM) per phase in a fresh process. GPU figures are derived from them
(same activation count at the video dtype's width), not measured: `WorkerMemory.calibrated` replaces
the per-sample estimate with what a first batch measured (`torch.cuda.max_memory_allocated`).
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SystemicError
from .recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES

if TYPE_CHECKING:
    from .recipe import Recipe

GIB = 1 << 30
MIB = 1 << 20

# --- measured constants (benchmarks/encode_memory.py, 2-core x86 CPU with AVX512/AMX, torch 2.13 CPU build,
# ltx-core as pinned; 2 torch threads, two batches per phase, VmHWM above the RSS before the phase) ---

RUNTIME_BYTES = 400 * MIB
"""A CPU worker before any weights: 305 MiB measured with torch + ltx-core, 385 MiB with the worker's other
imports (polars, av, the stages)."""
RUNTIME_BYTES_CUDA = 2 * GIB
"""A CUDA worker's host side (the CUDA runtime, cuDNN and cuBLAS mapped in): not measured here, a common
figure for torch 2.x."""
GPU_CONTEXT_BYTES = 1 * GIB
"""The CUDA context and cuDNN/cuBLAS workspaces on the GPU, outside torch's allocator: not measured here."""
GPU_SLACK = 1.2
"""The caching allocator's fragmentation and convolution workspaces over the activation peak (not measured)."""

CPU_VIDEO_BYTES_PER_VOXEL = {"float32": 190, "bfloat16": 150, "float16": 150}
"""Video encoder activation peak on CPU per input voxel (frames x height x width) of a target in the batch,
by video dtype (oneDNN keeps bf16 close to float32). Measured with the real LTX-2.3 config, peak above the
RSS before the phase less the fixed part, over batch x voxels, at the targets' 121 frames: float32 157 and
188 B (121x128, two runs), bfloat16 134 B (121x256) and 130 B (121x512x512: 4.23 GB). Shorter clips cost
more a voxel (float32 161-202 B at 17x256 batch 1 and 2, 17x384, 17x512, 33x256; bfloat16 172-185 B at
17x256, 17x384, 9x256 batch 2), so these hold for 121-frame targets. The tests' small config (same first
stage) gave 111-165 B. The first stage dominates: 128 channels at 1/16 of the pixels (8 elements a voxel),
4-6 tensors of it live (block input, causally padded copy, convolution output, norm, residual)."""
VIDEO_FIXED_BYTES = 64 * MIB
"""Activation peak that does not grow with the batch, beside the largest encoder tensor (oneDNN reorders a
convolution's weights for each call): at 17x64 the real config peaked 171 MiB above the RSS before the
phase (largest tensor 108 MiB in float32), the small config 40 MiB; fits at larger sizes gave 84-180 MiB."""

GPU_VIDEO_ELEMENTS_PER_VOXEL = 44
"""GPU estimate (not measured): the activation elements live at the peak, per voxel, as the float32 CPU
measurement at 121 frames implies ((157..188 - 12) / 4 = 36..44), at the video dtype's width, plus the pixels
(`_gpu_input_bytes`)."""
AUDIO_BYTES_PER_SECOND = 40_000_000
"""Audio encoder activation peak per second of audio in the batch (float32 always, mel 100 frames/s x 64
bins): 30-37 MB/s measured with the real config (4.84 s: 142-229 MB; 4 x 3.5 s: 341-535 MB; 8 x 3.5 s: 863
MB), 21 MB/s with the small one."""
AUDIO_FIXED_BYTES = 40 * MIB

HOST_USABLE = 0.9
"""Share of the available host memory that the plan fills: the driver, page cache and estimate error keep
the rest."""
GPU_USABLE = 0.95

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
                "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
_TORCH_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
_SAFETENSORS_DTYPE = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}

# The keys ltx-core's encoder filters read (VAE_ENCODER_COMFY_KEYS_FILTER, AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER;
# `backends.ltx_vae._bind`): `{prefix}encoder.*` and `{prefix}per_channel_statistics.*`, or in a split file
# without prefixed keys the bare `encoder.*` / `per_channel_statistics.*`. The latent statistics the encoder
# does not keep (`ltx_vae.UNUSED_STATISTICS`) are not counted.
_UNUSED_STATISTICS = ("channel", "mean-of-stds", "mean-of-stds_over_std-of-means")


def safetensors_header(path: Path | str) -> dict[str, Any]:
    """The JSON header of a safetensors file: {name: {dtype, shape, data_offsets}, "__metadata__": {...}}."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 * MIB:
                raise ValueError(f"header of {n} bytes")
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as e:
        raise SystemicError(f"encode: cannot read the safetensors header of {path} ({e})") from e
    if not isinstance(header, dict):
        raise SystemicError(f"encode: {path}: the safetensors header is not a JSON object")
    return header


def _tensor_bytes(info: dict[str, Any], dtype_bytes: int | None = None) -> int:
    n = math.prod(int(d) for d in info["shape"])
    return n * (dtype_bytes if dtype_bytes is not None else _DTYPE_BYTES.get(info["dtype"], 4))


def _encoder_tensors(header: dict[str, Any], prefix: str, split: bool) -> dict[str, dict[str, Any]]:
    """The tensors of one encoder (`prefix` "vae." or "audio_vae.") that ltx-core loads and keeps."""
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if split and not any(k.startswith(prefix + "encoder.") for k in tensors):
        prefix = ""
    out = {}
    for k, v in tensors.items():
        statistic = k.startswith(prefix + "per_channel_statistics.") and k.rsplit(".", 1)[-1] not in _UNUSED_STATISTICS
        if statistic or k.startswith(prefix + "encoder."):
            out[k] = v
    return out


@dataclass(frozen=True)
class EncoderWeights:
    """The encoders' tensors as the checkpoint header lists them, in bytes."""

    video_bytes: int
    """The video VAE encoder at the dtype it is loaded in."""
    audio_bytes: int
    """The audio VAE encoder in float32."""
    load_extra_bytes: int
    """Held only while loading: the stored tensors of the larger part that are cast to another dtype."""
    largest_bytes: int
    """The largest video encoder tensor at its load dtype."""
    video_dtype: str

    @property
    def total(self) -> int:
        return self.video_bytes + self.audio_bytes


def encoder_weights(checkpoint: Path | str, audio_checkpoint: Path | str | None = None,
                    video_dtype: str = "bfloat16") -> EncoderWeights:
    """The video and audio VAE encoders' weight bytes from the checkpoint header(s), at their load dtypes."""
    split = audio_checkpoint is not None
    video_header = safetensors_header(checkpoint)
    audio_header = safetensors_header(audio_checkpoint) if split else video_header
    video = _encoder_tensors(video_header, "vae.", split)
    audio = _encoder_tensors(audio_header, "audio_vae.", split)
    for what, found, path in (("video", video, checkpoint), ("audio", audio, audio_checkpoint or checkpoint)):
        if not any(".per_channel_statistics." not in "." + k for k in found):
            raise SystemicError(f"encode: {path} holds no {what} VAE encoder tensors")
    vbytes = _TORCH_BYTES[video_dtype]
    cast_video = sum(_tensor_bytes(v) for v in video.values() if v["dtype"] != _SAFETENSORS_DTYPE[video_dtype])
    cast_audio = sum(_tensor_bytes(v) for v in audio.values() if v["dtype"] != "F32")
    return EncoderWeights(
        video_bytes=sum(_tensor_bytes(v, vbytes) for v in video.values()),
        audio_bytes=sum(_tensor_bytes(v, 4) for v in audio.values()),
        load_extra_bytes=max(cast_video, cast_audio),
        largest_bytes=max(_tensor_bytes(v, vbytes) for v in video.values()),
        video_dtype=video_dtype)


def _gpu_input_bytes(video_dtype: str) -> int:
    """Per voxel, the pixels `encode_video` holds on the device through the forward pass: float32 [B, 3, F, H, W]
    and, for another dtype, its cast copy; the uint8 frames while converting."""
    return 3 + 12 + (3 * _TORCH_BYTES[video_dtype] if video_dtype != "float32" else 0)


def _gib(n: float) -> str:
    return f"{n / GIB:.1f}" if n >= GIB / 10 or n == 0 else f"{n / GIB:.2f}"


@dataclass(frozen=True)
class WorkerMemory:
    """What one encode worker needs, in bytes. `host_bytes(b)` / `gpu_bytes(b)` at batch size b."""

    device: str
    """"cpu" or "cuda": where the weights and activations live."""
    runtime_bytes: int
    """The worker process before any weights (on CUDA: with the CUDA runtime's host side)."""
    weights_bytes: int
    """The two encoders at their load dtypes (from the checkpoint header)."""
    load_extra_bytes: int
    """Held only while loading: stored tensors being cast."""
    fixed_activation_bytes: int
    """Activation peak that does not grow with the batch."""
    per_sample_bytes: int
    """Activation peak per target in a batch (video, or its audio and references when larger)."""
    cut_bytes: int
    """One cut sample waiting on the host: uint8 frames, target audio, references, media."""
    held_batches: int
    """Batches of cut samples on the host at once (prefetch_batches + the one being encoded)."""
    gpu_context_bytes: int = 0
    """CUDA context and library workspaces on the GPU (cuda only)."""
    size: str = ""
    """The target the figures are for, e.g. "121x512x512 float32" (for messages)."""
    measured: bool = False
    """per_sample_bytes comes from a measured batch (`calibrated`), not the formula."""

    def activation_bytes(self, batch: int) -> int:
        """Activation peak of a batch of `batch` targets (where the device holds it)."""
        return self.fixed_activation_bytes + batch * self.per_sample_bytes

    def host_bytes(self, batch: int) -> int:
        """Peak resident host memory of one worker at this batch size."""
        cuts = self.held_batches * batch * self.cut_bytes
        if self.device == "cuda":
            return self.runtime_bytes + cuts
        return self.runtime_bytes + self.weights_bytes + max(self.load_extra_bytes, self.activation_bytes(batch) + cuts)

    def gpu_bytes(self, batch: int) -> int:
        """Peak GPU memory of one worker at this batch size (0 on CPU)."""
        if self.device != "cuda":
            return 0
        act = self.activation_bytes(batch) if self.measured else int(self.activation_bytes(batch) * GPU_SLACK)
        return self.gpu_context_bytes + self.weights_bytes + max(self.load_extra_bytes, act)

    def explain(self, batch: int = 1) -> str:
        """One line: the parts of a worker's peak at this batch size."""
        act = self.activation_bytes(batch)
        cuts = self.held_batches * batch * self.cut_bytes
        how = "measured" if self.measured else "estimated"
        if self.device == "cuda":
            act = act if self.measured else int(act * GPU_SLACK)
            return (f"~{_gib(self.gpu_bytes(batch))} GiB GPU (context {_gib(self.gpu_context_bytes)} + weights "
                    f"{_gib(self.weights_bytes)} + batch of {batch} {_gib(act)}, {how}) and ~"
                    f"{_gib(self.host_bytes(batch))} GiB host (runtime {_gib(self.runtime_bytes)} + cut samples "
                    f"{_gib(cuts)}) for {self.size}")
        return (f"~{_gib(self.host_bytes(batch))} GiB host (runtime {_gib(self.runtime_bytes)} + weights "
                f"{_gib(self.weights_bytes)} + batch of {batch} {_gib(act)} {how} + cut samples {_gib(cuts)}) "
                f"for {self.size}")

    def calibrated(self, batch: int, peak_bytes: int) -> WorkerMemory:
        """This estimate with the per-sample activation taken from a measured batch: `peak_bytes` is the
        activation peak of a batch of `batch` targets above what the worker held before it (on CUDA,
        `torch.cuda.max_memory_allocated()` after `reset_peak_memory_stats()`, minus the allocated bytes
        before; on CPU, the peak RSS rise)."""
        per = max(0, peak_bytes - self.fixed_activation_bytes) / max(1, batch)
        return replace(self, per_sample_bytes=math.ceil(per), measured=True)


def worker_memory(weights: EncoderWeights, *, frames: int = TARGET_FRAMES, size: int = 512, device: str = "cpu",
                  references: int = 1, reference_s: float = 3.5, audio_s: float = TARGET_FRAMES / TARGET_FPS,
                  prefetch_batches: int = 2, keep_media: bool = True) -> WorkerMemory:
    """One worker's needs for targets of `frames` x `size` x `size` with `references` references of
    `reference_s` seconds each, from the header's `weights` and the measured constants."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, not {device!r}")
    dtype = weights.video_dtype
    voxels = frames * size * size
    cuda = device == "cuda"
    if cuda:
        video_per = voxels * (_gpu_input_bytes(dtype) + GPU_VIDEO_ELEMENTS_PER_VOXEL * _TORCH_BYTES[dtype])
    else:
        video_per = voxels * CPU_VIDEO_BYTES_PER_VOXEL[dtype]
    # the target audio and the references are separate batches after the video: the largest one counts
    audio_per = AUDIO_BYTES_PER_SECOND * max(audio_s, references * reference_s)
    audio_samples = round(audio_s * AUDIO_SAMPLE_RATE) + references * round(reference_s * AUDIO_SAMPLE_RATE)
    cut = voxels * 3 + audio_samples * 2 * 4  # uint8 RGB frames, float32 stereo audio
    if keep_media:  # the mp4 (x264 at crf 18: well under 1/10 of the raw frames) and 16-bit wavs
        cut += voxels * 3 // 10 + audio_samples * 2 * 2
    return WorkerMemory(
        device=device,
        runtime_bytes=RUNTIME_BYTES_CUDA if cuda else RUNTIME_BYTES,
        weights_bytes=weights.total,
        load_extra_bytes=weights.load_extra_bytes,
        fixed_activation_bytes=max(VIDEO_FIXED_BYTES + weights.largest_bytes, AUDIO_FIXED_BYTES),
        per_sample_bytes=int(max(video_per, audio_per)),
        cut_bytes=int(cut),
        held_batches=prefetch_batches + 1,
        gpu_context_bytes=GPU_CONTEXT_BYTES if cuda else 0,
        size=f"{frames}x{size}x{size} {dtype}")


def resolve_device(setting: str) -> str:
    """`encode.device` as the worker will use it: auto is cuda when torch sees one."""
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def encode_memory(recipe: Recipe, device: str | None = None) -> WorkerMemory:
    """What one encode worker of this recipe needs (`encode.backend: ltx`): weights from the checkpoint
    header(s), activations at the recipe's target size and references. `device` overrides `encode.device`."""
    cfg = recipe.encode
    if cfg.checkpoint is None:
        raise SystemicError("encode: no encode.checkpoint to size the encoders from")
    device = device or resolve_device(cfg.device)
    # A CPU without bf16 units computes the video encoder in float32 whatever encode.video_dtype says.
    dtype = "float32" if device == "cpu" and not cpu_has_bf16() else cfg.video_dtype
    weights = encoder_weights(recipe.resolve(cfg.checkpoint),
                              recipe.resolve(cfg.audio_checkpoint) if cfg.audio_checkpoint else None, dtype)
    return worker_memory(weights, frames=TARGET_FRAMES, size=recipe.targets.size, device=device,
                         references=recipe.pairs.references_per_target, reference_s=recipe.references.duration_s,
                         prefetch_batches=cfg.prefetch_batches, keep_media=cfg.keep_media)


@dataclass(frozen=True)
class MemoryPlan:
    """The workers and batch size that fit, and what was asked."""

    workers: int
    batch_size: int
    requested_workers: int
    requested_batch_size: int
    host_bytes: int
    """All workers' host peak at the chosen settings."""
    gpu_bytes: int
    """One GPU's peak (the workers sharing it) at the chosen settings; 0 on CPU."""
    message: str | None = None
    """Set when anything was reduced: what each worker needs and what the machine holds."""

    @property
    def reduced(self) -> bool:
        return (self.workers, self.batch_size) != (self.requested_workers, self.requested_batch_size)


def plan_workers(need: WorkerMemory, workers: int, batch_size: int, host_available: int,
                 gpu_total: int | None = None, gpu_count: int = 1) -> MemoryPlan:
    """The most workers (up to `workers`) and the largest batch (up to `batch_size`) whose peaks fit in
    `host_available` bytes of host memory (of which `HOST_USABLE` is used) and, on CUDA, `gpu_total` bytes
    on each of `gpu_count` GPUs (workers spread evenly over them). GPU memory is made to fit by lowering the
    batch first (down to 1), then the workers sharing a GPU; host memory by lowering the workers first
    (down to 1), then the batch. `SystemicError` with the numbers when one worker at batch 1 does not fit."""
    workers, batch_size, gpu_count = max(1, workers), max(1, batch_size), max(1, gpu_count)
    host_room = int(host_available * HOST_USABLE)
    w, b = workers, batch_size
    gpu = need.device == "cuda" and gpu_total is not None
    gpu_room = int(gpu_total * GPU_USABLE) if gpu else 0

    def sharing(n: int) -> int:
        return -(-n // gpu_count)

    if gpu:
        while b > 1 and sharing(w) * need.gpu_bytes(b) > gpu_room:
            b -= 1
        while w > 1 and sharing(w) * need.gpu_bytes(b) > gpu_room:
            w -= 1
        if need.gpu_bytes(b) > gpu_room:
            raise SystemicError(
                f"encode: one worker at batch 1 needs {need.explain(1)}, more than the GPU's "
                f"{_gib(gpu_total or 0)} GiB ({GPU_USABLE:.0%} usable): lower targets.size, or use a larger GPU")
    while w > 1 and w * need.host_bytes(b) > host_room:
        w -= 1
    while b > 1 and need.host_bytes(b) > host_room:
        b -= 1
    if need.host_bytes(b) > host_room:
        where = "a CUDA device (encode.device: cuda)" if need.device == "cpu" else "a machine with more memory"
        raise SystemicError(
            f"encode: one worker at batch 1 needs {need.explain(1)}, but only {_gib(host_available)} GiB of host "
            f"memory is available ({HOST_USABLE:.0%} usable, {_gib(host_room)} GiB): lower targets.size, "
            f"encode.prefetch_batches, or run on {where}")
    plan = MemoryPlan(w, b, workers, batch_size, w * need.host_bytes(b),
                      sharing(w) * need.gpu_bytes(b) if gpu else 0)
    if not plan.reduced:
        return plan
    room = (f"{_gib(host_available)} GiB host available" if not gpu else
            f"{_gib(host_available)} GiB host and {_gib(gpu_total or 0)} GiB per GPU x {gpu_count} available")
    msg = (f"encode: each worker needs {need.explain(batch_size)}; {room} holds {w} worker{'s' * (w != 1)} "
           f"of {workers} at batch {b} of {batch_size}: using {w} worker{'s' * (w != 1)}, batch {b}")
    return replace(plan, message=msg)


# --- what the machine holds ---

_UNLIMITED = 1 << 60  # cgroup v1 spells "no limit" as a huge number


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _stat_value(text: str | None, key: str) -> int:
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return 0


def _cgroup_room(proc_cgroup: Path, cgroup_root: Path) -> int | None:
    """Bytes this process's memory cgroup (or an ancestor) still allows: limit - usage + inactive file
    cache, the smallest over the hierarchy; None without a limit."""
    text = _read(proc_cgroup) or ""
    rooms: list[int] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        v2 = controllers == "" and parts[0] == "0"
        if not v2 and "memory" not in controllers.split(","):
            continue
        base = cgroup_root if v2 else cgroup_root / "memory"
        limit_f, usage_f, inactive = (("memory.max", "memory.current", "inactive_file") if v2 else
                                      ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
        # the cgroup's own folder when the hierarchy is visible, its ancestors, and the mount's root (a
        # cgroup namespace shows the process's own cgroup there)
        rel_parts = [p for p in rel.strip("/").split("/") if p]
        folders = [base.joinpath(*rel_parts[:i]) for i in range(len(rel_parts), 0, -1)] + [base]
        for folder in folders:
            limit = (_read(folder / limit_f) or "").strip()
            if not limit or limit == "max" or not limit.isdigit() or int(limit) >= _UNLIMITED:
                continue
            usage = int((_read(folder / usage_f) or "0").strip() or 0)
            free_cache = _stat_value(_read(folder / "memory.stat"), inactive)
            rooms.append(max(0, int(limit) - usage + free_cache))
    return min(rooms) if rooms else None


def host_memory_available(meminfo: Path | str = "/proc/meminfo", proc_cgroup: Path | str = "/proc/self/cgroup",
                          cgroup_root: Path | str = "/sys/fs/cgroup") -> int:
    """Bytes of host memory a new worker may use: MemAvailable from /proc/meminfo, capped by the room left
    under this process's cgroup memory limit (v2 memory.max or v1 memory.limit_in_bytes) when there is one."""
    text = _read(Path(meminfo)) or ""
    avail = None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            avail = int(line.split()[1]) * 1024
    if avail is None:  # not Linux, or a kernel before 3.14: total physical memory
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            avail = 0
    room = _cgroup_room(Path(proc_cgroup), Path(cgroup_root))
    return min(avail, room) if room is not None else avail


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16): there a bf16 convolution is ~2.5x
    faster than float32 (121x256x256 target, real VAE: 25 s against 62 s); elsewhere over 100x slower."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def gpu_memory_total(index: int = 0) -> int | None:
    """Total memory of CUDA device `index` in bytes, None without CUDA (imports torch)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(index).total_memory)
