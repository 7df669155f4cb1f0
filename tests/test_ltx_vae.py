"""The LTX-2 VAE encode backend (ltx-core 1.0.0) on random-weight checkpoints written in the real unified
LTX-2.3 layout: latent shapes and dtypes, exact agreement with ltx-core called directly, audio input handling,
split VAE files, and loud failures on checkpoints that do not bind."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch

from ltxa_data.backends.ltx_vae import LtxVaeEncoders, read_ltx_config
from ltxa_data.errors import SystemicError
from ltxa_data.memory import cpu_has_bf16

from .fixtures.random_ltx import write_random_ltx_checkpoint, write_safetensors, write_split_ltx_vaes

SR = 16000
TARGET = 77_440  # 121 frames at 25 fps = 4.84 s at 16 kHz
REFERENCE = 56_000  # 3.5 s


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random-weight unified checkpoint, bf16 like the release."""
    return write_random_ltx_checkpoint(tmp_path_factory.mktemp("ltx") / "ltx-2.3-random.safetensors")


@pytest.fixture(scope="module")
def enc(ckpt: Path) -> LtxVaeEncoders:
    return LtxVaeEncoders(ckpt, device="cpu")


def frames(b: int, f: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (b, f, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def waves(b: int, c: int, n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, c, n, generator=torch.Generator().manual_seed(seed)) * 0.1


def tensors_of(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()["config"])  # noqa: SIM118


def test_latent_shapes_and_dtypes(enc: LtxVaeEncoders) -> None:
    assert enc.device == torch.device("cpu") and enc.audio_sample_rate == SR and enc.ltx_core_version == "1.0.0"
    z = enc.encode_video(frames(1, 121, 64, 64))
    assert z.shape == (1, 128, 16, 2, 2) and z.dtype == torch.bfloat16 and z.device.type == "cpu"
    assert torch.isfinite(z.float()).all()
    z.mul_(1)  # ordinary tensors, not inference-mode ones: the encode stage may edit them in place
    z = enc.encode_video(frames(2, 9, 64, 96))
    assert z.shape == (2, 128, 2, 2, 3) and enc.latent_shape(9, 64, 96) == (2, 2, 3)
    assert enc.latent_shape(121, 512, 512) == (16, 16, 16)
    # T as the encoder gives it: S // 160 + 1 mel frames, then two causal stride-2 steps: ceil(ceil(m / 2) / 2).
    for n, t in ((TARGET, 122), (REFERENCE, 88)):
        a = enc.encode_audio(waves(2, 2, n), SR)
        assert a.shape == (2, 8, t, 16) and a.dtype == torch.float32 and a.device.type == "cpu"
        assert enc.audio_steps(n) == t
    assert enc.audio_steps(3 * TARGET, 48000) == 122


def test_audio_runs_in_float32_from_a_bf16_checkpoint(enc: LtxVaeEncoders, ckpt: Path) -> None:
    assert {t.dtype for t in tensors_of(ckpt)[0].values()} == {torch.bfloat16}
    assert {p.dtype for p in enc.audio_encoder.state_dict().values()} == {torch.float32}
    assert {b.dtype for b in enc.audio_processor.buffers()} == {torch.float32}
    # A CPU without bf16 units computes the video encoder in float32; its latents are stored in bf16 either way.
    compute = torch.bfloat16 if cpu_has_bf16() else torch.float32
    assert {p.dtype for p in enc.video_encoder.state_dict().values()} == {compute}
    assert enc.compute_dtype == compute and enc.video_dtype == torch.bfloat16


def test_mono_is_duplicated_and_other_rates_resampled(enc: LtxVaeEncoders) -> None:
    import torchaudio

    mono = waves(1, 1, TARGET, seed=1)
    assert torch.equal(enc.encode_audio(mono, SR), enc.encode_audio(mono.repeat(1, 2, 1), SR))
    w48 = waves(1, 2, 3 * TARGET, seed=2)
    z48 = enc.encode_audio(w48, 48000)
    assert z48.shape == (1, 8, 122, 16)
    assert torch.equal(z48, enc.encode_audio(torchaudio.functional.resample(w48, 48000, SR), SR))


def test_latents_equal_ltx_core_called_directly(enc: LtxVaeEncoders, ckpt: Path) -> None:
    """The backend adds nothing to ltx-core: same builder, filters, mel front end and pixel scaling
    (ltx-trainer's: x / 255, then Normalize(0.5, 0.5), in float32, then the VAE dtype)."""
    from ltx_core.loader import SingleGPUModelBuilder
    from ltx_core.model.audio_vae import AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER, AudioEncoderConfigurator, AudioProcessor
    from ltx_core.model.video_vae import VAE_ENCODER_COMFY_KEYS_FILTER, VideoEncoderConfigurator
    from ltx_core.types import Audio

    cpu = torch.device("cpu")
    audio = SingleGPUModelBuilder(model_class_configurator=AudioEncoderConfigurator, model_path=str(ckpt),
                                  model_sd_ops=AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER).build(device=cpu,
                                                                                          dtype=torch.float32)
    proc = AudioProcessor(target_sample_rate=audio.sample_rate, mel_bins=audio.mel_bins,
                          mel_hop_length=audio.mel_hop_length, n_fft=audio.n_fft)
    w = waves(1, 2, TARGET, seed=3)
    with torch.inference_mode():
        ref = audio(proc.waveform_to_mel(Audio(waveform=w, sampling_rate=SR)))
    assert torch.equal(enc.encode_audio(w, SR), ref)

    video = SingleGPUModelBuilder(model_class_configurator=VideoEncoderConfigurator, model_path=str(ckpt),
                                  model_sd_ops=VAE_ENCODER_COMFY_KEYS_FILTER).build(device=cpu,
                                                                                    dtype=enc.compute_dtype)
    x = frames(1, 17, 64, 64, seed=4)
    pixels = (x.permute(0, 4, 1, 2, 3).float() / 255 - 0.5) / 0.5
    assert pixels.min() == -1 and pixels.max() == 1
    with torch.inference_mode():  # computed in the CPU's dtype, stored in the trainer's bf16
        ref = video(pixels.to(enc.compute_dtype)).to(torch.bfloat16)
    assert torch.equal(enc.encode_video(x), ref)


@pytest.mark.parametrize("bare", [False, True], ids=["prefixed", "bare"])
def test_split_vae_files(enc: LtxVaeEncoders, ckpt: Path, tmp_path: Path, bare: bool) -> None:
    video, audio = write_split_ltx_vaes(ckpt, tmp_path / "video_vae.safetensors", tmp_path / "audio_vae.safetensors",
                                        bare=bare)
    split = LtxVaeEncoders(video, audio, device="cpu")
    x, w = frames(1, 9, 64, 64), waves(1, 2, REFERENCE)
    assert torch.equal(split.encode_video(x), enc.encode_video(x))
    assert torch.equal(split.encode_audio(w, SR), enc.encode_audio(w, SR))
    sha = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (video, audio)}
    assert split.checkpoint_sha256 == f"video:{sha[video]},audio:{sha[audio]}"
    with pytest.raises(SystemicError, match=f"{re.escape(str(audio))}.*no 'vae' section"):
        LtxVaeEncoders(audio, video, device="cpu")  # swapped


def test_checkpoint_sha256(enc: LtxVaeEncoders, ckpt: Path) -> None:
    assert enc.checkpoint_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()


@pytest.mark.parametrize("key", ["vae.encoder.down_blocks.4.res_blocks.0.conv1.conv.weight",
                                 "audio_vae.per_channel_statistics.std-of-means"])
def test_a_missing_key_is_named(ckpt: Path, tmp_path: Path, key: str) -> None:
    tensors, config = tensors_of(ckpt)
    del tensors[key]
    bad = write_safetensors(tmp_path / "missing.safetensors", tensors, config)
    with pytest.raises(SystemicError, match=rf"{re.escape(str(bad))}.*missing keys 1 \({key}\)"):
        LtxVaeEncoders(bad, device="cpu")


@pytest.mark.parametrize("key", ["vae.encoder.bogus.weight", "audio_vae.per_channel_statistics.bogus"])
def test_an_unexpected_key_is_named(ckpt: Path, tmp_path: Path, key: str) -> None:
    """Only the unused statistics real checkpoints carry (vae.per_channel_statistics.channel, ...) pass."""
    tensors, config = tensors_of(ckpt)
    assert "vae.per_channel_statistics.mean-of-stds" in tensors
    tensors[key] = torch.zeros(3)
    bad = write_safetensors(tmp_path / "extra.safetensors", tensors, config)
    with pytest.raises(SystemicError, match=rf"{re.escape(str(bad))}.*unexpected keys 1 \({re.escape(key)}\)"):
        LtxVaeEncoders(bad, device="cpu")


def test_a_wrong_config_or_shape_fails(ckpt: Path, tmp_path: Path) -> None:
    tensors, config = tensors_of(ckpt)
    config["vae"]["encoder_blocks"][-1][1]["num_layers"] = 2  # the config wants a block the file lacks
    bad = write_safetensors(tmp_path / "config.safetensors", tensors, config)
    with pytest.raises(SystemicError, match=r"missing keys 4 \(vae.encoder.down_blocks.4.res_blocks.1"):
        LtxVaeEncoders(bad, device="cpu")
    tensors, config = tensors_of(ckpt)
    tensors["vae.encoder.conv_out.conv.bias"] = torch.zeros(7)
    bad = write_safetensors(tmp_path / "shape.safetensors", tensors, config)
    with pytest.raises(SystemicError, match=r"wrong shape.*vae.encoder.conv_out.conv.bias \(7,\)"):
        LtxVaeEncoders(bad, device="cpu")


def test_files_that_are_not_ltx_checkpoints(ckpt: Path, tmp_path: Path) -> None:
    tensors, config = tensors_of(ckpt)
    cases = {
        "no-config": (write_safetensors(tmp_path / "no-config.safetensors", tensors, None), "no 'config' entry"),
        "no-vae": (write_safetensors(tmp_path / "no-vae.safetensors",
                                     {k: v for k, v in tensors.items() if not k.startswith("vae.")}, config),
                   "holds no video VAE encoder weights: expected keys vae.encoder"),
        "no-section": (write_safetensors(tmp_path / "no-section.safetensors", tensors, {"transformer": {}}),
                       "no 'vae' section"),
        "missing": (tmp_path / "nowhere.safetensors", "does not exist"),
    }
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    cases["junk"] = (tmp_path / "junk.safetensors", "not a safetensors file")
    for path, message in cases.values():
        with pytest.raises(SystemicError, match=f"{re.escape(str(path))}.*{message}"):
            LtxVaeEncoders(path, device="cpu")
    with pytest.raises(SystemicError, match="no 'config' entry"):
        read_ltx_config(cases["no-config"][0])
    assert set(read_ltx_config(ckpt)) == {"vae", "audio_vae"}


def test_bad_inputs_are_value_errors(enc: LtxVaeEncoders) -> None:
    for shape in ((1, 120, 64, 64, 3), (1, 121, 48, 64, 3), (1, 121, 64, 64, 4), (121, 64, 64, 3)):
        with pytest.raises(ValueError, match=str(list(shape)).replace("[", r"\[").replace("]", r"\]")):
            enc.encode_video(torch.zeros(shape, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        enc.encode_video(torch.zeros(1, 9, 64, 64, 3))
    with pytest.raises(ValueError, match=r"\[1, 3, 100\]"):
        enc.encode_audio(torch.zeros(1, 3, 100), SR)
    with pytest.raises(ValueError, match="sample rate"):
        enc.encode_audio(torch.zeros(1, 2, 100), 0)


def test_cuda_without_a_gpu_is_refused(ckpt: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemicError, match="no CUDA device"):
        LtxVaeEncoders(ckpt, device="cuda")
    assert LtxVaeEncoders(ckpt).device.type == "cpu"  # auto


@pytest.mark.gpu
def test_gpu_agrees_with_cpu(enc: LtxVaeEncoders, ckpt: Path) -> None:
    gpu = LtxVaeEncoders(ckpt, device="cuda")
    assert gpu.device.type == "cuda"
    x, w = frames(1, 121, 128, 128), waves(2, 2, TARGET)
    zc, zg = enc.encode_video(x).float(), gpu.encode_video(x)
    assert zg.dtype == torch.bfloat16 and zg.device.type == "cpu"
    assert (zg.float() - zc).abs().max() <= 0.05 * zc.abs().max()
    ac, ag = enc.encode_audio(w, SR), gpu.encode_audio(w, SR)
    assert ag.dtype == torch.float32 and ag.shape == ac.shape
    torch.testing.assert_close(ag, ac, rtol=1e-3, atol=1e-3)


def test_a_cpu_without_bf16_units_computes_in_float32_and_stores_bf16(ckpt: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import ltxa_data.backends.ltx_vae as ltx_vae

    monkeypatch.setattr(ltx_vae, "cpu_has_bf16", lambda: False)
    enc = LtxVaeEncoders(ckpt, device="cpu")
    assert enc.compute_dtype == torch.float32 and enc.video_dtype == torch.bfloat16
    assert {p.dtype for p in enc.video_encoder.state_dict().values()} == {torch.float32}
    z = enc.encode_video(frames(1, 9, 64, 64))
    assert z.dtype == torch.bfloat16 and torch.isfinite(z.float()).all()
    monkeypatch.setattr(ltx_vae, "cpu_has_bf16", lambda: True)
    assert LtxVaeEncoders(ckpt, device="cpu").compute_dtype == torch.bfloat16
