"""The encode stage's production backend: the LTX-2 video VAE encoder (bf16) and audio VAE encoder (float32),
built by ltx-core's own model builder, configurators and key filters from an LTX-2.3 checkpoint.

Checkpoint layouts (safetensors, model config JSON under the metadata key `config`):
- unified (the LTX-2.3 release): `vae.encoder.*`, `vae.per_channel_statistics.*`, `audio_vae.encoder.*`,
  `audio_vae.per_channel_statistics.*` among the transformer, decoders, vocoder, ... which are never read;
- split: a video VAE file and an audio VAE file, each with its own `config` metadata (holding the `vae`,
  resp. `audio_vae` section) and either the same prefixed keys (what ltx-core's filters accept) or the bare
  ComfyUI VAE layout `encoder.*` + `per_channel_statistics.*` (renamed with ltx-core's `SDOps`).

ltx-core's builder loads with `strict=False` and returns a half-built meta model on missing keys, so the
keys are checked here first: every missing or unexpected key (after ltx-core's filtering and renaming) is a
`SystemicError`. The only tolerated extras are the unused latent statistics (`UNUSED_STATISTICS`) that
LTX VAE checkpoints carry beside the two the encoder reads.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from ..errors import SystemicError
from ..memory import cpu_has_bf16
from ..storage import file_sha256
from .model_source import torch_device

SETTING = "encode.backend ltx"
UNUSED_STATISTICS = ("channel", "mean-of-stds", "mean-of-stds_over_std-of-means")
TEMPORAL_FACTOR = 8
SPATIAL_FACTOR = 32
_SHOW = 10  # keys named per kind in a binding error


def import_ltx_core() -> Any:
    """Import ltx-core, or say how to install it."""
    try:
        import ltx_core.loader
        import ltx_core.model.audio_vae
        import ltx_core.model.video_vae
    except (ImportError, OSError) as e:
        raise SystemicError(f"{SETTING}: ltx-core does not import ({type(e).__name__}: {e}); install the encode "
                            "extra: pip install -e '.[encode]' -c constraints.txt") from e
    return ltx_core


def read_ltx_config(path: Path) -> dict[str, Any]:
    """The model config JSON under the safetensors metadata key `config`; a `SystemicError` naming the file
    when it is missing, not a safetensors file, or has no such (JSON object) entry."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SystemicError(f"{SETTING}: the LTX checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error type for a malformed header
        raise SystemicError(f"{SETTING}: {path} is not a safetensors file ({e})") from e
    if "config" not in meta:
        raise SystemicError(f"{SETTING}: {path} is not an LTX-2 checkpoint: its safetensors metadata has no 'config' "
                            "entry (expected the model config JSON there, as in the LTX-2.3 release files)")
    try:
        config = json.loads(meta["config"])
    except json.JSONDecodeError as e:
        raise SystemicError(f"{SETTING}: {path}: the 'config' metadata is not JSON ({e})") from e
    if not isinstance(config, dict):
        raise SystemicError(f"{SETTING}: {path}: the 'config' metadata is not a JSON object")
    return config


@dataclass(frozen=True)
class _Part:
    """One encoder of the checkpoint: its config section, key prefix and ltx-core configurator/filter."""

    label: str
    section: str  # top-level config key
    prefix: str  # "vae." or "audio_vae."
    configurator: Any
    sd_ops: Any

    def bare_sd_ops(self) -> Any:
        """ltx-core SDOps for a split file in the bare ComfyUI layout (`encoder.*`, `per_channel_statistics.*`)."""
        from ltx_core.loader import SDOps

        return (SDOps(f"{self.section.upper()}_ENCODER_BARE_KEYS_FILTER").with_matching(prefix="encoder.")
                .with_matching(prefix="per_channel_statistics.").with_replacement("encoder.", ""))


def _video_part() -> _Part:
    vv = import_ltx_core().model.video_vae
    return _Part("video VAE encoder", "vae", "vae.", vv.VideoEncoderConfigurator, vv.VAE_ENCODER_COMFY_KEYS_FILTER)


def _audio_part() -> _Part:
    av = import_ltx_core().model.audio_vae
    return _Part("audio VAE encoder", "audio_vae", "audio_vae.", av.AudioEncoderConfigurator,
                 av.AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > _SHOW else ''})"


