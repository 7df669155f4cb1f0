"""A contact sheet of a build: one tile per sample (the target's middle frame, with its face-mask
box in red) with its identity, split, source and the reference loudness, so a
person can eyeball a build in one image."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..recipe import Recipe
from ..shard_format import read_shard

TILE = 192
CAPTION = 46


def _middle_frame(mp4: bytes) -> np.ndarray:
    """The middle frame of a target (decoding stops there)."""
    with av.open(io.BytesIO(mp4)) as c:
        middle = (c.streams.video[0].frames or 1) // 2
        for i, frame in enumerate(c.decode(video=0)):
            if i >= middle:
                return frame.to_ndarray(format="rgb24")
    raise ValueError("a target mp4 without frames")


def _reference_line(meta: dict) -> str:
    """The first reference's loudness (LUFS as measured, and after normalisation) and how many there are."""
    refs = meta.get("references") or []
    if not refs:
        return "no reference"
    r = refs[0]
    if r.get("lufs") is None:
        return f"ref x{len(refs)}"
    out = f" -> {r['output_lufs']:.1f}" if r.get("output_lufs") is not None else ""
    return f"ref {r['lufs']:.1f}{out} LUFS (x{len(refs)})"


def tile(sample: dict[str, bytes]) -> Image.Image:
    """One sample ({extension: bytes} of its shard members) drawn as a captioned tile."""
    font = ImageFont.load_default()
    meta = json.loads(sample["json"])
    out = Image.new("RGB", (TILE, TILE + CAPTION), "white")
    frame = Image.fromarray(_middle_frame(sample["mp4"]))
    scale = TILE / frame.width
    out.paste(frame.resize((TILE, TILE)), (0, 0))
    draw = ImageDraw.Draw(out)
    if "face_boxes.json" in sample:  # the face-region mask of the middle frame, as a red outline
        boxes = json.loads(sample["face_boxes.json"])
        box = boxes[len(boxes) // 2] if isinstance(boxes, list) else None
        if box:
            x, y, w, h = (v * scale for v in box[-4:])
            draw.rectangle((x, y, x + w, y + h), outline=(255, 0, 0), width=2)
    lines = [f"{meta['split']}  {meta['identity_id'][:18]}", Path(meta["source"]).name[:30], _reference_line(meta)]
    for i, line in enumerate(lines):
        draw.text((3, TILE + 2 + 14 * i), line, fill="black", font=font)
    return out


def contact_sheet(samples: list[dict[str, bytes]], columns: int = 8) -> Image.Image | None:
    """Samples' tiles in rows of `columns`; None without samples."""
    tiles = [tile(s) for s in samples]
    if not tiles:
        return None
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * (TILE + 4), rows * (TILE + CAPTION + 4)), (230, 230, 230))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * (TILE + 4), (i // columns) * (TILE + CAPTION + 4)))
    return sheet


def write_contact_sheet(recipe: Recipe, dest: Path, columns: int = 8, limit: int = 64) -> Path:
    """Render up to `limit` samples of the build's shards (train, val, test in turn) to `dest` (PNG)."""
    samples: list[dict[str, bytes]] = []
    for tar_path in sorted(recipe.shards_dir.rglob("*.tar")):
        if len(samples) >= limit:
            break
        shard = read_shard(tar_path)
        samples += [{ext: data for ext, data in shard[key]["files"].values()} for key in sorted(shard)]
    sheet = contact_sheet(samples[:limit], columns)
    if sheet is None:
        raise FileNotFoundError(f"{recipe.shards_dir}: no samples to draw")
    dest.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(dest, optimize=True)
    return dest
