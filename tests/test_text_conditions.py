"""The caption's conditions computed with ltx-core's text encoder (`export.text_encoder`), on a tiny random-weight
Gemma 3 folder in the real layout (`fixtures/random_gemma.py`) and an LTX checkpoint with the text projection and
connectors for it (`write_random_ltx_checkpoint(text_gemma=...)`). ltx-core 1.0.0 builds Gemma from a constant
(the 12B architecture); `use_tiny_gemma` sets that constant to the tiny one for each test. Random weights: the
embeddings mean nothing; keys, shapes, dtypes and the code that computes them are real."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from ltxa_data.errors import SystemicError
from ltxa_data.recipe import Recipe, RecipeError, parse_recipe

from .conftest import SIZE, copy_build
from .fixtures.random_gemma import TINY_TEXT, use_tiny_gemma, write_random_gemma
from .fixtures.random_ltx import SMALL_TEXT_CONFIG, write_random_ltx_checkpoint

CAPTION = "A person talking to the camera."
VIDEO_WIDTH = SMALL_TEXT_CONFIG["num_attention_heads"] * SMALL_TEXT_CONFIG["attention_head_dim"]
AUDIO_WIDTH = SMALL_TEXT_CONFIG["audio_num_attention_heads"] * SMALL_TEXT_CONFIG["audio_attention_head_dim"]


@pytest.fixture(autouse=True)
def _tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    use_tiny_gemma(monkeypatch)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_gemma(tmp_path_factory.mktemp("gemma") / "gemma-3-tiny")


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_ltx_checkpoint(tmp_path_factory.mktemp("ltx-text") / "ltx-2.3-text.safetensors",
                                       text_gemma=(TINY_TEXT["hidden_size"], TINY_TEXT["num_hidden_layers"]))


def _recipe(folder: Path, **export: Any) -> Recipe:
    data = {"name": "t", "input": {"paths": [str(folder / "in")]}, "output": {"dir": "out"}, "export": export}
    return parse_recipe(data, base_dir=folder)


def _reference(gemma: Path, ltx: Path, caption: str) -> dict[str, torch.Tensor]:
    """process_captions.py's steps on models loaded independently of our backend: Gemma by transformers' own
    `from_pretrained` wrapped in ltx-core's GemmaTextEncoder and tokenizer, the feature extractor by ltx-core's
    builder exactly as ltx-trainer's `load_embeddings_processor`."""
    from ltx_core.loader import SingleGPUModelBuilder
    from ltx_core.text_encoders.gemma import (
        EMBEDDINGS_PROCESSOR_KEY_OPS,
        EmbeddingsProcessorConfigurator,
        GemmaTextEncoder,
    )
    from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer
    from transformers import Gemma3ForConditionalGeneration

    model = Gemma3ForConditionalGeneration.from_pretrained(str(gemma), dtype=torch.bfloat16, local_files_only=True)
    text_encoder = GemmaTextEncoder(model=model.eval(), tokenizer=LTXVGemmaTokenizer(str(gemma), 1024))
    processor = SingleGPUModelBuilder(
        model_path=str(ltx), model_class_configurator=EmbeddingsProcessorConfigurator,
        model_sd_ops=EMBEDDINGS_PROCESSOR_KEY_OPS).build(device=torch.device("cpu"), dtype=torch.bfloat16)
    with torch.inference_mode():
        hidden_states, mask = text_encoder.encode(caption, padding_side="left")
        video, audio = processor.feature_extractor(hidden_states, mask, "left")
    return {"video_prompt_embeds": video[0], "audio_prompt_embeds": audio[0], "prompt_attention_mask": mask[0]}


def test_conditions_have_the_trainer_format_and_equal_ltx_core(gemma: Path, text_checkpoint: Path) -> None:
    from ltxa_data.backends.text_encoder import LtxTextEncoder
    from ltxa_data.ltx.conditions import CONDITION_KEYS

    got = LtxTextEncoder(gemma, text_checkpoint, "cpu").encode(CAPTION)
    assert tuple(got) == CONDITION_KEYS
    assert got["video_prompt_embeds"].shape == (1024, VIDEO_WIDTH)
    assert got["audio_prompt_embeds"].shape == (1024, AUDIO_WIDTH)
    assert got["prompt_attention_mask"].shape == (1024,)
    assert [t.dtype for t in got.values()] == [torch.bfloat16, torch.bfloat16, torch.int64]
    assert all(t.device.type == "cpu" for t in got.values())
    mask = got["prompt_attention_mask"]
    n = int(mask.sum())
    assert 2 < n < 40 and mask[-n:].all() and not mask[:-n].any(), "left padding: the caption's tokens come last"
    padded = got["video_prompt_embeds"][:-n]
    assert (padded == padded[0]).all(), "padded positions are zeroed before the projection (its bias is left)"
    ref = _reference(gemma, text_checkpoint, CAPTION)
    for key in CONDITION_KEYS:
        assert torch.equal(got[key], ref[key]), f"{key} differs from ltx-core's own encode + feature extractor"