def _bind(path: Path, part: _Part, device: torch.device, dtype: torch.dtype, split: bool) -> torch.nn.Module:
    """Build `part` from `path` with ltx-core's builder after checking the checkpoint's keys and shapes
    against the model ltx-core makes from the file's config; anything amiss is a `SystemicError`."""
    from ltx_core.loader import SingleGPUModelBuilder
    from safetensors import safe_open

    config = read_ltx_config(path)
    if not isinstance(config.get(part.section), dict):
        raise SystemicError(f"{SETTING}: {path}: the 'config' metadata has no '{part.section}' section, so it holds "
                            f"no LTX-2 {part.label} (expected in a unified LTX-2.3 checkpoint or a split "
                            f"{part.section} file)")
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        sd_ops = part.sd_ops
        if split and not any(k.startswith(part.prefix + "encoder.") for k in keys):
            sd_ops = part.bare_sd_ops()
        found = {new: k for k in keys if (new := sd_ops.apply_to_key(k)) is not None}
        if not any(not n.startswith("per_channel_statistics.") for n in found):
            raise SystemicError(f"{SETTING}: {path} holds no {part.label} weights: expected keys "
                                f"{part.prefix}encoder.* and {part.prefix}per_channel_statistics.*"
                                + (" (or encoder.*, per_channel_statistics.* in a split file)" if split else ""))
        shapes = {new: tuple(f.get_slice(k).get_shape()) for new, k in found.items()}
    builder = SingleGPUModelBuilder(model_class_configurator=part.configurator, model_path=str(path),
                                    model_sd_ops=sd_ops)
    try:
        expected = {k: tuple(v.shape) for k, v in builder.meta_model(config, ()).state_dict().items()}
    except Exception as e:
        raise SystemicError(f"{SETTING}: {path}: ltx-core cannot build the {part.label} from the file's "
                            f"'{part.section}' config ({type(e).__name__}: {e})") from e
    unused = {k for k in found if k.startswith("per_channel_statistics.")
              and k.split(".", 1)[1] in UNUSED_STATISTICS and k not in expected}
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found[k] for k in found.keys() - expected.keys() - unused)
    if missing or unexpected:
        stem = part.prefix if sd_ops is part.sd_ops else ""  # name missing keys as the file would spell them
        missing = [stem + (k if k.startswith("per_channel_statistics.") else "encoder." + k) for k in missing]
        what = ([f"missing keys {_listing(missing)}"] if missing else []) + (
            [f"unexpected keys {_listing(unexpected)}"] if unexpected else [])
        raise SystemicError(f"{SETTING}: {path} does not match the {part.label} that its config describes: "
                            + "; ".join(what))
    wrong = [f"{found[k]} {shapes[k]} (model wants {expected[k]})" for k in sorted(expected)
             if shapes[k] != expected[k]]
    if wrong:
        raise SystemicError(f"{SETTING}: {path}: {part.label} tensors of the wrong shape: {_listing(wrong)}")
    try:
        model = builder.build(device=device, dtype=dtype)
    except Exception as e:
        raise SystemicError(f"{SETTING}: ltx-core could not load the {part.label} from {path} "
                            f"({type(e).__name__}: {e})") from e
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # ltx-core returns the meta model with only a warning; the key check above should make this moot
        raise SystemicError(f"{SETTING}: {path}: ltx-core left {part.label} tensors unloaded: {_listing(left)}")
    return model.eval().requires_grad_(False)


