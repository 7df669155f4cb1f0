"""LTX-2 latents in the shards, the ltx-trainer export and the loader, on a random-weight checkpoint in
the real unified layout (small config: real compression factors and latent channels, few layers).

The build is the shared small one, copied with `encode.backend: ltx` and 64 px targets (latent [128, 16, 2, 2])
so the CPU encodes it in seconds. Random weights give meaningless latents with the real shapes and dtypes."""

from __future__ import annotations

import io
import json
import os
import wave
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from ltxa_data.errors import SystemicError
from ltxa_data.ltx.encode import in_batches
from ltxa_data.recipe import Recipe, RecipeError
from ltxa_data.storage import file_sha256, read_frame

from .conftest import SIZE

REF_SAMPLES = 56_000


def _samples(recipe: Recipe) -> dict[str, dict[str, bytes]]:
    from ltxa_data.shard_format import read_shard

    out = {}
    for tar in sorted((recipe.output_dir / "shards").glob("*/*.tar")):
        for key, s in read_shard(tar).items():
            out[key] = {ext: data for ext, data in s["files"].values()}
    return out


def _load(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def test_latent_shards_have_the_trainer_format_and_verify(encoded: Recipe, checkpoint: Path) -> None:
    from ltxa_data.reporting.verify import verify_build

    samples = _samples(encoded)
    pairs = read_frame(encoded.manifests_dir, "pairs", ok_only=True)
    assert sorted(samples) == sorted(pairs["key"].to_list()) and samples
    for s in samples.values():
        video, audio = _load(s["latents.pth"]), _load(s["audio_latents.pth"])
        refs = _load(s["reference_audio_latents.pth"])
        assert video["latents"].dtype == torch.bfloat16 and tuple(video["latents"].shape) == (128, 16, 2, 2)
        assert (video["num_frames"], video["height"], video["width"], video["fps"]) == (16, 2, 2, 25.0)
        assert audio["latents"].dtype == torch.float32 and tuple(audio["latents"].shape) == (8, 122, 16)
        assert (audio["num_time_steps"], audio["frequency_bins"], audio["duration"]) == (122, 16, 4.84)
        assert refs["latents"].dtype == torch.float32 and tuple(refs["latents"].shape) == (1, 8, 88, 16)
        assert refs["variants"] == 1 and refs["num_time_steps"] == 88 and refs["duration"] == 3.5
        meta = json.loads(s["json"])["latents"]
        assert meta["checkpoint_sha256"] == file_sha256(checkpoint) and meta["ltx_core_version"] == "1.0.0"
        assert (meta["video_dtype"], meta["audio_dtype"]) == ("bfloat16", "float32")
        assert {"mp4", "wav", "ref0.wav"} <= s.keys(), "media are kept beside the latents by default"
    assert verify_build(encoded) == []


def _wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, w.getnchannels())
    return (pcm.T.astype(np.float32) / 32768.0).copy()


def test_the_reference_latent_equals_ltx_core_on_the_same_waveform(encoded: Recipe, checkpoint: Path) -> None:
    """The stage adds nothing to ltx-core: its reference latent is exactly ltx-core's AudioProcessor +
    AudioEncoder (built by hand, float32) on the reference waveform the stage encoded."""
    from ltx_core.loader import SingleGPUModelBuilder
    from ltx_core.model.audio_vae import AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER, AudioEncoderConfigurator, AudioProcessor
    from ltx_core.types import Audio

    cpu = torch.device("cpu")
    enc = SingleGPUModelBuilder(model_class_configurator=AudioEncoderConfigurator, model_path=str(checkpoint),
                                model_sd_ops=AUDIO_VAE_ENCODER_COMFY_KEYS_FILTER).build(device=cpu, dtype=torch.float32)
    proc = AudioProcessor(target_sample_rate=enc.sample_rate, mel_bins=enc.mel_bins,
                          mel_hop_length=enc.mel_hop_length, n_fft=enc.n_fft)
    key, s = sorted(_samples(encoded).items())[0]
    # The shard's wav is 16-bit; the stage encoded the float waveform it cut. Cut it again the same way.
    from ltxa_data.stages.shard import cut_sample, sample_rows
    from ltxa_data.storage import read_frame as rf

    tables = {n: rf(encoded.manifests_dir, n) for n in ("videos", "targets", "references", "pairs")}
    sample = next(x for x in sample_rows(tables) if x["key"] == key)
    cut = cut_sample(sample, SIZE, "black")
    with torch.inference_mode():
        direct = enc(proc.waveform_to_mel(Audio(waveform=torch.from_numpy(cut.references[0])[None],
                                                sampling_rate=16000)))
    stored = _load(s["reference_audio_latents.pth"])["latents"]
    assert torch.equal(stored[0], direct[0])
    assert np.abs(_wav(s["ref0.wav"]) - cut.references[0]).max() < 1e-3, "the shard's wav is that waveform"


