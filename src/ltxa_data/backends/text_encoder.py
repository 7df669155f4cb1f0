"""The caption's conditions for ltx-trainer, computed with ltx-core's own text encoder, as upstream ltx-trainer's
`scripts/process_captions.py` computes them (`load_text_encoder` + `load_embeddings_processor` in its
`model_loader.py`):

1. ltx-core's `GemmaTextEncoder` (Gemma 3, built by `SingleGPUModelBuilder` from the folder's `*.safetensors`
   with `GemmaTextEncoderConfigurator`, the Gemma key map and module ops, tokenizer `LTXVGemmaTokenizer` with
   max length 1024, left padding) runs `encode(caption)`: every hidden state of Gemma and the attention mask;
2. the feature extractor of ltx-core's `EmbeddingsProcessor` (built from the LTX checkpoint with
   `EmbeddingsProcessorConfigurator` and `EMBEDDINGS_PROCESSOR_KEY_OPS`: `text_embedding_projection.*` and the
   `model.diffusion_model.{video,audio}_embeddings_connector.*`) turns them into the video and audio features.
   The connectors are loaded with it but not run: the trainer applies them at train time.

Saved per caption: `video_prompt_embeds` [1024, D_video], `audio_prompt_embeds` [1024, D_audio] (bf16; LTX-2.3
22B: 4096 and 2048 wide, LTX-2 19B: 3840 both) and `prompt_attention_mask` int64 [1024] (1 on the caption's
tokens, left-padded).

The Gemma folder is Google's Gemma 3 12B checkpoint as LTX-2 names it (google/gemma-3-12b-it-qat-q4_0-
unquantized): `config.json` (Gemma3ForConditionalGeneration), `model-*.safetensors` (+ index) with keys
`language_model.model.*`, `vision_tower.vision_model.*`, `multi_modal_projector.*`, `tokenizer.model` (+
`tokenizer.json`, `tokenizer_config.json`, ...) and `preprocessor_config.json` (ltx-core also builds the Gemma 3
processor, for prompt enhancement). ltx-core 1.0.0 builds the 12B architecture from a constant
(`GEMMA3_CONFIG_FOR_LTX`), not from config.json, so a folder of another size is refused here.

ltx-core 1.0.0 predates two changes of transformers: 5.0 replaced Gemma 3's two rotary embeddings by one with
per-layer-type buffers (its buffer-filling module op fails), and 5.8 flattened `SiglipVisionModel` (no
`.vision_model`; its key map fails). Each is detected on the model itself, and where it applies this module uses
the equivalent ltx-core 1.2.0 ships (`_create_and_populate_gemma3`, the vision key rename); ltx-core's own
otherwise. Everything else is ltx-core's code.

ltx-core's builder loads with `strict=False`, so the keys and shapes of both files are checked first (as for the
VAE encoders): a folder or checkpoint that does not fit is a `SystemicError` naming the file and the keys, before
any weight is read.
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import SystemicError
from .ltx_vae import _listing, read_ltx_config
from .model_source import load_error, torch_device

SETTING = "export.text_encoder"
MAX_LENGTH = 1024
"""Tokens per caption: ltx-core's `module_ops_from_gemma_root` builds `LTXVGemmaTokenizer(root, 1024)`."""
STORED_DTYPE = torch.bfloat16
"""The embeddings' dtype in the conditions file: what process_captions.py writes (its models run in bf16)."""
OUTPUT_KEYS = ("video_prompt_embeds", "audio_prompt_embeds", "prompt_attention_mask")
REQUIRED_FILES = ("config.json", "tokenizer.model", "preprocessor_config.json")
"""Found anywhere under the folder, as ltx-core looks for them (`find_matching_file`, a recursive glob)."""
HASHED = ("*.safetensors", "config.json", "tokenizer*", "special_tokens_map.json", "added_tokens.json")
"""The files whose content decides the conditions (weights, config, tokenizer), hashed for the cache key."""
_SIZES = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "num_key_value_heads",
          "head_dim", "vocab_size")


def _first(root: Path, pattern: str) -> Path | None:
    """ltx-core's `find_matching_file` (the first match of a recursive glob), or None."""
    return next(iter(root.rglob(pattern)), None)


