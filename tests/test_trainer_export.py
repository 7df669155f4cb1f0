"""Face masks in the ltx-trainer export, and the `ltx-trainer-dataset` export (process_dataset.py's input).

The upstream rules are re-implemented here from the public Lightricks/LTX-2 repository
(packages/ltx-trainer, commit 400fd31054597515f47125691032c04b1c3ee24e), each quoted where used:
- src/ltx_trainer/datasets.py, PrecomputedDataset: `_discover_samples` (l. 158-222) pairs every
  `latents/**/*.pt` with the file of the same relative path in each other source; `__getitem__`
  (l. 258-279) loads each with `torch.load(file_path, map_location="cpu", weights_only=True)`.
- src/ltx_trainer/training_strategies/flexible.py: `get_data_sources` (l. 187-208) adds
  `sources[cond.mask_dir] = cond.mask_dir` for a `type: mask` condition; `_apply_intrinsic_condition`
  (l. 505-519): `mask = (batch[config.mask_dir]["mask"].reshape(batch_size, seq_len) > 0.5).float()`,
  `noisy_latents = m * clean_latents + (1 - m) * noisy_latents`, `loss_mask = loss_mask & (mask == 0)`;
  seq_len comes from ltx-core's VideoLatentPatchifier(patch_size=1): "b c f h w -> b (f h w) c".
- scripts/process_videos.py: `_load_paths_from_dataset` (l. 1229-1254) resolves `data_root / Path(entry[column]
  .strip())` with data_root = the dataset file's folder; `_output_relative` (l. 1216-1226) names outputs by the
  `video` path relative to it; `compute_video_masks` (l. 923-1009) reduces a mask video to latents;
  `detect_dataset_columns` (l. 1273-1286) takes a JSONL's columns from its first line.
- scripts/process_dataset.py: `_KNOWN_ROLES` (l. 51), `_validate_dataset_file` (l. 281-289).
"""

from __future__ import annotations

import io
import itertools
import json
import os
from pathlib import Path

import av
import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch

from ltxa_data.analysis.faces import LATENT_CELL, latent_face_mask, latent_frame_groups, pixel_face_mask
from ltxa_data.errors import SystemicError
from ltxa_data.recipe import Recipe
from ltxa_data.shard_format import iter_shard
from ltxa_data.storage import read_frame

KNOWN_ROLES = {"video", "audio", "reference_audio", "reference_video", "video_mask", "audio_mask", "caption"}
"""process_dataset.py l. 51 `_KNOWN_ROLES`."""


def _samples(recipe: Recipe) -> dict[str, dict[str, bytes]]:
    out = {}
    for tar in sorted((recipe.output_dir / "shards").glob("*/*.tar")):
        for key, _, files in iter_shard(tar):
            out[key] = {ext: data for ext, data in files.values()}
    return out


def _npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


# --- upstream's reading rules --------------------------------------------------------------------------------


def precomputed_dataset(data_root: Path, data_sources: dict[str, str]) -> list[dict]:
    """PrecomputedDataset(data_root, data_sources) items (datasets.py l. 117-279), in its order, with the key
    (the relative path without suffix) added."""
    if (data_root / ".precomputed").exists():  # l. 125-126
        data_root = data_root / ".precomputed"
    data_key = "latents" if "latents" in data_sources else next(iter(data_sources))  # l. 168
    items = []
    for data_file in sorted((data_root / data_key).glob("**/*.pt")):  # l. 174, 191
        rel = data_file.relative_to(data_root / data_key)
        if all((data_root / d / rel).exists() for d in data_sources):  # l. 202-216 (no legacy latent_ names here)
            item = {key: torch.load(data_root / d / rel, map_location="cpu", weights_only=True)  # l. 267
                    for d, key in data_sources.items()}
            items.append({**item, "key": rel.with_suffix("").as_posix()})
    return items