def test_ltx_core_own_gemma_ops_need_the_port_on_this_transformers() -> None:
    """Why the backend carries ltx-core 1.2.0's Gemma 3 key map and buffer op: on transformers >= 5.8 ltx-core
    1.0.0's own module op fails (the SigLIP tower has no `.vision_model`)."""
    from ltx_core.text_encoders.gemma import GEMMA_MODEL_OPS

    from ltxa_data.backends.text_encoder import _flat_vision, _meta_gemma

    meta = _meta_gemma()
    if not _flat_vision(meta):
        pytest.skip("transformers < 5.8: ltx-core's own Gemma ops are used")
    with pytest.raises(AttributeError, match="vision_model"):
        GEMMA_MODEL_OPS.mutator(meta)


def test_conditions_are_cached_per_caption(gemma: Path, text_checkpoint: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import ltxa_data.backends.text_encoder as backend
    from ltxa_data.ltx.conditions import caption_conditions

    loads: list[Path] = []
    real = backend.LtxTextEncoder

    def counted(*args: Any, **kwargs: Any) -> Any:
        loads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(backend, "LtxTextEncoder", counted)
    recipe = _recipe(tmp_path, text_encoder=str(gemma), text_checkpoint=str(text_checkpoint), text_encoder_device="cpu")
    first = caption_conditions(recipe)
    assert first.parent == recipe.output_dir / ".cache" / "conditions" and len(loads) == 1
    saved = torch.load(first, weights_only=True)
    direct = real(gemma, text_checkpoint, "cpu").encode(CAPTION)
    assert all(torch.equal(saved[k], direct[k]) for k in direct), "the stage adds nothing to ltx-core's output"
    what = json.loads(first.with_suffix(".json").read_text())
    assert what["caption"] == CAPTION and set(what["text_encoder"]) >= {"config.json", "tokenizer.model"}
    assert what["ltx_core"] == "1.0.0" and len(what["ltx_checkpoint_sha256"]) == 64

    assert caption_conditions(recipe) == first and len(loads) == 1, "a second call loads no model"
    other = caption_conditions(_recipe(tmp_path, caption="Someone speaks.", text_encoder=str(gemma),
                                       text_checkpoint=str(text_checkpoint), text_encoder_device="cpu"))
    assert other != first and len(loads) == 2, "another caption is computed"
    other_mask = torch.load(other, weights_only=True)["prompt_attention_mask"]
    assert not torch.equal(other_mask, saved["prompt_attention_mask"])


def _copy(gemma: Path, dest: Path) -> Path:
    return Path(shutil.copytree(gemma, dest))


def _rename_key(shard: Path, old: str, new: str) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(shard))
    tensors[new] = tensors.pop(old)
    save_file(tensors, str(shard), metadata={"format": "pt"})


