"""`ltxa-data export ltx-trainer OUT`: a build's latent shards in the folder layout ltx-trainer reads.

    OUT/<split>/.precomputed/latents/<key>.pt                  video latents (the shard's latents.pth)
    OUT/<split>/.precomputed/audio_latents/<key>.pt            target audio latents
    OUT/<split>/.precomputed/reference_audio_latents/<key>.pt  reference audio latents
    OUT/<split>/.precomputed/conditions/<key>.pt               -> ../caption_conditions.pt (a relative link)

ltx-trainer's `PrecomputedDataset(OUT/<split>, ...)` pairs files by identical relative path across
folders and loads them with `torch.load(weights_only=True)`. The caption is constant, so every key's
conditions file is a symbolic link to a copy of the one file the user supplies (`export.conditions`):
a single shared `conditions/caption.pt` would pair with nothing. References, `export.references`:
`first` writes reference 0 as [8, T, 16] (the upstream trainer's shape); `stack` writes the
[K, 8, T, 16] stack with `variants` = K (the audio-only fork's format); `expand` writes K keys
`<key>_r<i>`, one reference each, their video and audio latents linked to the first key's files.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import torch

from .encode import LATENT_MEMBERS, saved_bytes
from .errors import SystemicError
from .loader import first_reference, load_pth
from .recipe import Recipe
from .splits import SPLITS
from .stages.shard import iter_shard
from .storage import read_frame, write_bytes_atomic, write_json_atomic

FOLDERS = ("latents", "audio_latents", "reference_audio_latents", "conditions")
CAPTION_FILE = "caption_conditions.pt"
"""The caption's conditions, copied into each split's `.precomputed` folder; conditions/<key>.pt link to it."""
CONDITION_KEYS = ("video_prompt_embeds", "audio_prompt_embeds", "prompt_attention_mask")
"""What a conditions file must hold (the LTX-2 text encoder's output for the caption)."""


def check_conditions(path: Path) -> None:
    """Refuse a conditions file the trainer could not use, naming the file and what is wrong."""
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


def _link(target: str, link: Path) -> None:
    """A relative symbolic link (`target` relative to the link's folder), so the export can be moved."""
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def export_ltx_trainer(recipe: Recipe, out: Path, splits: tuple[str, ...] = SPLITS, references: str | None = None,
                       conditions: Path | None = None) -> dict[str, int]:
    """Write the export (see the module docstring); returns the keys written per split. Files are
    written atomically, so a rerun repairs an interrupted export; files of an earlier export that
    this one does not write (other keys, another `references` mode) are removed. The conditions
    file is copied to `.precomputed/caption_conditions.pt` and linked relatively, so OUT can move."""
    references = references or recipe.export.references
    conditions = conditions or (recipe.resolve(recipe.export.conditions) if recipe.export.conditions else None)
    if conditions is None:
        raise SystemicError("export ltx-trainer needs the caption's conditions file: set export.conditions in the "
                            "recipe or pass --conditions (a .pt with " + ", ".join(CONDITION_KEYS) + ")")
    conditions = Path(conditions).resolve()
    check_conditions(conditions)
    shards = read_frame(recipe.manifests_dir, "shards", ok_only=True)
    written: dict[str, int] = {}
    for split in splits:
        tars = sorted(set(shards.filter(pl.col("split") == split)["shard"].to_list()))
        if not tars:
            continue
        root = out / split / ".precomputed"
        for folder in FOLDERS:
            (root / folder).mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(root / CAPTION_FILE, conditions.read_bytes())
        names: set[str] = set()
        for rel in tars:
            tar = recipe.output_dir / "shards" / rel
            for key, _, files in iter_shard(tar):
                names.update(_export_sample(root, key, {ext: data for ext, data in files.values()}, references, tar))
        for folder in FOLDERS:
            for f in (root / folder).glob("*.pt"):
                if f.stem not in names:
                    f.unlink()
        written[split] = len(names)
    if not written:
        raise SystemicError(f"build {recipe.name!r} has no shards to export (splits {', '.join(splits)})")
    write_json_atomic(out / "export.json", {"build": recipe.name, "references": references, "keys": written,
                                            "conditions": str(conditions), "folders": list(FOLDERS)})
    return written


def _export_sample(root: Path, key: str, members: dict[str, bytes], references: str, tar: Path) -> list[str]:
    """Write one sample's files; returns the keys (file stems) written."""
    missing = [m for m in LATENT_MEMBERS if m not in members]
    if missing:
        raise SystemicError(f"export: sample {key} in {tar} has no {', '.join(missing)}: build with encode.backend: "
                            "ltx to export latents")
    ref = load_pth(members["reference_audio_latents.pth"])
    if references == "stack":
        variants = [(key, members["reference_audio_latents.pth"])]
    elif references == "first":
        variants = [(key, saved_bytes(first_reference(ref)))]
    else:
        variants = [(f"{key}_r{i}", saved_bytes(first_reference({**ref, "latents": ref["latents"][i: i + 1]})))
                    for i in range(ref["latents"].shape[0])]
    first = variants[0][0]
    write_bytes_atomic(root / "latents" / f"{first}.pt", members["latents.pth"])
    write_bytes_atomic(root / "audio_latents" / f"{first}.pt", members["audio_latents.pth"])
    for name, data in variants:
        write_bytes_atomic(root / "reference_audio_latents" / f"{name}.pt", data)
        _link(f"../{CAPTION_FILE}", root / "conditions" / f"{name}.pt")
        if name != first:
            for folder in ("latents", "audio_latents"):
                _link(f"{first}.pt", root / folder / f"{name}.pt")
    return [name for name, _ in variants]


def precomputed_samples(root: Path, folders: tuple[str, ...] = FOLDERS, limit: int | None = None) -> list[dict]:
    """Read an export the way ltx-trainer's PrecomputedDataset does: every `latents/**/*.pt`, paired by
    relative path with a file in each folder, all loaded with `torch.load(weights_only=True)`."""
    base = root / ".precomputed" if (root / ".precomputed").exists() else root
    out = []
    for f in sorted((base / "latents").glob("**/*.pt"))[:limit]:
        rel = f.relative_to(base / "latents")
        paths = {d: base / d / rel for d in folders}
        if all(p.exists() for p in paths.values()):
            out.append({d: torch.load(p, map_location="cpu", weights_only=True) for d, p in paths.items()})
    return out