class LtxVaeEncoders:
    """LTX-2 video (bf16) and audio (float32) VAE encoders from one unified LTX-2.3 checkpoint or split VAE files.

    `checkpoint` is the unified checkpoint, or the video VAE file when `audio_checkpoint` names the audio VAE
    file. `checkpoint_sha256` is the file's hex sha256 (unified) or `video:<hex>,audio:<hex>` (split), computed
    on first access. Latents come back on the CPU: video in `video_dtype`, audio always float32. On a CPU
    without bf16 units (`cpu_has_bf16`) the video encoder computes in float32 whatever `video_dtype` is
    (`compute_dtype`): such CPUs run bf16 convolutions over 100x slower. The latents are still stored in
    `video_dtype`.
    """

    def __init__(self, checkpoint: Path, audio_checkpoint: Path | None = None, device: str = "auto",
                 video_dtype: torch.dtype = torch.bfloat16) -> None:
        ltx = import_ltx_core()
        self.checkpoint = Path(checkpoint)
        self.audio_checkpoint = Path(audio_checkpoint) if audio_checkpoint is not None else None
        self.device = torch.device(torch_device(device, SETTING))
        self.video_dtype = video_dtype
        slow_bf16 = self.device.type == "cpu" and video_dtype == torch.bfloat16 and not cpu_has_bf16()
        self.compute_dtype = torch.float32 if slow_bf16 else video_dtype
        self.ltx_core_version = importlib.metadata.version("ltx-core")
        split = self.audio_checkpoint is not None
        self.video_encoder = _bind(self.checkpoint, _video_part(), self.device, self.compute_dtype, split)
        # The audio encoder and its mel front end run in float32 whatever the checkpoint's dtype.
        self.audio_encoder = _bind(self.audio_checkpoint or self.checkpoint, _audio_part(), self.device,
                                   torch.float32, split)
        enc = self.audio_encoder
        self.audio_processor = ltx.model.audio_vae.AudioProcessor(
            target_sample_rate=enc.sample_rate, mel_bins=enc.mel_bins, mel_hop_length=enc.mel_hop_length,
            n_fft=enc.n_fft).to(device=self.device, dtype=torch.float32).eval()
        self.audio_sample_rate: int = int(enc.sample_rate)

    @cached_property
    def checkpoint_sha256(self) -> str:
        """sha256 of the checkpoint: `<hex>` for a unified file, `video:<hex>,audio:<hex>` for split files."""
        if self.audio_checkpoint is None:
            return file_sha256(self.checkpoint)
        return f"video:{file_sha256(self.checkpoint)},audio:{file_sha256(self.audio_checkpoint)}"

    @staticmethod
    def latent_shape(frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Video latent (frames, height, width) for a clip of that size (F = 8k+1, H and W multiples of 32)."""
        return (frames - 1) // TEMPORAL_FACTOR + 1, height // SPATIAL_FACTOR, width // SPATIAL_FACTOR

    def audio_steps(self, num_samples: int, sample_rate: int | None = None) -> int:
        """Audio latent time steps T for `num_samples` at `sample_rate` (default 16 kHz), as the encoder gives:
        mel frames S // hop + 1 (centred STFT), then each stride-2 causal downsampling step."""
        sr = sample_rate or self.audio_sample_rate
        if sr != self.audio_sample_rate:  # torchaudio's resample length
            g = math.gcd(sr, self.audio_sample_rate)
            num_samples = math.ceil(self.audio_sample_rate // g * num_samples / (sr // g))
        enc = self.audio_encoder
        steps = num_samples // enc.mel_hop_length + 1
        pad = 2 if enc.causality_axis.value == "height" else 1  # padding on the time axis (ltx-core Downsample)
        for _ in range(enc.num_resolutions - 1):
            steps = (steps + pad - 3) // 2 + 1
        return steps

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames [B, F, H, W, 3] -> latents [B, 128, (F-1)/8+1, H/32, W/32] in `video_dtype` on the CPU.

        Pixels are scaled as ltx-trainer does (x / 255, then (x - 0.5) / 0.5, in float32) and cast to the
        compute dtype. F must be 8k+1 and H, W multiples of 32."""
        shape = tuple(frames.shape)
        if frames.dtype != torch.uint8 or frames.ndim != 5 or shape[-1] != 3:
            raise ValueError(f"encode_video wants uint8 frames [B, F, H, W, 3]; got {frames.dtype} {list(shape)}")
        _, f, h, w, _ = shape
        if f % TEMPORAL_FACTOR != 1 or h % SPATIAL_FACTOR or w % SPATIAL_FACTOR or h == 0 or w == 0:
            raise ValueError(f"encode_video: frames of shape {list(shape)} do not fit the LTX-2 video VAE: the frame "
                             f"count must be 8k+1 and height and width multiples of 32")
        with torch.no_grad():  # not inference_mode: callers may modify the latents in place
            x = frames.to(self.device).permute(0, 4, 1, 2, 3).to(torch.float32).div(255.0).sub(0.5).div(0.5)
            latents = self.video_encoder(x.to(self.compute_dtype))
        return latents.to(device="cpu", dtype=self.video_dtype)

    def encode_audio(self, waveforms: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """float32 waveforms [B, C, S] (C = 1 is duplicated to stereo, C = 2 kept) at `sample_rate` (resampled to
        16 kHz by ltx-core's AudioProcessor when different) -> float32 latents [B, 8, T, 16] on the CPU."""
        shape = list(waveforms.shape)
        if waveforms.ndim != 3 or shape[1] not in (1, 2) or shape[2] == 0 or not waveforms.is_floating_point():
            raise ValueError(f"encode_audio wants float waveforms [B, C, S] with C in (1, 2); got "
                             f"{waveforms.dtype} {shape}")
        if int(sample_rate) <= 0:
            raise ValueError(f"encode_audio: bad sample rate {sample_rate}")
        from ltx_core.types import Audio

        with torch.no_grad():  # not inference_mode: callers may modify the latents in place
            w = waveforms.to(device=self.device, dtype=torch.float32)
            if w.shape[1] == 1:
                w = w.repeat(1, 2, 1)
            mel = self.audio_processor.waveform_to_mel(Audio(waveform=w, sampling_rate=int(sample_rate)))
            latents = self.audio_encoder(mel.to(torch.float32))
        return latents.to(device="cpu", dtype=torch.float32)