@dataclass(frozen=True)
class GemmaFolder:
    """A Gemma text-encoder folder whose files are all there (`gemma_folder` checks them)."""

    root: Path
    weights: tuple[Path, ...]
    """What ltx-trainer loads: every `*.safetensors` under the folder of the first `model*.safetensors`."""

    def hashed_files(self) -> list[Path]:
        """The files `HASHED` names, sorted, hidden folders (a hub download's `.cache`) left out."""
        found = {p for pattern in HASHED for p in self.root.rglob(pattern)
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.root).parts)}
        return sorted(found)


def gemma_folder(path: Path) -> GemmaFolder:
    """The Gemma folder, or a `SystemicError` naming it and every file that is missing (cheap: no file is read
    but the safetensors index)."""
    root = Path(path)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise SystemicError(f"{SETTING}: the Gemma text-encoder folder {root} {what} (expected the Gemma 3 12B "
                            "checkpoint folder LTX-2 uses, google/gemma-3-12b-it-qat-q4_0-unquantized)")
    missing = [f for f in REQUIRED_FILES if _first(root, f) is None]
    first = _first(root, "model*.safetensors")
    if first is None:
        missing.append("model*.safetensors (the Gemma weights)")
    else:
        index = first.parent / "model.safetensors.index.json"
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise SystemicError(f"{SETTING}: {index} is not a safetensors index ({e})") from e
            missing += [f"{s} (listed in {index.name})" for s in shards if not (first.parent / s).is_file()]
    if missing:
        raise SystemicError(f"{SETTING}: the Gemma text-encoder folder {root} is incomplete; missing "
                            + ", ".join(missing))
    assert first is not None
    return GemmaFolder(root, tuple(sorted(first.parent.rglob("*.safetensors"))))


def import_text_encoder() -> Any:
    """ltx-core's Gemma text-encoder package, or say how to install it."""
    try:
        import ltx_core.text_encoders.gemma as gemma
    except (ImportError, OSError) as e:
        raise SystemicError(f"{SETTING}: ltx-core's text encoder does not import ({type(e).__name__}: {e}); install "
                            "the encode extra: pip install -e '.[encode]' -c constraints.txt") from e
    return gemma


# --- ltx-core 1.0.0 on transformers >= 5.8: ltx-core 1.2.0's Gemma 3 key map and buffer op -------------------

def _flat_vision(meta: Any) -> bool:
    """Whether this transformers has the flattened SiglipVisionModel (>= 5.8: no `.vision_model`)."""
    return not hasattr(meta.model.model.vision_tower, "vision_model")


def _one_rotary(meta: Any) -> bool:
    """Whether this transformers' Gemma 3 has one rotary embedding with per-layer-type buffers (>= 5.0), which
    ltx-core 1.0.0's buffer op does not know (it fills `rotary_emb_local`)."""
    return not hasattr(meta.model.model.language_model, "rotary_emb_local")


def _gemma_sd_ops(meta: Any) -> Any:
    from ltx_core.loader import KeyValueOperationResult
    from ltx_core.loader.sd_ops import SDOps

    gemma = import_text_encoder()
    if not _flat_vision(meta):
        return gemma.GEMMA_LLM_KEY_OPS
    return (SDOps("GEMMA3_LLM_KEY_OPS")  # ltx-core 1.2.0 `_build_gemma3_llm_key_ops`
            .with_matching(prefix="language_model.model.")
            .with_matching(prefix="vision_tower.")
            .with_matching(prefix="multi_modal_projector.")
            .with_replacement("language_model.model.", "model.model.language_model.")
            .with_replacement("vision_tower.vision_model.", "model.model.vision_tower.")
            .with_replacement("multi_modal_projector.", "model.model.multi_modal_projector.")
            .with_kv_operation(operation=lambda key, value: [KeyValueOperationResult(key, value),
                                                             KeyValueOperationResult("model.lm_head.weight", value)],
                               key_prefix="model.model.language_model.embed_tokens.weight"))