def mask_condition(item: dict, mask_dir: str = "video_masks") -> tuple[torch.Tensor, torch.Tensor]:
    """(conditioning float mask [1, seq_len], loss mask bool [1, seq_len]) of one item collated as a batch of 1,
    as flexible.py l. 505-519 computes them for a `type: mask` condition with probability 1."""
    latents = item["video_latents"]["latents"].unsqueeze(0)  # default collate: [1, C, F, H, W]
    b, _, f, h, w = latents.shape
    seq_len = f * h * w  # patchify "b c f h w -> b (f h w) c"
    mask = (item[mask_dir]["mask"].unsqueeze(0).reshape(b, seq_len) > 0.5).float()
    loss_mask = torch.ones(b, seq_len, dtype=torch.bool) & (mask == 0)
    return mask, loss_mask


def patchify(latents: torch.Tensor) -> torch.Tensor:
    """ltx-core VideoLatentPatchifier(patch_size=1).patchify of one [C, F, H, W]: [F*H*W, C]."""
    c = latents.shape[0]
    return latents.permute(1, 2, 3, 0).reshape(-1, c)


def upstream_video_mask(mask_file: Path, latent_f: int, latent_h: int, latent_w: int, scale: int = 32,
                        time: int = 8) -> torch.Tensor:
    """process_videos.py `compute_video_masks` l. 967-1001 for one mask file (default 32x32x8 VAE factors)."""
    from PIL import Image

    pixel_h, pixel_w, pixel_f = latent_h * scale, latent_w * scale, (latent_f - 1) * time + 1
    if mask_file.suffix.lower() in {".png", ".jpg", ".jpeg"}:
        img = torch.from_numpy(np.asarray(Image.open(mask_file).convert("RGB"))).permute(2, 0, 1).float() / 255
        img = img.mean(dim=0, keepdim=True)  # to_tensor(...).mean(dim=0, keepdim=True)
        img = torch.nn.functional.interpolate(img.unsqueeze(0), size=(pixel_h, pixel_w), mode="bilinear",
                                              antialias=True).squeeze(0)  # tv_resize
        mask_pixels = img.expand(pixel_f, -1, -1)
    else:
        with av.open(str(mask_file)) as container:  # video_utils.read_video: rgb24 / 255, [F, C, H, W]
            frames = [fr.to_ndarray(format="rgb24") for fr in itertools.islice(container.decode(video=0), pixel_f)]
        frames = torch.from_numpy(np.stack(frames)).float().div(255.0).permute(0, 3, 1, 2)
        frames = frames[:pixel_f].mean(dim=1)
        mask_pixels = torch.nn.functional.interpolate(frames.unsqueeze(1), size=(pixel_h, pixel_w),
                                                      mode="nearest").squeeze(1)
    mask_latent = torch.nn.functional.avg_pool2d(mask_pixels.unsqueeze(1), kernel_size=scale).squeeze(1)
    pad_f = (time - mask_latent.shape[0] % time) % time
    if pad_f > 0:
        mask_latent = torch.nn.functional.pad(mask_latent, (0, 0, 0, 0, 0, pad_f))
    mask_latent = mask_latent.reshape(-1, time, mask_latent.shape[1], mask_latent.shape[2]).amax(dim=1)[:latent_f]
    return (mask_latent > 0.5).float()


def read_dataset_file(path: Path) -> tuple[set[str], list[dict], list[dict[str, Path]]]:
    """(detect_dataset_columns, rows, every row's paths resolved as _load_paths_from_dataset does)."""
    assert path.suffix in {".csv", ".json", ".jsonl"}  # _validate_dataset_file
    lines = path.read_text(encoding="utf-8").splitlines()
    columns = set(json.loads(lines[0]).keys())
    rows = [json.loads(line) for line in lines]
    data_root = path.parent
    paths = [{c: data_root / Path(r[c].strip()) for c in r if c != "caption"} for r in rows]
    return columns, rows, paths


