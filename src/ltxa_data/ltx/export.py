"""`ltxa-data export ltx-trainer OUT`: a build's latent shards in the folder layout ltx-trainer reads.

    OUT/<split>/.precomputed/latents/<key>.pt                  video latents (the shard's latents.pth)
    OUT/<split>/.precomputed/audio_latents/<key>.pt            target audio latents
    OUT/<split>/.precomputed/reference_audio_latents/<key>.pt  reference audio latents
    OUT/<split>/.precomputed/conditions/<key>.pt               -> ../caption_conditions.pt (a relative link)
    OUT/<split>/.precomputed/video_masks/<key>.pt              with export.video_masks: face | everything

ltx-trainer's `PrecomputedDataset(OUT/<split>, ...)` pairs files by identical relative path across
folders and loads them with `torch.load(weights_only=True)`. The caption is constant, so every key's
conditions file is a symbolic link to a copy of the one file the user supplies (`export.conditions`) or that
ltx-core's text encoder computes once per build (`export.text_encoder`, see `ltx/conditions.py`):
a single shared `conditions/caption.pt` would pair with nothing. References, `export.references`:
`first` writes reference 0 as [8, T, 16] (the upstream trainer's shape); `stack` writes the
[K, 8, T, 16] stack with `variants` = K (the audio-only fork's format); `expand` writes K keys
`<key>_r<i>`, one reference each, their video and audio latents (and mask) linked to the first key's files.

Video masks (`export.video_masks`), in ltx-trainer's format (read from Lightricks/LTX-2,
packages/ltx-trainer: docs/dataset-preparation.md "Processed Video Mask Format", scripts/process_videos.py
`compute_video_masks`, training_strategies/flexible.py `_apply_intrinsic_condition`): `{"mask": float32
[F, H, W]}` at latent resolution ([16, 16, 16] for 121x512x512), reshaped by the trainer to the token
order of the patchified latents (f, h, w) and thresholded at 0.5: **1 = conditioning token** (its clean
latent is kept, timestep 0, excluded from the loss), **0 = generated token** (noised, in the loss).
`face`: the cells of `KEY.face_mask_latent.npy` (any face pixel of any frame the latent frame covers) are
0, everything else 1, so the model must generate the face, from the reference voice; `everything`: all
0, the whole target generated (the same as no mask condition, for configs that always have one).
The trainer reads them only when the training config asks for them: `training_strategy: {name: flexible,
video: {is_generated: true, latents_dir: latents, conditions: [{type: mask, mask_dir: video_masks}]}}`,
which adds the data source `"video_masks": "video_masks"` (directory: batch key) to `PrecomputedDataset`.

`ltxa-data export ltx-trainer-dataset OUT` writes the input of upstream's `scripts/process_dataset.py`
instead (it works on media-only builds): per split

    OUT/<split>/dataset.jsonl             {"caption", "video", "audio", "reference_audio"[, "video_mask"]}
    OUT/<split>/<key>.mp4                 the target video (121 frames, no audio track)
    OUT/<split>/audio/<key>.wav           the target audio (column `audio`: our mp4s carry none to extract)
    OUT/<split>/references/<key>.wav      the reference
    OUT/<split>/masks/<key>.mp4           face masks; `everything`: one black mask_generate_all.png

Paths are relative to the jsonl's folder (process_videos.py `_load_paths_from_dataset`: `data_root /
entry[column]`); its outputs are named after the `video` path, so `.precomputed/<folder>/<key>.pt` as
here. `expand` writes a row per reference with its own `<key>_r<i>.mp4` (a link): a shared video path
would name every row's outputs alike. `stack` is refused (a `reference_audio` cell is one file). A mask
video is the latent mask carried in pixels: white (255) = conditioning, black = generated, 32x32 cells,
pixel frames 8k..8k+7 holding latent frame k. process_dataset.py reduces a mask video by the mean over
RGB, nearest resize, a 32x32 average pool, the max over frames 8k..8k+7 (eights from frame 0, not the
VAE's 0 | 1-8 | 9-16 grouping) and `> 0.5`, so it gets back exactly the mask `export ltx-trainer` writes.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import torch

from ..analysis.faces import LATENT_CELL, LATENT_TIME
from ..analysis.splits import SPLITS
from ..errors import SystemicError
from ..media import encode_video
from ..recipe import TARGET_FPS, TARGET_FRAMES, Recipe
from ..shard_format import iter_shard
from ..storage import read_frame, write_bytes_atomic, write_json_atomic
from .conditions import CONDITION_KEYS, caption_conditions, check_conditions
from .encode import LATENT_MEMBERS, saved_bytes
from .loader import first_reference, load_pth

FOLDERS = ("latents", "audio_latents", "reference_audio_latents", "conditions")
MASK_FOLDER = "video_masks"
"""ltx-trainer's folder (and `mask_dir`, and data source name) for video masks."""
FACE_MASK_MEMBER = "face_mask_latent.npy"
CONDITIONING, GENERATED = 1.0, 0.0
"""ltx-trainer's mask values: > 0.5 conditioning (clean, no loss), <= 0.5 generated (noised, in the loss)."""
DATASET_FILE = "dataset.jsonl"
EVERYTHING_MASK = "mask_generate_all.png"
"""The one mask image of `video_masks: everything` in the dataset export (black: every token generated)."""
CAPTION_FILE = "caption_conditions.pt"
"""The caption's conditions, copied into each split's `.precomputed` folder; conditions/<key>.pt link to it."""
def _link(target: str, link: Path) -> None:
    """A relative symbolic link (`target` relative to the link's folder), so the export can be moved."""
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def conditioning_mask(members: dict[str, bytes], mode: str, shape: tuple[int, int, int], key: str,
                      tar: Path) -> np.ndarray:
    """A sample's mask in ltx-trainer's polarity, bool [F, H, W] at latent resolution: True = conditioning
    (kept clean, out of the loss), False = generated. `face`: everything but the face cells of
    `face_mask_latent.npy`; `everything`: all False. `shape` is the target's latent shape."""
    if mode == "everything":
        return np.zeros(shape, bool)
    if FACE_MASK_MEMBER not in members:
        raise SystemicError(f"export: sample {key} in {tar} has no {FACE_MASK_MEMBER} (its target has no face "
                            "track): video_masks: face needs targets.face.required: true; use none or everything")
    face = np.load(io.BytesIO(members[FACE_MASK_MEMBER]), allow_pickle=False)
    if face.shape != shape:
        raise SystemicError(f"export: sample {key} in {tar}: {FACE_MASK_MEMBER} is {list(face.shape)}, its latents "
                            f"{list(shape)}")
    return face == 0