def _populate_gemma3_v5(module: Any) -> Any:
    """ltx-core 1.2.0 `_create_and_populate_gemma3`: the non-persistent buffers a meta-built Gemma 3 lacks (one
    rotary embedding with per-layer-type inverse frequencies, the embedding scale, SigLIP's position ids)."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    l_model = module.model.model.language_model
    config = module.model.config.text_config
    rope = l_model.rotary_emb
    for layer_type in dict.fromkeys(config.layer_types):
        params = config.rope_parameters[layer_type]
        if params is None:
            continue
        if params["rope_type"] == "default":
            inv_freq, scaling = rope.compute_default_rope_parameters(config, layer_type=layer_type)
        else:
            inv_freq, scaling = ROPE_INIT_FUNCTIONS[params["rope_type"]](config, layer_type=layer_type)
        rope.register_buffer(f"{layer_type}_inv_freq", inv_freq, persistent=False)
        rope.register_buffer(f"{layer_type}_original_inv_freq", inv_freq.clone(), persistent=False)
        setattr(rope, f"{layer_type}_attention_scaling", scaling)
    l_model.embed_tokens.register_buffer("embed_scale", torch.tensor(config.hidden_size**0.5, device="cpu"),
                                         persistent=False)
    tower = module.model.model.vision_tower
    embeddings = getattr(tower, "vision_model", tower).embeddings
    n = len(embeddings.position_ids[0])
    embeddings.register_buffer("position_ids", torch.arange(n, dtype=torch.long, device="cpu").unsqueeze(0),
                               persistent=False)
    return module


def _gemma_module_ops(root: Path, meta: Any) -> tuple[Any, ...]:
    from ltx_core.loader.module_ops import ModuleOps

    gemma = import_text_encoder()
    assets = gemma.module_ops_from_gemma_root(str(root))  # tokenizer (max length 1024) and processor
    if not _one_rotary(meta):
        return (gemma.GEMMA_MODEL_OPS, *assets)
    return (ModuleOps(name="GemmaModel", matcher=lambda m: isinstance(m, gemma.GemmaTextEncoder),
                      mutator=_populate_gemma3_v5), *assets)


# --- checks -------------------------------------------------------------------------------------------------

def _key_problems(files: list[Path], sd_ops: Any, expected: dict[str, tuple[int, ...]]) -> list[str]:
    """Missing, unexpected and wrongly shaped keys of `files` (safetensors headers, mapped with ltx-core's
    `sd_ops`, key-value operations included) against a model's `expected` state-dict shapes."""
    from safetensors import safe_open

    found: dict[str, tuple[tuple[int, ...], str]] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    if (new := sd_ops.apply_to_key(key)) is None:
                        continue
                    shape = tuple(f.get_slice(key).get_shape())
                    for result in sd_ops.apply_to_key_value(new, torch.empty(shape, device="meta")):
                        found[result.new_key] = (tuple(result.new_value.shape), key)
        except SystemicError:
            raise
        except Exception as e:  # safetensors raises its own error type for a malformed header
            raise SystemicError(f"{SETTING}: {path} could not be read as a safetensors file and mapped with "
                                f"ltx-core's key ops ({type(e).__name__}: {e})") from e
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found[k][1] for k in found.keys() - expected.keys())
    wrong = [f"{found[k][1]} {found[k][0]} (model wants {expected[k]})" for k in sorted(expected.keys() & found.keys())
             if found[k][0] != expected[k]]
    return ([f"missing keys (as ltx-core names them) {_listing(missing)}"] if missing else []) + (
        [f"unexpected keys {_listing(unexpected)}"] if unexpected else []) + (
        [f"tensors of the wrong shape {_listing(wrong)}"] if wrong else [])


def _meta_gemma() -> Any:
    try:
        with torch.device("meta"):
            return import_text_encoder().GemmaTextEncoderConfigurator.from_config({})
    except SystemicError:
        raise
    except Exception as e:  # an ltx-core / transformers pair that cannot even build the model
        raise SystemicError(f"{SETTING}: ltx-core {importlib.metadata.version('ltx-core')} cannot build its Gemma 3 "
                            f"with transformers {importlib.metadata.version('transformers')} ({type(e).__name__}: "
                            f"{e}); use the versions of constraints.txt") from e