# --- (a) masks in the ltx-trainer export ------------------------------------------------------------------------

TRAINER_SOURCES = {"conditions": "conditions", "latents": "video_latents", "audio_latents": "audio_latents",
                   "reference_audio_latents": "reference_audio_latents", "video_masks": "video_masks"}
"""flexible.py get_data_sources for video {latents_dir: latents, conditions: [mask video_masks]}, audio
{latents_dir: audio_latents, conditions: [reference reference_audio_latents]}."""


def test_face_masks_read_back_as_the_trainers_mask_condition(encoded: Recipe, tmp_path: Path) -> None:
    from ltxa_data.cli import main

    out = tmp_path / "export"
    recipe = str(encoded.base_dir / "recipe.yaml")
    assert main(["export", "ltx-trainer", str(out), "--recipe", recipe, "--video-masks", "face"]) == 0
    samples = _samples(encoded)
    pairs = read_frame(encoded.manifests_dir, "pairs", ok_only=True)
    seen = 0
    for (split,), keys in pairs.group_by("split"):
        root = out / split / ".precomputed"
        assert sorted(p.stem for p in (root / "video_masks").glob("*.pt")) == sorted(keys["key"].to_list())
        items = precomputed_dataset(out / split, TRAINER_SOURCES)
        assert len(items) == keys.height, "every key pairs with its mask"
        for item in items:
            lat, key = item["video_latents"], item["key"]
            m = item["video_masks"]["mask"]
            assert set(item["video_masks"]) == {"mask"}
            assert m.dtype == torch.float32 and tuple(m.shape) == tuple(lat["latents"].shape[1:]) == (16, 2, 2)
            assert set(m.unique().tolist()) <= {0.0, 1.0}
            face = _npy(samples[key]["face_mask_latent.npy"]).astype(bool)
            boxes = np.asarray(json.loads(samples[key]["face_boxes.json"]), float)
            assert np.array_equal(face, latent_face_mask(boxes, encoded.targets.size).astype(bool))
            cond, loss = mask_condition(item)
            # polarity: face cells are generated (0, in the loss), all others conditioning (1, kept clean)
            assert torch.equal(cond[0].bool(), torch.from_numpy(~face).flatten())
            assert torch.equal(loss[0], torch.from_numpy(face).flatten())
            # token t = (f, h, w) of the patchified latents is the mask's cell (f, h, w)
            f, h, w = np.argwhere(face)[0]
            t = (f * m.shape[1] + h) * m.shape[2] + w
            assert torch.equal(patchify(lat["latents"])[t], lat["latents"][:, f, h, w]) and cond[0, t] == 0
            # every face pixel of every frame lies in a generated cell of the latent frame covering it
            pix = pixel_face_mask(boxes, encoded.targets.size)
            for k, group in enumerate(latent_frame_groups(len(boxes))):
                gen = (m[k].numpy() == 0).repeat(LATENT_CELL, 0).repeat(LATENT_CELL, 1)
                assert not (pix[list(group)] & ~gen).any(), (key, k)
            seen += 1
    assert seen == pairs.height
    exported = json.loads((out / "export.json").read_text())
    assert exported["video_masks"] == "face" and "video_masks" in exported["folders"]

    # everything: all tokens generated; then none: the masks of the earlier run are removed
    assert main(["export", "ltx-trainer", str(out), "--recipe", recipe, "--video-masks", "everything"]) == 0
    for split in {s for (s,), _ in pairs.group_by("split")}:
        for item in precomputed_dataset(out / split, TRAINER_SOURCES):
            cond, loss = mask_condition(item)
            assert not cond.any() and loss.all()
    assert main(["export", "ltx-trainer", str(out), "--recipe", recipe]) == 0
    assert not list(out.glob("*/.precomputed/video_masks/*.pt")) and not list(out.glob("*/.precomputed/video_masks"))