def test_out_of_memory_halves_the_batch_and_gives_the_same_result() -> None:
    calls: list[int] = []

    def fn(batch: list[int]) -> list[int]:
        calls.append(len(batch))
        if len(batch) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]

    shrunk: list[int] = []
    assert in_batches(fn, list(range(7)), 8, shrunk.append) == [x * 10 for x in range(7)]
    assert calls == [7, 3, 3, 1] and shrunk == [3], "halved once, and later batches keep the smaller size"

    def always(batch: list[int]) -> list[int]:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        in_batches(always, [1, 2, 3], 4)
    with pytest.raises(ValueError, match="boom"):
        in_batches(lambda b: (_ for _ in ()).throw(ValueError("boom")), [1, 2], 2)


def test_export_has_the_trainer_layout_and_reads_back(encoded: Recipe, conditions: Path, tmp_path: Path) -> None:
    from ltxa_data.cli import main
    from ltxa_data.ltx.export import precomputed_samples

    out = tmp_path / "export"
    assert main(["export", "ltx-trainer", str(out), "--recipe", str(encoded.base_dir / "recipe.yaml")]) == 0
    pairs = read_frame(encoded.manifests_dir, "pairs", ok_only=True)
    for split, keys in pairs.group_by("split"):
        root = out / split[0] / ".precomputed"
        for folder in ("latents", "audio_latents", "reference_audio_latents", "conditions"):
            assert sorted(p.stem for p in (root / folder).glob("*.pt")) == sorted(keys["key"].to_list()), folder
        link = root / "conditions" / f"{keys['key'][0]}.pt"
        assert link.is_symlink() and os.readlink(link) == "../caption_conditions.pt", "relative: OUT can move"
        assert link.read_bytes() == conditions.read_bytes()
        got = precomputed_samples(out / split[0])
        assert len(got) == keys.height
        for s in got:
            assert s["latents"]["latents"].dtype == torch.bfloat16
            assert tuple(s["reference_audio_latents"]["latents"].shape) == (8, 88, 16), "first: the upstream shape"
            assert "variants" not in s["reference_audio_latents"]
            assert s["conditions"]["prompt_attention_mask"].dtype == torch.int64
    stacked = tmp_path / "stacked"
    assert main(["export", "ltx-trainer", str(stacked), "--recipe", str(encoded.base_dir / "recipe.yaml"),
                 "--references", "stack", "--split", "train"]) == 0
    assert sorted(os.listdir(stacked)) == ["export.json", "train"]
    ref = precomputed_samples(stacked / "train")[0]["reference_audio_latents"]
    assert tuple(ref["latents"].shape) == (1, 8, 88, 16) and ref["variants"] == 1
    expanded = tmp_path / "expanded"
    assert main(["export", "ltx-trainer", str(expanded), "--recipe", str(encoded.base_dir / "recipe.yaml"),
                 "--references", "expand", "--split", "train"]) == 0
    train = pairs.filter(pl.col("split") == "train")["key"].to_list()
    latents = expanded / "train" / ".precomputed" / "latents"
    assert sorted(p.stem for p in latents.glob("*.pt")) == sorted(f"{k}_r0" for k in train), "K = 1: one key each"
    assert len(precomputed_samples(expanded / "train")) == len(train)


def test_expanded_references_are_keys_of_their_own(tmp_path: Path) -> None:
    """K = 2 with `expand`: two keys; the second's video and audio latents link to the first's files;
    an earlier export's files of another mode are removed."""
    from ltxa_data.ltx.encode import audio_latent_dict, saved_bytes, video_latent_dict
    from ltxa_data.ltx.export import FOLDERS, _export_sample, precomputed_samples

    root = tmp_path / "train" / ".precomputed"
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True)
    torch.save({"video_prompt_embeds": torch.zeros(1), "audio_prompt_embeds": torch.zeros(1),
                "prompt_attention_mask": torch.ones(1)}, root / "caption_conditions.pt")
    stack = torch.randn(2, 8, 88, 16)
    members = {"latents.pth": saved_bytes(video_latent_dict(torch.randn(128, 16, 2, 2).bfloat16())),
               "audio_latents.pth": saved_bytes(audio_latent_dict(torch.randn(8, 122, 16), 4.84)),
               "reference_audio_latents.pth": saved_bytes(audio_latent_dict(stack, 3.5))}
    assert _export_sample(root, "k", members, "expand", tmp_path / "x.tar") == ["k_r0", "k_r1"]
    assert os.readlink(root / "latents" / "k_r1.pt") == "k_r0.pt"
    got = precomputed_samples(tmp_path / "train")
    assert len(got) == 2 and all("variants" not in g["reference_audio_latents"] for g in got)
    assert torch.equal(got[1]["reference_audio_latents"]["latents"], stack[1])
    assert torch.equal(got[0]["latents"]["latents"], got[1]["latents"]["latents"])