def _check_gemma_config(folder: GemmaFolder) -> None:
    """config.json describes the Gemma 3 that ltx-core builds (`GEMMA3_CONFIG_FOR_LTX`)."""
    from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX
    from transformers import Gemma3Config

    path = _first(folder.root, "config.json")
    assert path is not None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemicError(f"{SETTING}: {path} is not JSON ({e})") from e
    if not isinstance(data, dict) or data.get("model_type") != "gemma3":
        got = data.get("model_type") if isinstance(data, dict) else type(data).__name__
        raise SystemicError(f"{SETTING}: {path} describes model_type {got!r}, not a Gemma 3 (model_type 'gemma3', "
                            "Gemma3ForConditionalGeneration): LTX-2's text encoder is Gemma 3 12B")
    try:
        have = Gemma3Config.from_dict(data).text_config
    except Exception as e:
        raise SystemicError(f"{SETTING}: {path} is not a Gemma 3 config transformers can read ({e})") from e
    want = Gemma3Config.from_dict(GEMMA3_CONFIG_FOR_LTX.to_dict()).text_config
    diff = [f"{k} {getattr(have, k, None)} (ltx-core builds {getattr(want, k)})" for k in _SIZES
            if getattr(have, k, None) != getattr(want, k)]
    if diff:
        raise SystemicError(f"{SETTING}: {path} describes another Gemma 3 than the one ltx-core builds for LTX-2 "
                            f"(Gemma 3 12B, google/gemma-3-12b-it-qat-q4_0-unquantized): " + ", ".join(diff))


def _load_tokenizer(folder: GemmaFolder) -> Any:
    """ltx-core's tokenizer from the folder, as its module op builds it; a `SystemicError` when it does not load."""
    from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer

    path = _first(folder.root, "tokenizer.model")
    assert path is not None
    try:
        tok = LTXVGemmaTokenizer(str(path.parent), MAX_LENGTH)
        ids = [t for t, _ in tok.tokenize_with_weights("A person talking to the camera.")["gemma"]]
    except Exception as e:
        files = ", ".join(sorted(p.name for p in path.parent.glob("*") if p.name.startswith(("tokenizer", "special"))))
        raise load_error(SETTING, f"the tokenizer in {path.parent} ({files})", e) from e
    if len(ids) != MAX_LENGTH:
        raise SystemicError(f"{SETTING}: the tokenizer in {path.parent} gives {len(ids)} tokens per caption, not the "
                            f"{MAX_LENGTH} ltx-core pads to")
    return tok


def check_gemma(path: Path) -> GemmaFolder:
    """The Gemma folder fits ltx-core's text encoder: files, config, tokenizer, weight keys and shapes (only the
    safetensors headers are read; the model is built on the meta device). `SystemicError` naming what is wrong."""
    import_text_encoder()
    folder = gemma_folder(path)
    _check_gemma_config(folder)
    tok = _load_tokenizer(folder)
    meta = _meta_gemma()
    expected = {k: tuple(v.shape) for k, v in meta.state_dict().items()}
    rows = expected.get("model.model.language_model.embed_tokens.weight", (0,))[0]
    if len(tok.tokenizer) > rows:
        raise SystemicError(f"{SETTING}: the tokenizer in {folder.root} has {len(tok.tokenizer)} tokens, more than the "
                            f"{rows} rows of Gemma's embedding: it is not this Gemma's tokenizer")
    problems = _key_problems(list(folder.weights), _gemma_sd_ops(meta), expected)
    if problems:
        raise SystemicError(f"{SETTING}: the weights in {folder.root} do not fit the Gemma 3 that ltx-core builds "
                            f"({', '.join(p.name for p in folder.weights)}): " + "; ".join(problems))
    return folder


def check_text_projection(checkpoint: Path) -> dict[str, Any]:
    """The LTX checkpoint holds the text side that fits ltx-core's `EmbeddingsProcessor` for its config (feature
    extractor / text projection and both embeddings connectors); returns the config. Headers only."""
    import_text_encoder()
    from ltx_core.text_encoders.gemma import EMBEDDINGS_PROCESSOR_KEY_OPS, EmbeddingsProcessorConfigurator

    where = f"{SETTING}: the LTX checkpoint {checkpoint}"
    try:
        config = read_ltx_config(checkpoint)
    except SystemicError as e:
        raise SystemicError(f"{SETTING} (text projection and connectors): {e}") from e
    if not isinstance(config.get("transformer"), dict):
        raise SystemicError(f"{where} has no 'transformer' section in its config metadata, so it holds no text "
                            "projection and embeddings connectors: use the full LTX-2.3 checkpoint (export."
                            "text_checkpoint, default encode.checkpoint)")
    try:
        with torch.device("meta"):
            meta = EmbeddingsProcessorConfigurator.from_config(config)
    except Exception as e:
        raise SystemicError(f"{where}: ltx-core cannot build the text projection and connectors from its "
                            f"'transformer' config ({type(e).__name__}: {e})") from e
    expected = {k: tuple(v.shape) for k, v in meta.state_dict().items()}
    problems = _key_problems([Path(checkpoint)], EMBEDDINGS_PROCESSOR_KEY_OPS, expected)
    if problems:
        raise SystemicError(f"{where} does not hold the text projection and embeddings connectors its config "
                            "describes (text_embedding_projection.*, model.diffusion_model.*_embeddings_connector.*): "
                            + "; ".join(problems))
    return config