def test_expanded_keys_link_the_first_keys_mask(tmp_path: Path) -> None:
    """K = 2 with `expand`: the second key's mask links to the first's; a sample without a face track is refused
    for `face` and gets an all-generated mask for `everything`."""
    from ltxa_data.ltx.encode import audio_latent_dict, saved_bytes, video_latent_dict
    from ltxa_data.ltx.export import FOLDERS, _export_sample

    root = tmp_path / "train" / ".precomputed"
    for folder in (*FOLDERS, "video_masks"):
        (root / folder).mkdir(parents=True)
    torch.save({"video_prompt_embeds": torch.zeros(1), "audio_prompt_embeds": torch.zeros(1),
                "prompt_attention_mask": torch.ones(1)}, root / "caption_conditions.pt")
    face = np.zeros((16, 2, 2), np.uint8)
    face[3:, 1, 0] = 1
    buf = io.BytesIO()
    np.save(buf, face)
    members = {"latents.pth": saved_bytes(video_latent_dict(torch.randn(128, 16, 2, 2).bfloat16())),
               "audio_latents.pth": saved_bytes(audio_latent_dict(torch.randn(8, 122, 16), 4.84)),
               "reference_audio_latents.pth": saved_bytes(audio_latent_dict(torch.randn(2, 8, 88, 16), 3.5)),
               "face_mask_latent.npy": buf.getvalue()}
    assert _export_sample(root, "k", members, "expand", tmp_path / "x.tar", "face") == ["k_r0", "k_r1"]
    assert os.readlink(root / "video_masks" / "k_r1.pt") == "k_r0.pt"
    items = precomputed_dataset(tmp_path / "train", TRAINER_SOURCES)
    assert len(items) == 2
    for item in items:
        assert torch.equal(item["video_masks"]["mask"], torch.from_numpy(1 - face).float())
    del members["face_mask_latent.npy"]
    with pytest.raises(SystemicError, match=r"k in .*x\.tar has no face_mask_latent\.npy"):
        _export_sample(root, "k", members, "first", tmp_path / "x.tar", "face")
    _export_sample(root, "k", members, "first", tmp_path / "x.tar", "everything")
    got = torch.load(root / "video_masks" / "k.pt", weights_only=True)["mask"]
    assert tuple(got.shape) == (16, 2, 2) and not got.any()


# --- (b) the dataset export -------------------------------------------------------------------------------------