def test_export_refuses_bad_conditions_and_media_only_builds(encoded: Recipe, built: Recipe, tmp_path: Path) -> None:
    from ltxa_data.ltx.export import export_ltx_trainer

    bad = tmp_path / "bad.pt"
    torch.save({"video_prompt_embeds": torch.zeros(2)}, bad)
    with pytest.raises(SystemicError, match=r"bad.pt lacks the tensors audio_prompt_embeds, prompt_attention_mask"):
        export_ltx_trainer(encoded, tmp_path / "o", conditions=bad)
    with pytest.raises(SystemicError, match="does not exist"):
        export_ltx_trainer(encoded, tmp_path / "o", conditions=tmp_path / "none.pt")
    good = Path(encoded.resolve(encoded.export.conditions))
    with pytest.raises(SystemicError, match=r"encode\.backend: ltx"):
        export_ltx_trainer(built, tmp_path / "o2", conditions=good)


def test_loader_feeds_a_dataloader_with_two_workers_and_resumes(encoded: Recipe, conditions: Path) -> None:
    from ltxa_data.ltx.loader import latent_loader

    def run(start: int = 0, epoch: int = 0) -> list[list[str]]:
        loader = latent_loader(encoded, "train", batch_size=2, num_workers=2, seed=3, epoch=epoch,
                               start_step=start, conditions=conditions, references="first")
        out = []
        for batch in loader:
            assert batch["video_latents"]["latents"].shape == (2, 128, 16, 2, 2)
            assert batch["video_latents"]["latents"].dtype == torch.bfloat16
            assert batch["audio_latents"]["latents"].dtype == torch.float32
            assert batch["reference_audio_latents"]["latents"].shape == (2, 8, 88, 16)
            assert batch["conditions"]["video_prompt_embeds"].shape == (2, 1024, 64)
            assert [m["key"] for m in batch["meta"]] == batch["key"]
            out.append(batch["key"])
        return out

    train = read_frame(encoded.manifests_dir, "pairs", ok_only=True).filter(pl.col("split") == "train")
    full = run()
    keys = [k for b in full for k in b]
    assert len(keys) == len(set(keys)) and set(keys) <= set(train["key"].to_list())
    assert len(keys) >= train.height - 2 * 2, "at most a batch per worker is dropped"
    assert run() == full, "deterministic"
    assert run(start=1) == full[1:] and run(start=3) == full[3:], "resumes at the step"
    other = run(epoch=1)
    other_keys = [k for b in other for k in b]
    assert len(other_keys) == len(keys) and len(set(other_keys)) == len(other_keys)
    assert set(other_keys) <= set(train["key"].to_list())
    assert other_keys != keys, "each epoch reshuffles"


def test_an_ltx_recipe_without_a_usable_checkpoint_is_refused_before_work(tmp_path: Path) -> None:
    from ltxa_data.backends import backend_problems
    from ltxa_data.recipe import parse_recipe

    def problems(**encode: object) -> list[str]:
        return backend_problems(parse_recipe({"name": "e", "input": {"paths": ["."]}, "output": {"dir": "out"},
                                              "encode": {"backend": "ltx", **encode}}, base_dir=tmp_path))

    with pytest.raises(RecipeError, match=r"encode\.backend ltx needs encode\.checkpoint"):
        problems()
    assert any("does not exist" in p for p in problems(checkpoint="missing.safetensors"))
    (tmp_path / "x.safetensors").write_bytes(b"not a safetensors file")
    assert any("is not a safetensors file" in p for p in problems(checkpoint="x.safetensors"))


def test_encoder_scheduling_settings_do_not_invalidate_finished_shards(tmp_path: Path) -> None:
    from ltxa_data.recipe import parse_recipe

    def shard_hash(**encode: object) -> str:
        encode = {"backend": "ltx", "checkpoint": "a.safetensors", **encode}
        recipe = parse_recipe({"name": "e", "input": {"paths": ["."]}, "output": {"dir": "out"}, "encode": encode},
                              base_dir=tmp_path)
        return recipe.section_hash("shard", "targets", "encode")

    base = shard_hash()
    assert shard_hash(batch_size=16, decode_threads=8, prefetch_batches=4) == base
    assert shard_hash(checkpoint="b.safetensors") != base and shard_hash(keep_media=False) != base