def check_text_encoder(gemma: Path, checkpoint: Path) -> GemmaFolder:
    """Everything `LtxTextEncoder` will load fits, checked without loading a weight."""
    folder = check_gemma(gemma)
    check_text_projection(checkpoint)
    return folder


# --- the encoder --------------------------------------------------------------------------------------------

def _no_meta(model: torch.nn.Module, what: str, where: Path) -> torch.nn.Module:
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:  # ltx-core returns the meta model with only a warning; the key checks should make this moot
        raise SystemicError(f"{SETTING}: ltx-core left {what} tensors unloaded from {where}: {_listing(left)}")
    return model.eval().requires_grad_(False)


class LtxTextEncoder:
    """ltx-core's Gemma text encoder and LTX feature extractor, built as ltx-trainer's `load_text_encoder` and
    `load_embeddings_processor` build them, after `check_text_encoder`. `dtype` is the weights' and compute dtype
    (bf16 as upstream; float32 is faster on CPUs without bf16 units, at twice the memory); the embeddings are
    returned in `STORED_DTYPE` either way."""

    def __init__(self, gemma: Path, checkpoint: Path, device: str = "auto",
                 dtype: torch.dtype = torch.bfloat16) -> None:
        gemma_mod = import_text_encoder()
        from ltx_core.loader import SingleGPUModelBuilder

        self.folder = check_text_encoder(Path(gemma), Path(checkpoint))
        self.checkpoint = Path(checkpoint)
        self.device = torch.device(torch_device(device, SETTING))
        self.dtype = dtype
        self.ltx_core_version = importlib.metadata.version("ltx-core")
        meta = _meta_gemma()
        try:
            text_encoder = SingleGPUModelBuilder(
                model_path=tuple(str(p) for p in self.folder.weights),
                model_class_configurator=gemma_mod.GemmaTextEncoderConfigurator,
                model_sd_ops=_gemma_sd_ops(meta),
                module_ops=_gemma_module_ops(self.folder.root, meta),
            ).build(device=self.device, dtype=dtype)
            processor = SingleGPUModelBuilder(
                model_path=str(self.checkpoint),
                model_class_configurator=gemma_mod.EmbeddingsProcessorConfigurator,
                model_sd_ops=gemma_mod.EMBEDDINGS_PROCESSOR_KEY_OPS,
            ).build(device=self.device, dtype=dtype)
        except SystemicError:
            raise
        except Exception as e:
            raise load_error(SETTING, f"{self.folder.root} + {self.checkpoint}", e) from e
        self.text_encoder = _no_meta(text_encoder, "Gemma", self.folder.root)
        self.embeddings_processor = _no_meta(processor, "text projection / connector", self.checkpoint)

    def encode(self, caption: str) -> dict[str, torch.Tensor]:
        """The caption's conditions as process_captions.py saves them, on the CPU."""
        with torch.inference_mode():
            hidden_states, mask = self.text_encoder.encode(caption, padding_side="left")
            video, audio = self.embeddings_processor.feature_extractor(hidden_states, mask, "left")
        if audio is None:
            raise SystemicError(f"{SETTING}: the text projection of {self.checkpoint} gives no audio embeddings (a "
                                "video-only LTX checkpoint); the audio-reference trainer needs an audio-video one")
        return {"video_prompt_embeds": video[0].to(device="cpu", dtype=STORED_DTYPE).contiguous(),
                "audio_prompt_embeds": audio[0].to(device="cpu", dtype=STORED_DTYPE).contiguous(),
                "prompt_attention_mask": mask[0].cpu().contiguous()}