def test_dataset_export_is_what_process_dataset_reads(built: Recipe, tmp_path: Path) -> None:
    from ltxa_data.cli import main

    out = tmp_path / "dataset"
    recipe = str(built.base_dir / "recipe.yaml")
    assert main(["export", "ltx-trainer-dataset", str(out), "--recipe", recipe, "--video-masks", "face"]) == 0
    samples = _samples(built)
    pairs = read_frame(built.manifests_dir, "pairs", ok_only=True)
    size = built.targets.size
    assert size == 512
    n_masked = 0
    for (split,), keys in pairs.group_by("split"):
        dataset = out / split / "dataset.jsonl"
        columns, rows, paths = read_dataset_file(dataset)
        assert columns == {"caption", "video", "audio", "reference_audio", "video_mask"} and columns <= KNOWN_ROLES
        assert all(set(r) == columns for r in rows)
        assert sorted(r["video"] for r in rows) == sorted(f"{k}.mp4" for k in keys["key"].to_list())
        for row, p in zip(rows, paths, strict=True):
            assert row["caption"] == built.export.caption
            assert all(v.is_file() for v in p.values()), p
            key = Path(row["video"]).stem
            # outputs are named after the video path: .precomputed/<folder>/<key>.pt, as `export ltx-trainer`
            assert p["video"].relative_to(dataset.parent).with_suffix(".pt") == Path(f"{key}.pt")
            assert p["video"].read_bytes() == samples[key]["mp4"]
            with av.open(str(p["video"])) as c:
                vs = c.streams.video[0]
                assert (vs.width, vs.height, vs.frames) == (512, 512, 121)
                assert sum(1 for _ in c.decode(video=0)) == 121
                assert not c.streams.audio, "the target audio comes from the audio column"
            audio, sr = sf.read(p["audio"])
            assert (sr, audio.shape) == (16_000, (77_440, 2))
            ref, sr = sf.read(p["reference_audio"])
            assert sr == 16_000 and ref.shape == (56_000, 2)
            assert p["reference_audio"].read_bytes() == samples[key]["ref0.wav"]
            # the mask video, reduced as process_dataset.py does, is the face mask: face generated (0)
            got = upstream_video_mask(p["video_mask"], 16, size // 32, size // 32)
            boxes = np.asarray(json.loads(samples[key]["face_boxes.json"]), float)
            face = latent_face_mask(boxes, size).astype(bool)
            assert np.array_equal(face, _npy(samples[key]["face_mask_latent.npy"]).astype(bool))
            assert torch.equal(got, torch.from_numpy(~face).float()), key
            assert 0 < face.sum() < face.size
            n_masked += 1
    assert n_masked == pairs.height
    assert json.loads((out / "export.json").read_text())["format"] == "ltx-trainer-dataset"

    # a damaged file is repaired by a rerun; `expand` replaces `first`'s files, `everything` the mask videos
    split = pairs["split"][0]
    key = pairs.filter(pl.col("split") == split)["key"][0]
    (out / split / f"{key}.mp4").write_bytes(b"broken")
    assert main(["export", "ltx-trainer-dataset", str(out), "--recipe", recipe, "--references", "expand",
                 "--video-masks", "everything"]) == 0
    _, rows, paths = read_dataset_file(out / split / "dataset.jsonl")
    assert (out / split / f"{key}_r0.mp4").read_bytes() == samples[key]["mp4"]
    assert not (out / split / f"{key}.mp4").exists() and not list(out.glob("*/masks/*.mp4"))
    assert all(r["video_mask"] == "mask_generate_all.png" and r["video"].endswith("_r0.mp4") for r in rows)
    assert not upstream_video_mask(paths[0]["video_mask"], 16, 16, 16).any(), "everything: all generated"
    assert main(["export", "ltx-trainer-dataset", str(out), "--recipe", recipe, "--video-masks", "none"]) == 0
    columns, _, _ = read_dataset_file(out / split / "dataset.jsonl")
    assert columns == {"caption", "video", "audio", "reference_audio"}
    assert not list(out.glob("*/mask_generate_all.png")) and not list(out.glob("*/*_r0.mp4"))


def test_dataset_export_expands_references_into_rows_of_their_own(tmp_path: Path) -> None:
    """K = 2 with `expand`: two rows, each with its own video path (a link: process_dataset.py names outputs
    after it) and its own reference; one target wav and one mask video shared."""
    from ltxa_data.ltx.export import _dataset_sample

    face = np.zeros((16, 16, 16), np.uint8)
    for k in range(16):  # a face that moves: each latent frame's cells differ from its neighbours'
        face[k, 4 + k % 3: 8 + k % 3, k % 16: k % 16 + 3] = 1
    buf = io.BytesIO()
    np.save(buf, face)
    members = {"mp4": b"video", "wav": b"target", "ref0.wav": b"r0", "ref1.wav": b"r1",
               "face_mask_latent.npy": buf.getvalue()}
    rows, files = _dataset_sample(tmp_path, "k", members, "expand", "face", "a caption", 512, tmp_path / "x.tar")
    assert [r["video"] for r in rows] == ["k_r0.mp4", "k_r1.mp4"]
    assert [r["reference_audio"] for r in rows] == ["references/k_r0.wav", "references/k_r1.wav"]
    assert {r["audio"] for r in rows} == {"audio/k_r0.wav"} and {r["video_mask"] for r in rows} == {"masks/k_r0.mp4"}
    assert os.readlink(tmp_path / "k_r1.mp4") == "k_r0.mp4" and (tmp_path / "k_r1.mp4").read_bytes() == b"video"
    assert (tmp_path / "references" / "k_r1.wav").read_bytes() == b"r1"
    assert files == {"k_r0.mp4", "k_r1.mp4", "audio/k_r0.wav", "references/k_r0.wav", "references/k_r1.wav",
                     "masks/k_r0.mp4"}
    got = upstream_video_mask(tmp_path / "masks" / "k_r0.mp4", 16, 16, 16)
    assert torch.equal(got, torch.from_numpy(1 - face).float())
    with pytest.raises(SystemicError, match="needs the media"):
        _dataset_sample(tmp_path, "k", {"wav": b"", "ref0.wav": b""}, "first", "none", "c", 512, tmp_path / "x.tar")


def test_dataset_export_refuses_stacked_references(built: Recipe, tmp_path: Path) -> None:
    from ltxa_data.ltx.export import export_ltx_trainer_dataset

    with pytest.raises(SystemicError, match="stack has no meaning"):
        export_ltx_trainer_dataset(built, tmp_path / "o", references="stack")
    assert not (tmp_path / "o").exists()


def test_an_out_holding_the_other_kind_of_export_is_refused(built: Recipe, tmp_path: Path) -> None:
    """Both exports end in OUT/<split>/.precomputed: one kind may not write into the other's OUT."""
    from ltxa_data.ltx.export import export_ltx_trainer, export_ltx_trainer_dataset

    out = tmp_path / "o"
    export_ltx_trainer_dataset(built, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(SystemicError, match=r"export ltx-trainer: .* holds an ltx-trainer-dataset export; both use"):
        export_ltx_trainer(built, out, conditions=tmp_path / "none.pt")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing written
    export_ltx_trainer_dataset(built, out)  # its own kind again: fine
    trainer = tmp_path / "t"
    (trainer / "train" / ".precomputed" / "latents").mkdir(parents=True)
    (trainer / "export.json").write_text(json.dumps({"build": "x", "references": "first", "keys": {}}))
    with pytest.raises(SystemicError, match="holds an ltx-trainer export"):
        export_ltx_trainer_dataset(built, trainer)
    assert not (trainer / "train" / "dataset.jsonl").exists()


def test_face_masks_are_refused_before_anything_is_written(built: Recipe, tmp_path: Path) -> None:
    """A build where some samples have no face track: `video_masks: face` is refused up front, naming them."""
    import shutil

    from ltxa_data.ltx.export import export_ltx_trainer_dataset
    from ltxa_data.recipe import load_recipe

    from .conftest import write_recipe

    m = tmp_path / "manifests"
    shutil.copytree(built.manifests_dir, m, ignore=shutil.ignore_patterns(".state"))
    shards = pl.read_parquet(m / "shards.parquet")
    bare = shards["key"][0]
    shards = shards.with_columns(pl.when(pl.col("key") == bare)
                                 .then(pl.col("members").list.eval(pl.element().filter(
                                     ~pl.element().str.ends_with(".face_mask_latent.npy"))))
                                 .otherwise(pl.col("members")).alias("members"))
    shards.write_parquet(m / "shards.parquet")
    data = json.loads(json.dumps(built.model_dump(mode="json", exclude={"base_dir"})))
    data["output"] = {"dir": str(built.output_dir), "manifests": str(m)}
    recipe = load_recipe(write_recipe(tmp_path / "r", data))
    out = tmp_path / "dataset"
    with pytest.raises(SystemicError, match=rf"1 of {shards.height} samples have no face_mask_latent.npy \(e\.g\. "
                                            rf"{bare}\)"):
        export_ltx_trainer_dataset(recipe, out, video_masks="face")
    assert not out.exists(), "nothing written"
    assert export_ltx_trainer_dataset(recipe, out, video_masks="everything")
