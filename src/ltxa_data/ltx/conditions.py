"""The build's caption conditions: computed once with ltx-core's text encoder (`backends/text_encoder.py`) when
the recipe names a Gemma folder (`export.text_encoder`) instead of a conditions file (`export.conditions`).

The file is cached as `output.dir/.cache/conditions/<key>.pt` (+ `<key>.json` saying what went into the key),
written atomically. The key is a hash of the caption, the sha256 of every file of the Gemma folder that decides
the result (weights, config, tokenizer), the LTX checkpoint's sha256 (the same per-file cache as the encode stage:
`.cache/sha256.json`, by path, size and mtime), the ltx-core and transformers versions and the compute dtype.
A second export of the same build loads no model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any

from ..errors import SystemicError
from ..recipe import Recipe
from ..storage import cached_file_sha256, write_bytes_atomic, write_json_atomic
from .encode import saved_bytes

log = logging.getLogger(__name__)

FORMAT = 1
"""Bumped when what is computed or how it is stored changes (invalidates cached conditions)."""


def text_encoder_paths(recipe: Recipe) -> tuple[Path, Path]:
    """(Gemma folder, LTX checkpoint with the text projection and connectors) of the recipe."""
    cfg = recipe.export
    if not cfg.text_encoder:
        raise SystemicError("export.text_encoder is not set")
    checkpoint = cfg.text_checkpoint or recipe.encode.checkpoint
    if not checkpoint:
        raise SystemicError("export.text_encoder needs the LTX-2.3 checkpoint holding the text projection and "
                            "embeddings connectors: set export.text_checkpoint (or encode.checkpoint)")
    return recipe.resolve(cfg.text_encoder), recipe.resolve(checkpoint)


def text_encoder_problems(recipe: Recipe) -> list[str]:
    """Why the recipe's text encoder cannot compute the conditions (no weight is loaded), for the preflight."""
    if not recipe.export.text_encoder or recipe.export.conditions:
        return []
    import torch

    from ..backends.text_encoder import check_text_encoder

    problems = []
    if recipe.export.text_encoder_device == "cuda" and not torch.cuda.is_available():
        problems.append("export.text_encoder_device is cuda, but torch sees no CUDA device here")
    try:
        check_text_encoder(*text_encoder_paths(recipe))
    except SystemicError as e:
        problems.append(str(e))
    return problems


def conditions_key(recipe: Recipe) -> tuple[str, dict[str, Any]]:
    """The cache key of the recipe's caption conditions and what it hashes. Needs the Gemma folder's files and
    the checkpoint to exist (`SystemicError` naming what is missing); hashes each file once (cached)."""
    from ..backends.text_encoder import gemma_folder

    gemma, checkpoint = text_encoder_paths(recipe)
    folder = gemma_folder(gemma)
    if not checkpoint.is_file():
        raise SystemicError(f"export.text_encoder: the LTX checkpoint {checkpoint} (text projection and connectors) "
                            "does not exist")
    cache = recipe.output_dir / ".cache"
    what = {
        "format": FORMAT,
        "caption": recipe.export.caption,
        "text_encoder": {str(p.relative_to(folder.root)): cached_file_sha256(p, cache)
                         for p in folder.hashed_files()},
        "ltx_checkpoint_sha256": cached_file_sha256(checkpoint, cache),
        "ltx_core": importlib.metadata.version("ltx-core"),
        "transformers": importlib.metadata.version("transformers"),
        "dtype": recipe.export.text_encoder_dtype,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32], what


CONDITION_KEYS = ("video_prompt_embeds", "audio_prompt_embeds", "prompt_attention_mask")
"""What a conditions file must hold (the LTX-2 text encoder's output for the caption)."""


def check_conditions(path: Path) -> None:
    """Refuse a conditions file the trainer could not use, naming the file and what is wrong."""
    import torch

    if not path.is_file():
        raise SystemicError(f"export: the conditions file {path} does not exist (export.conditions)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SystemicError(f"export: {path} does not load with torch.load(weights_only=True): {e}") from e
    if not isinstance(data, dict):
        raise SystemicError(f"export: {path} holds a {type(data).__name__}, not a dict of {', '.join(CONDITION_KEYS)}")
    missing = [k for k in CONDITION_KEYS if not isinstance(data.get(k), torch.Tensor)]
    if missing:
        raise SystemicError(f"export: {path} lacks the tensors {', '.join(missing)} (has {', '.join(sorted(data))})")


def caption_conditions(recipe: Recipe) -> Path:
    """The conditions file of the recipe's caption, computed with ltx-core's text encoder on first use and
    cached in the build's output folder. The Gemma folder and checkpoint are checked first, every time (files,
    config, tokenizer, keys and shapes: seconds, no weight read)."""
    import torch

    from ..backends.text_encoder import LtxTextEncoder, check_text_encoder

    check_text_encoder(*text_encoder_paths(recipe))  # before hashing the weights: no weight is read
    key, what = conditions_key(recipe)
    path = recipe.output_dir / ".cache" / "conditions" / f"{key}.pt"
    if path.is_file():
        try:
            check_conditions(path)
            return path
        except SystemicError as e:  # damaged by hand: compute it again
            log.warning("recomputing the cached caption conditions: %s", e)
    cfg = recipe.export
    gemma, checkpoint = text_encoder_paths(recipe)
    log.info("computing the caption's conditions with %s (device %s, %s)", gemma, cfg.text_encoder_device,
             cfg.text_encoder_dtype)
    encoder = LtxTextEncoder(gemma, checkpoint, cfg.text_encoder_device, getattr(torch, cfg.text_encoder_dtype))
    conditions = encoder.encode(cfg.caption)
    del encoder
    for name, t in conditions.items():
        if not torch.isfinite(t.float()).all():
            raise SystemicError(f"export.text_encoder: the caption's {name} from {gemma} are not finite")
    write_json_atomic(path.with_suffix(".json"), {**what, "shapes": {k: list(v.shape) for k, v in conditions.items()},
                                                   "dtypes": {k: str(v.dtype) for k, v in conditions.items()}})
    write_bytes_atomic(path, saved_bytes(conditions))
    return path