def test_a_wrong_text_encoder_is_refused_naming_the_problem(gemma: Path, text_checkpoint: Path, checkpoint: Path,
                                                            tmp_path: Path) -> None:
    from ltxa_data.backends.text_encoder import check_text_encoder

    with pytest.raises(SystemicError, match=r"folder .*nowhere does not exist"):
        check_text_encoder(tmp_path / "nowhere", text_checkpoint)

    no_tok = _copy(gemma, tmp_path / "no-tokenizer")
    (no_tok / "tokenizer.model").unlink()
    with pytest.raises(SystemicError, match=r"no-tokenizer is incomplete; missing tokenizer.model"):
        check_text_encoder(no_tok, text_checkpoint)

    bad_tok = _copy(gemma, tmp_path / "bad-tokenizer")
    (bad_tok / "tokenizer.json").write_text("{not json")
    with pytest.raises(SystemicError, match=r"the tokenizer in .*bad-tokenizer"):
        check_text_encoder(bad_tok, text_checkpoint)

    no_shard = _copy(gemma, tmp_path / "no-shard")
    (no_shard / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(SystemicError, match=r"missing model-00002-of-00002.safetensors \(listed in "
                                            r"model.safetensors.index.json\)"):
        check_text_encoder(no_shard, text_checkpoint)

    bad_keys = _copy(gemma, tmp_path / "bad-keys")
    shard = bad_keys / "model-00001-of-00002.safetensors"
    from safetensors import safe_open

    with safe_open(str(shard), framework="pt") as f:
        key = next(k for k in f.keys() if k.startswith("language_model.model.layers.0."))  # noqa: SIM118
    renamed = key.replace("language_model.model.", "language_model.model.extra.")
    _rename_key(shard, key, renamed)
    as_ltx_core_names_it = "model.model.language_model." + key.removeprefix("language_model.model.")
    with pytest.raises(SystemicError, match=rf"bad-keys do not fit .*missing keys .*1 "
                                            rf"\({re.escape(as_ltx_core_names_it)}\).*unexpected keys 1 "
                                            rf"\({re.escape(renamed)}\)"):
        check_text_encoder(bad_keys, text_checkpoint)

    other_size = _copy(gemma, tmp_path / "other-size")
    config = json.loads((other_size / "config.json").read_text())
    config["text_config"]["hidden_size"] = 64
    (other_size / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemicError, match=r"another Gemma 3 .*hidden_size 64 \(ltx-core builds 32\)"):
        check_text_encoder(other_size, text_checkpoint)

    with pytest.raises(SystemicError, match=r"has no 'transformer' section .*text projection"):
        check_text_encoder(gemma, checkpoint)  # the VAE-only test checkpoint: no text side


def test_build_preflight_and_export_refuse_a_bad_text_encoder_before_any_work(encoded: Recipe, tmp_path: Path,
                                                                              text_checkpoint: Path) -> None:
    from ltxa_data.ltx.export import export_ltx_trainer
    from ltxa_data.pipeline import preflight

    missing = tmp_path / "gemma-missing"
    recipe = copy_build(encoded, tmp_path / "b", targets={"size": SIZE},
                        encode={"backend": "ltx", "checkpoint": encoded.encode.checkpoint, "device": "cpu"},
                        export={"text_encoder": str(missing), "text_checkpoint": str(text_checkpoint)})
    with pytest.raises(RecipeError, match=r"gemma-missing does not exist"):
        preflight(recipe)
    out = tmp_path / "export"
    with pytest.raises(SystemicError, match=r"gemma-missing does not exist"):
        export_ltx_trainer(recipe, out)
    assert not out.exists(), "nothing written"
    with pytest.raises(RecipeError, match=r"export.conditions .* and export.text_encoder .* are both set"):
        _recipe(tmp_path, conditions="c.pt", text_encoder="g")


def test_export_computes_the_conditions_from_the_text_encoder(encoded: Recipe, gemma: Path,
                                                              text_checkpoint: Path, tmp_path: Path) -> None:
    from ltxa_data.backends.text_encoder import LtxTextEncoder
    from ltxa_data.cli import main
    from ltxa_data.ltx.export import precomputed_samples

    recipe = copy_build(encoded, tmp_path / "b", targets={"size": SIZE},
                        encode={"backend": "ltx", "checkpoint": encoded.encode.checkpoint, "device": "cpu"},
                        export={"text_encoder": str(gemma), "text_checkpoint": str(text_checkpoint),
                                "text_encoder_device": "cpu"})
    assert recipe.export.conditions is None
    out = tmp_path / "export"
    assert main(["export", "ltx-trainer", str(out), "--recipe", str(recipe.base_dir / "recipe.yaml")]) == 0
    cached = json.loads((out / "export.json").read_text())["conditions"]
    assert Path(cached).parent == (recipe.output_dir / ".cache" / "conditions").resolve()
    expected = LtxTextEncoder(gemma, text_checkpoint, "cpu").encode(recipe.export.caption)
    splits = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert splits
    for split in splits:
        root = out / split / ".precomputed"
        link = next((root / "conditions").glob("*.pt"))
        assert os.readlink(link) == "../caption_conditions.pt" and link.read_bytes() == Path(cached).read_bytes()
        samples = precomputed_samples(out / split)
        assert samples
        for s in samples:
            assert all(torch.equal(s["conditions"][k], expected[k]) for k in expected)