def mask_pt(cond: np.ndarray) -> bytes:
    """ltx-trainer's `video_masks/<key>.pt`: {"mask": float32 [F, H, W]}, 1 = conditioning, 0 = generated."""
    return saved_bytes({"mask": torch.from_numpy(np.where(cond, CONDITIONING, GENERATED).astype(np.float32))})


def mask_video_frames(cond: np.ndarray, num_frames: int = TARGET_FRAMES) -> np.ndarray:
    """uint8 RGB [num_frames, 32 H, 32 W, 3]: the latent mask `cond` [F, H, W] in pixels for process_dataset.py,
    white = conditioning. Pixel frame i holds latent frame i // 8: that script max-pools frames 8k..8k+7 into
    latent frame k, after a 32x32 average pool, so every cell of every group is uniform and comes back exact."""
    cells = np.where(cond, 255, 0).astype(np.uint8)
    idx = np.minimum(np.arange(num_frames) // LATENT_TIME, len(cond) - 1)
    pixels = cells[idx].repeat(LATENT_CELL, axis=1).repeat(LATENT_CELL, axis=2)
    return np.repeat(pixels[..., None], 3, axis=3)


def mask_video(cond: np.ndarray, num_frames: int = TARGET_FRAMES) -> bytes:
    """`mask_video_frames` as a lossless H.264 mp4 (crf 0) at the target's frame rate."""
    return encode_video(mask_video_frames(cond, num_frames), TARGET_FPS, crf=0)


def refuse_other_export(out: Path, kind: str, splits: tuple[str, ...]) -> None:
    """Both trainer exports end in `OUT/<split>/.precomputed` (one writes it, `process_dataset.py` writes it from
    the other): an OUT that holds the other kind of export is refused, naming what is there."""
    other = None
    meta = out / "export.json"
    if meta.is_file():
        try:
            other = json.loads(meta.read_text(encoding="utf-8")).get("format", "ltx-trainer")
        except ValueError:
            other = None
    if other is None:
        if any((out / s / DATASET_FILE).is_file() for s in splits):
            other = "ltx-trainer-dataset"
        elif kind == "ltx-trainer-dataset" and any((out / s / ".precomputed").is_dir() for s in splits):
            other = "ltx-trainer"
    if other is not None and other != kind:
        raise SystemicError(f"export {kind}: {out} holds an {other} export; both use {out}/<split>/.precomputed, so "
                            "one would overwrite the other's latents: choose another OUT, or delete this one first")


def export_ltx_trainer(recipe: Recipe, out: Path, splits: tuple[str, ...] = SPLITS, references: str | None = None,
                       conditions: Path | None = None, video_masks: str | None = None) -> dict[str, int]:
    """Write the export (see the module docstring); returns the keys written per split. Files are
    written atomically, so a rerun repairs an interrupted export; files of an earlier export that
    this one does not write (other keys, another `references` mode) are removed. The conditions
    file is copied to `.precomputed/caption_conditions.pt` and linked relatively, so OUT can move."""
    refuse_other_export(out, "ltx-trainer", splits)
    references = references or recipe.export.references
    video_masks = video_masks or recipe.export.video_masks
    folders = export_folders(video_masks)
    shards = _shards_for(recipe, splits, video_masks)
    conditions = conditions or (recipe.resolve(recipe.export.conditions) if recipe.export.conditions else None)
    if conditions is None and recipe.export.text_encoder:  # computed once per build, cached; checked before use
        conditions = caption_conditions(recipe)
    if conditions is None:
        raise SystemicError("export ltx-trainer needs the caption's conditions file: set export.conditions in the "
                            "recipe or pass --conditions (a .pt with " + ", ".join(CONDITION_KEYS) + "), or set "
                            "export.text_encoder (the Gemma folder) to compute them")
    conditions = Path(conditions).resolve()
    check_conditions(conditions)
    written: dict[str, int] = {}
    for split in splits:
        tars = sorted(set(shards.filter(pl.col("split") == split)["shard"].to_list()))
        if not tars:
            continue
        root = out / split / ".precomputed"
        for folder in folders:
            (root / folder).mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(root / CAPTION_FILE, conditions.read_bytes())
        names: set[str] = set()
        for rel in tars:
            tar = recipe.output_dir / "shards" / rel
            for key, _, files in iter_shard(tar):
                names.update(_export_sample(root, key, {ext: data for ext, data in files.values()}, references, tar,
                                            video_masks))
        for folder in (*FOLDERS, MASK_FOLDER):  # masks of an earlier export too, when none are asked for now
            for f in (root / folder).glob("*.pt"):
                if f.stem not in names or folder not in folders:
                    f.unlink()
        if MASK_FOLDER not in folders and (root / MASK_FOLDER).is_dir() and not any((root / MASK_FOLDER).iterdir()):
            (root / MASK_FOLDER).rmdir()
        written[split] = len(names)
    if not written:
        raise SystemicError(f"build {recipe.name!r} has no shards to export (splits {', '.join(splits)})")
    write_json_atomic(out / "export.json", {"build": recipe.name, "format": "ltx-trainer", "references": references,
                                            "keys": written,
                                            "conditions": str(conditions), "folders": list(folders),
                                            "video_masks": video_masks})
    return written


def _shards_for(recipe: Recipe, splits: tuple[str, ...], video_masks: str) -> pl.DataFrame:
    """The ok rows of the shards index, after checking, before anything is written, that every sample of the
    splits carries a face mask when face masks are asked for."""
    shards = read_frame(recipe.manifests_dir, "shards", ok_only=True)
    if video_masks == "face":
        chosen = shards.filter(pl.col("split").is_in(list(splits)))
        bare = chosen.filter(~pl.col("members").list.eval(pl.element().str.ends_with(f".{FACE_MASK_MEMBER}"))
                             .list.any())["key"].to_list()
        if bare:
            raise SystemicError(f"export: video_masks: face needs every target's face track, but {len(bare)} of "
                                f"{chosen.height} samples have no {FACE_MASK_MEMBER} (e.g. {', '.join(bare[:3])}): "
                                "build with a face-tracking targets.crop, or use video_masks: everything")
    return shards


def export_folders(video_masks: str) -> tuple[str, ...]:
    """The `.precomputed` folders an export with these `video_masks` writes."""
    return FOLDERS if video_masks == "none" else (*FOLDERS, MASK_FOLDER)


def _export_sample(root: Path, key: str, members: dict[str, bytes], references: str, tar: Path,
                   video_masks: str = "none") -> list[str]:
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
    linked = ["latents", "audio_latents"]
    if video_masks != "none":
        lat = load_pth(members["latents.pth"])
        shape = (int(lat["num_frames"]), int(lat["height"]), int(lat["width"]))
        write_bytes_atomic(root / MASK_FOLDER / f"{first}.pt",
                           mask_pt(conditioning_mask(members, video_masks, shape, key, tar)))
        linked.append(MASK_FOLDER)
    for name, data in variants:
        write_bytes_atomic(root / "reference_audio_latents" / f"{name}.pt", data)
        _link(f"../{CAPTION_FILE}", root / "conditions" / f"{name}.pt")
        if name != first:
            for folder in linked:
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



def export_ltx_trainer_dataset(recipe: Recipe, out: Path, splits: tuple[str, ...] = SPLITS,
                               references: str | None = None, video_masks: str | None = None) -> dict[str, int]:
    """Write the input of ltx-trainer's `process_dataset.py` (see the module docstring): per split a
    `dataset.jsonl` and the media it names, from the shards' mp4 and wavs. Returns the rows written per
    split. Files are written atomically and a rerun rewrites them all, so it repairs an interrupted or
    damaged export; the media of an earlier export that this one does not name are removed."""
    refuse_other_export(out, "ltx-trainer-dataset", splits)
    references = references or recipe.export.references
    video_masks = video_masks or recipe.export.video_masks
    if references == "stack":
        raise SystemicError("export ltx-trainer-dataset: references: stack has no meaning here (process_dataset.py "
                            "reads one reference_audio file per row): use --references first or expand")
    shards = _shards_for(recipe, splits, video_masks)
    written: dict[str, int] = {}
    for split in splits:
        tars = sorted(set(shards.filter(pl.col("split") == split)["shard"].to_list()))
        if not tars:
            continue
        root = out / split
        rows: list[dict[str, str]] = []
        files: set[str] = set()
        for rel in tars:
            tar = recipe.output_dir / "shards" / rel
            for key, _, members in iter_shard(tar):
                got_rows, got_files = _dataset_sample(root, key, {ext: data for ext, data in members.values()},
                                                      references, video_masks, recipe.export.caption,
                                                      recipe.targets.size, tar)
                rows += got_rows
                files |= got_files
        if video_masks == "everything":
            write_bytes_atomic(root / EVERYTHING_MASK, _black_png(recipe.targets.size))
            files.add(EVERYTHING_MASK)
        write_bytes_atomic(root / DATASET_FILE, "".join(json.dumps(r) + "\n" for r in rows).encode())
        files.add(DATASET_FILE)
        for pattern in ("*.mp4", "audio/*.wav", "references/*.wav", "masks/*.mp4", EVERYTHING_MASK):
            for f in root.glob(pattern):
                if f.relative_to(root).as_posix() not in files:
                    f.unlink()
        written[split] = len(rows)
    if not written:
        raise SystemicError(f"build {recipe.name!r} has no shards to export (splits {', '.join(splits)})")
    write_json_atomic(out / "export.json", {"build": recipe.name, "format": "ltx-trainer-dataset",
                                            "references": references, "video_masks": video_masks, "rows": written,
                                            "dataset_file": DATASET_FILE, "caption": recipe.export.caption})
    return written


def _dataset_sample(root: Path, key: str, members: dict[str, bytes], references: str, video_masks: str,
                    caption: str, size: int, tar: Path) -> tuple[list[dict[str, str]], set[str]]:
    """Write one sample's media for the dataset export; returns its rows and the files (relative to root)."""
    refs = sorted((m for m in members if m.startswith("ref") and m.endswith(".wav")),
                  key=lambda m: int(m[3:-4]) if m[3:-4].isdigit() else -1)
    missing = [m for m in ("mp4", "wav") if m not in members] + ([] if refs else ["ref0.wav"])
    if missing:
        raise SystemicError(f"export: sample {key} in {tar} has no {', '.join(missing)}: the dataset export needs "
                            "the media (encode.keep_media: true)")
    names = [key] if references == "first" else [f"{key}_r{i}" for i in range(len(refs))]
    refs = refs[:1] if references == "first" else refs
    first = names[0]
    files = {f"{first}.mp4", f"audio/{first}.wav"}
    write_bytes_atomic(root / f"{first}.mp4", members["mp4"])
    write_bytes_atomic(root / "audio" / f"{first}.wav", members["wav"])
    mask = None
    if video_masks == "face":
        shape = ((TARGET_FRAMES - 1) // LATENT_TIME + 1, size // LATENT_CELL, size // LATENT_CELL)
        mask = f"masks/{first}.mp4"
        write_bytes_atomic(root / mask, mask_video(conditioning_mask(members, video_masks, shape, key, tar)))
        files.add(mask)
    elif video_masks == "everything":
        mask = EVERYTHING_MASK
    rows = []
    for name, ref in zip(names, refs, strict=True):
        write_bytes_atomic(root / "references" / f"{name}.wav", members[ref])
        files.add(f"references/{name}.wav")
        if name != first:
            _link(f"{first}.mp4", root / f"{name}.mp4")
            files.add(f"{name}.mp4")
        row = {"caption": caption, "video": f"{name}.mp4", "audio": f"audio/{first}.wav",
               "reference_audio": f"references/{name}.wav"}
        if mask is not None:
            row["video_mask"] = mask
        rows.append(row)
    return rows, files


def _black_png(size: int) -> bytes:
    """A black size x size PNG: as a `video_mask` image, process_dataset.py tiles it over every frame (all 0)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size)).save(buf, format="PNG")
    return buf.getvalue()
