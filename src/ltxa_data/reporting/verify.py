"""`ltxa-data verify`: check the invariants of what a build wrote; every violation is reported."""

from __future__ import annotations

import io
import json
from collections import defaultdict

import av
import polars as pl
import pyarrow.parquet as pq
import soundfile as sf

from ..analysis.faces import LATENT_CELL, faces_outside, latent_frame_groups
from ..gates import REFERENCE_GATES, TARGET_GATES, record_problems, required_gates
from ..ltx.encode import LATENT_MEMBERS
from ..recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, Recipe
from ..removals import Removals, embedder_of, removals_path
from ..schemas import ADDED_TABLES, TABLES, SchemaError, conform, missing_columns
from ..shard_format import REUSE_DIR, ShardError, iter_sample_jsons, read_shard
from ..stages.duplicates import clip_of, copies_skipped
from ..stages.scenes import crosses_cut
from ..storage import table_path
from .verify_pairs import check_matches, check_pairs, check_swap_eval

TARGET_SAMPLES = TARGET_FRAMES * AUDIO_SAMPLE_RATE // TARGET_FPS  # 77,440


def verify_build(recipe: Recipe, check_media: bool = True) -> list[str]:
    """All invariant violations of a finished build (empty when it is sound)."""
    problems: list[str] = []
    tables: dict[str, pl.DataFrame] = {}
    rebuild = ("run `ltxa-data build` on this recipe to bring it up to date (only the stages whose tables changed "
               "run again)")
    for name in TABLES:
        p = table_path(recipe.manifests_dir, name)
        if not p.exists():
            problems.append(f"{name}: table missing ({p})" + (f": made by an earlier version of ltxa_data; {rebuild}"
                                                               if name in ADDED_TABLES else ""))
            continue
        raw = pq.read_table(p)
        older = missing_columns(name, raw.schema)
        if older:  # not cross-checked: its new columns would read as violations
            problems.append(f"{name}: written by an earlier version of ltxa_data (no {', '.join(older)}); {rebuild}")
            continue
        try:
            conform(name, raw)
        except SchemaError as e:
            problems.append(str(e))  # reported, and the table is still cross-checked below
        if raw.schema.names == TABLES[name].columns:
            tables[name] = pl.from_arrow(raw)  # type: ignore[assignment]
    if {"turns", "videos"} <= tables.keys():
        problems += check_turns(tables["turns"], tables["videos"])
    if "identities" in tables:
        problems += check_identities(tables["identities"])
    if {"targets", "scenes"} <= tables.keys():
        problems += check_targets_within_shots(tables["targets"], tables["scenes"])
    if "targets" in tables:
        problems += check_face_crops(tables["targets"], recipe.targets.face.required)
        problems += check_face_gates(tables["targets"], recipe)
    if {"targets", "identity_faces"} <= tables.keys():
        problems += check_identity_faces(tables["identity_faces"], tables["targets"])
    if "pairs" in tables:
        problems += check_videos_held_out(tables["pairs"])
    if {"pairs", "videos"} <= tables.keys():
        problems += check_sources(tables["pairs"], tables["videos"])
    if {"pairs", "duplicates", "targets"} <= tables.keys():
        problems += check_duplicates(tables["pairs"], tables["duplicates"], tables["targets"],
                                     recipe.duplicates.targets)
    if {"swap_eval", "pairs", "references"} <= tables.keys():
        problems += check_swap_eval(tables["swap_eval"], tables["pairs"], tables["references"], recipe,
                                    tables.get("attributes"))
    if {"pairs", "attributes", "references"} <= tables.keys():
        problems += check_matches(tables["pairs"], tables["attributes"], tables["references"], recipe)
    if {"pairs", "targets", "references"} <= tables.keys():
        problems += check_pairs(tables["pairs"], tables["targets"], tables["references"], recipe)
        problems += check_references(tables["pairs"], tables["references"], recipe)
    if "shards" in tables:
        problems += check_shards(recipe, tables["shards"], tables.get("pairs"), check_media)
    if (recipe.output_dir / REUSE_DIR).exists():
        problems.append(f"{recipe.output_dir / REUSE_DIR}: left by an interrupted shard stage (old shards' bytes; the "
                        "next build removes it)")
    problems += check_removals(recipe)
    return problems


def check_removals(recipe: Recipe) -> list[str]:
    """Nothing derived from a removed video or person remains (`ltxa-data remove`): no value of any manifest
    table or partition state names a removed video (ids of turns, voices, targets, references and samples
    start with their video's id), path, fingerprint or identity; no voice is a removed person's (cosine >=
    identify.similarity_threshold, same embedder); no fingerprint file, shard member, sample lineage,
    cached condition or report file derives from one."""
    import numpy as np
    import pyarrow as pa


    removals = Removals.load(recipe)
    if not removals:
        return []
    ids, paths = removals.video_ids, removals.paths
    exact = removals.fingerprints | paths | removals.identity_ids
    problems: list[str] = []

    def traces(df: pl.DataFrame, where: str) -> None:
        for name, dtype in df.schema.items():
            col = df.get_column(name)
            if dtype == pl.List(pl.String):
                col = col.explode()
            elif dtype != pl.String:
                continue
            col = col.drop_nulls()
            hit = col.filter(col.str.slice(0, 16).is_in(list(ids)) | col.is_in(list(exact)))
            if hit.len():
                problems.append(f"{where}: column {name} still names removed items ({hit.len()} value(s), e.g. "
                                f"{hit[0]!r})")

    m = recipe.manifests_dir
    for p in sorted(m.rglob("*.parquet")):
        if p != removals_path(recipe):
            traces(pl.read_parquet(p), str(p.relative_to(m)))
    words = ids | paths
    for p in sorted(f for f in (m / ".state").rglob("*") if f.is_file() and f.suffix != ".parquet"):
        text = p.read_text(encoding="utf-8", errors="replace")  # markers, plans, the executors' watch files
        if any(w in text for w in words):
            problems.append(f"{p.relative_to(m)}: names a removed video or file")
    for p in sorted(recipe.report_dir.glob("*.html")) if recipe.report_dir.exists() else []:
        text = p.read_text(encoding="utf-8", errors="replace")
        if any(w in text for w in words):
            problems.append(f"{p}: names a removed video or file (write the report again)")
    # The hash files, the pictures the scenes stage leaves for them, the clips the targets stage leaves for shards.
    for folder in ("fingerprints", "scenes", "targets"):
        for p in sorted((recipe.output_dir / folder).glob("*.arrow")):
            traces(pl.from_arrow(pa.ipc.open_file(pa.memory_map(str(p))).read_all().select(["video_id"])),  # type: ignore[arg-type]
                   f"{folder} file {p.name}")
    voices_path = table_path(m, "voices")
    removed, _ = removals.voices(embedder_of(recipe))
    if voices_path.exists() and len(removed):
        voices = pl.read_parquet(voices_path).filter(pl.col("status") == "ok")
        if voices.height:
            sims = np.asarray(voices.get_column("embedding").to_list(), np.float32) @ removed.T
            for i in np.flatnonzero(sims.max(axis=1) >= recipe.identify.similarity_threshold):
                problems.append(f"voice {voices['voice_id'][int(i)]} is a removed person's voice (cosine "
                                f"{sims[i].max():.3f})")
    root = recipe.shards_dir
    for tar in sorted(root.rglob("*.tar")) if root.exists() else []:
        for name, meta in iter_sample_jsons(tar):
            if name[:16] in ids:
                problems.append(f"shard {tar.relative_to(root)}: member {name} derives from a removed video")
            elif meta is not None:
                lineage = meta.get("lineage") or {}
                sources = [lineage.get("target_video") or {}, *(lineage.get("reference_videos") or [])]
                if {s.get("fingerprint") for s in sources} & removals.fingerprints:
                    problems.append(f"shard {tar.relative_to(root)}: sample {name} has a removed source")
    for folder in (recipe.output_dir / ".cache" / "conditions", recipe.report_dir):
        if folder.exists():
            problems += [f"{p}: derives from a removed video" for p in sorted(folder.rglob("*")) if p.name[:16] in ids]
    return problems


def check_turns(turns: pl.DataFrame, videos: pl.DataFrame, tolerance_s: float = 0.01) -> list[str]:
    """Turns lie inside their video; a turn not marked `overlap` shares no time with another speaker."""
    problems = []
    duration = dict(zip(videos["video_id"].to_list(), videos["duration_s"].to_list(), strict=True))
    ok = turns.filter(pl.col("status") == "ok").sort("video_id", "start_s")
    for (video_id,), group in ok.group_by("video_id", maintain_order=True):
        rows = group.select("turn_id", "speaker", "start_s", "end_s", "overlap").rows()
        for turn_id, _, start, end, _ in rows:
            # The audio track may outlast the video's duration by up to an audio frame (AAC: 64 ms at 16 kHz).
            if not 0 <= start < end <= (duration.get(video_id) or float("inf")) + 0.1:
                problems.append(f"turn {turn_id}: [{start}, {end}) is not inside its video")
        active: list[tuple] = []  # turns that have started and not yet ended (a sweep over start times)
        for turn in rows:
            _, speaker, start, end, _ = turn
            active = [a for a in active if a[3] - tolerance_s > start]
            for a in active:
                if a[1] != speaker and min(end, a[3]) - start > tolerance_s:
                    problems += [f"turn {x[0]} is not marked overlap but shares time with {y[0]}"
                                 for x, y in ((a, turn), (turn, a)) if not x[4]]
            active.append(turn)
    return problems


def check_targets_within_shots(targets: pl.DataFrame, scenes: pl.DataFrame) -> list[str]:
    """No target shows frames of two shots; every target's video had its cuts detected."""

    cuts = dict(zip(scenes["video_id"].to_list(), scenes["cut_s"].to_list(), strict=True))
    ok_scenes = set(scenes.filter(pl.col("status") == "ok")["video_id"].to_list())
    problems = []
    for t in targets.filter(pl.col("status") == "ok").iter_rows(named=True):
        if t["video_id"] not in ok_scenes:
            problems.append(f"target {t['target_id']}: its video has no scene detection")
        elif crosses_cut(t["start_s"], (t["start_frame"] + t["num_frames"] - 1) / TARGET_FPS, cuts[t["video_id"]]):
            problems.append(f"target {t['target_id']} crosses a scene cut ({cuts[t['video_id']]})")
    return problems


def check_face_crops(targets: pl.DataFrame, required: bool = False) -> list[str]:
    """Every ok target with a face track (all of them when tracking is `required`) keeps its face in
    its crop: a face crop is square and holds each tracked box; a centre crop holds each box's centre."""

    problems = []
    for t in targets.filter(pl.col("status") == "ok").iter_rows(named=True):
        x, y, w, h = t["crop_x"], t["crop_y"], t["crop_w"], t["crop_h"]
        if not t["face_track"]:
            if required or t["crop_mode"] == "face":
                problems.append(f"target {t['target_id']}: no face track")
            continue
        if t["crop_mode"] != "face":
            if faces_outside(t["face_track"], (x, y, w, h)):
                problems.append(f"target {t['target_id']}: the face leaves its centre crop {[x, y, w, h]}")
            continue
        if w != h:
            problems.append(f"target {t['target_id']}: face crop {[x, y, w, h]} is not square")
            continue
        for _, fx, fy, fw, fh in t["face_track"]:
            if fx < x - 1 or fy < y - 1 or fx + fw > x + w + 1 or fy + fh > y + h + 1:
                problems.append(f"target {t['target_id']}: face box {[fx, fy, fw, fh]} leaves its crop {[x, y, w, h]}")
                break
    return problems


def check_face_gates(targets: pl.DataFrame, recipe: Recipe) -> list[str]:
    """Every ok target carries a passed record of each gate the recipe turns on (`gates.record_problems`: verdicts
    that follow from their values, thresholds that are the recipe's, values that are the row's own columns), a
    face that agrees with its identity's when that gate is on, and an audio shift that is its sync offset, or 0."""
    cfg = recipe.targets
    required = required_gates(TARGET_GATES, recipe)
    problems = []
    for t in targets.filter(pl.col("status") == "ok").iter_rows(named=True):
        tid = t["target_id"]
        problems += record_problems(t["gates"], required, recipe, f"target {tid}", t)
        if cfg.face_identity.check and (t["face_agrees"] is not True or t["face_descriptor"] is None):
            problems.append(f"target {tid}: no face descriptor, or a face that does not agree with its identity's")
        if t["sync_offset"] is None:
            continue
        if t["audio_shift_s"] not in (0.0, t["sync_offset"] / TARGET_FPS):
            problems.append(f"target {tid}: audio shifted {t['audio_shift_s']} s, not by its offset")
        elif t["audio_shift_s"] and not cfg.active_speaker.shift_audio:
            problems.append(f"target {tid}: audio shifted {t['audio_shift_s']} s though shift_audio is off")
    return problems


def check_identity_faces(faces: pl.DataFrame, targets: pl.DataFrame) -> list[str]:
    """Each identity's agreement counts the targets the face-identity check described and kept."""
    described = targets.filter(pl.col("face_agrees").is_not_null()).group_by("identity_id").agg(
        pl.len().alias("n"), pl.col("face_agrees").sum().alias("kept"))
    want = {r[0]: (r[1], r[2]) for r in described.iter_rows()}
    have = {r[0]: (r[1], r[2]) for r in faces.select("identity_id", "targets", "agreeing").iter_rows()}
    return [f"identity_faces: {i} counts {have.get(i)} (targets, agreeing), the targets table {want.get(i)}"
            for i in sorted(set(want) | set(have)) if want.get(i) != have.get(i)]


def _splits_fed(pairs: pl.DataFrame, group: dict[str, str] | None = None) -> list[tuple[str, list[str]]]:
    """(video, or its `group`, sorted splits) for each one that ok pairs use, as a target's or a reference's
    video, in more than one split. With `group`, only the videos it maps."""
    ok = pairs.filter(pl.col("status") == "ok")
    used = pl.concat([ok.select(pl.col("target_video_id").alias("video_id"), "split"),
                      ok.select(pl.col("reference_video_ids").alias("video_id"), "split").explode("video_id")])
    if group is not None:
        used = used.filter(pl.col("video_id").is_in(list(group))).with_columns(
            pl.col("video_id").replace_strict(group, return_dtype=pl.String))
    spread = used.unique().group_by("video_id").agg(pl.col("split").sort()).filter(pl.col("split").list.len() > 1)
    return [(r["video_id"], r["split"]) for r in spread.sort("video_id").iter_rows(named=True)]


def _references_sharing(pairs: pl.DataFrame, group: dict[str, str]) -> list[tuple[str, str]]:
    """(pair key, group) for each ok pair with a reference from a video of its target video's `group`."""
    out = []
    for p in pairs.filter(pl.col("status") == "ok").iter_rows(named=True):
        own = group.get(p["target_video_id"])
        if own is not None and any(group.get(v) == own for v in p["reference_video_ids"] or []):
            out.append((p["key"], own))
    return out


def check_videos_held_out(pairs: pl.DataFrame) -> list[str]:
    """No source video feeds two splits, as a target's or as a reference's source."""
    return [f"video {v} feeds splits {splits}" for v, splits in _splits_fed(pairs)]


def check_sources(pairs: pl.DataFrame, videos: pl.DataFrame) -> list[str]:
    """Where sources are known (input.source_regex), no reference shares its target's source."""
    source = dict(videos.filter(pl.col("source").is_not_null()).select("video_id", "source").iter_rows())
    return [f"pair {key}: a reference comes from the target's source {own!r}"
            for key, own in _references_sharing(pairs, source)]


def check_duplicates(pairs: pl.DataFrame, duplicates: pl.DataFrame, targets: pl.DataFrame,
                     policy: str = "all") -> list[str]:
    """Copies of one clip: each group has its size and one representative; no group feeds two splits (as a
    target's or a reference's video); no reference comes from a copy of its target's video; with
    `duplicates.targets: one`, no target comes from a copy that is not its group's representative."""

    problems = []
    ok = duplicates.filter(pl.col("status") == "ok")
    for (gid,), g in ok.group_by("group_id", maintain_order=True):
        if g.height != g["group_size"][0] or g.height < 2 or g["representative"].sum() != 1:
            problems.append(f"duplicate group {gid}: {g.height} members listed (size {g['group_size'][0]}), "
                            f"{g['representative'].sum()} representatives")
    clips = clip_of(duplicates)
    problems += [f"duplicate group {g} feeds splits {splits}" for g, splits in _splits_fed(pairs, clips)]
    problems += [f"pair {key}: a reference comes from a copy of its target's video (duplicate group {g})"
                 for key, g in _references_sharing(pairs, clips)]
    if policy == "one":
        skipped = copies_skipped(duplicates)
        problems += [f"target {t}: from video {v}, a copy that is not its group's representative "
                     "(duplicates.targets one)" for t, v in targets.filter(pl.col("status") == "ok")
                     .select("target_id", "video_id").iter_rows() if v in skipped]
    return problems


def near_duplicate_identities(recipe: Recipe, limit: int = 50) -> list[str]:
    """Identity pairs of different splits whose mean voices are at least
    `pairs.splits.near_duplicate_similarity` alike: possibly one person split in two (a leak). A
    report, not a violation: it is a similarity threshold, not a fact."""
    import faiss
    import numpy as np

    m = recipe.manifests_dir
    need = ("pairs", "identities", "voices")
    if not all(table_path(m, n).exists() for n in need):
        return []
    pairs, identities, voices = (pl.read_parquet(table_path(m, n)).filter(pl.col("status") == "ok") for n in need)
    split = dict(pairs.select("identity_id", "split").unique().iter_rows())
    emb = identities.select("voice_id", "identity_id").join(voices.select("voice_id", "embedding"), on="voice_id")
    emb = emb.filter(pl.col("identity_id").is_in(list(split)))
    if emb.height == 0:
        return []
    ids = sorted(split)
    index_of = {i: k for k, i in enumerate(ids)}
    vecs = np.array(emb["embedding"].to_list(), np.float32)
    cent = np.zeros((len(ids), vecs.shape[1]), np.float32)
    np.add.at(cent, [index_of[i] for i in emb["identity_id"].to_list()], vecs)
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(cent.shape[1])
    index.add(cent)
    sims, nbs = index.search(cent, min(len(ids), 16))
    threshold = recipe.pairs.splits.near_duplicate_similarity
    found = sorted({(float(s), ids[a], ids[b]) for a in range(len(ids)) for s, b in zip(sims[a], nbs[a], strict=True)
                    if b > a and s >= threshold and split[ids[a]] != split[ids[b]]}, reverse=True)
    return [f"identities {a} ({split[a]}) and {b} ({split[b]}) have mean voices {s:.3f} alike"
            for s, a, b in found[:limit]]


def check_identities(identities: pl.DataFrame) -> list[str]:
    """Cannot-link: two local speakers of one video are never one identity."""
    ok = identities.filter(pl.col("status") == "ok")
    shared = ok.group_by("video_id", "identity_id").agg(pl.col("voice_id").sort()).filter(
        pl.col("voice_id").list.len() > 1).sort("video_id")
    return [f"identity {r['identity_id']} holds {r['voice_id']}, local speakers of one video"
            for r in shared.iter_rows(named=True)]


def check_references(pairs: pl.DataFrame, references: pl.DataFrame, recipe: Recipe) -> list[str]:
    """Every reference an ok pair uses is ok and carries a passed record of every reference gate
    (`gates.record_problems`), and with normalisation its gain keeps the peak at or below the ceiling (and
    reaches the target loudness unless the ceiling bound it)."""
    cfg = recipe.references
    required = required_gates(REFERENCE_GATES, recipe)
    used = set(pairs.filter(pl.col("status") == "ok")["reference_ids"].explode().drop_nulls().to_list())
    problems = []
    for r in references.filter(pl.col("reference_id").is_in(sorted(used))).sort("reference_id").iter_rows(named=True):
        if r["status"] != "ok":
            problems.append(f"reference {r['reference_id']}: used by a pair but not ok")
            continue
        problems += record_problems(r["gates"], required, recipe, f"reference {r['reference_id']}", r)
        if cfg.normalize_lufs is None:
            continue
        if r["gain_db"] is None:
            problems.append(f"reference {r['reference_id']}: no gain recorded, normalize_lufs is set")
        elif r["peak_dbfs"] + r["gain_db"] > cfg.peak_ceiling_dbfs + 1e-6:
            problems.append(f"reference {r['reference_id']}: gain {r['gain_db']} dB lifts its peak "
                            f"{r['peak_dbfs']} dBFS above the ceiling {cfg.peak_ceiling_dbfs} dBFS")
        elif not r["gain_limited"] and abs(r["lufs"] + r["gain_db"] - cfg.normalize_lufs) > 0.01:
            problems.append(f"reference {r['reference_id']}: gain {r['gain_db']} dB does not bring "
                            f"{r['lufs']} LUFS to {cfg.normalize_lufs} LUFS")
    return problems


def check_shards(recipe: Recipe, index: pl.DataFrame, pairs: pl.DataFrame | None, check_media: bool) -> list[str]:
    """The index and the tars agree key for key; every sample's media has the exact contract."""
    problems = []
    ok = index.filter(pl.col("status") == "ok")
    expected: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in ok.iter_rows(named=True):
        expected[r["shard"]][r["key"]] = r
    root = recipe.shards_dir
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.tar")} if root.exists() else set()
    for extra in sorted(on_disk - expected.keys()):
        problems.append(f"shard {extra} is not in the index")
    pair_split = dict(zip(pairs["key"], pairs["split"], strict=True)) if pairs is not None else {}
    for shard, rows in sorted(expected.items()):
        path = root / shard
        if not path.exists():
            problems.append(f"shard {shard}: in the index but missing on disk")
            continue
        try:
            found = read_shard(path, with_data=check_media)
        except (ShardError, OSError) as e:
            problems.append(f"shard {shard}: unreadable tar ({e})")
            continue
        for key in sorted(rows.keys() - found.keys()):
            problems.append(f"shard {shard}: index key {key} not in the tar")
        for key in sorted(found.keys() - rows.keys()):
            problems.append(f"shard {shard}: tar key {key} not in the index")
        for key in sorted(rows.keys() & found.keys()):
            row, sample = rows[key], found[key]
            if sample["offset"] != row["offset"] or sorted(sample["files"]) != sorted(row["members"]):
                problems.append(f"shard {shard}: key {key} offset/members differ from the index")
            if not shard.startswith(f"{row['split']}/"):
                problems.append(f"shard {shard}: key {key} of split {row['split']} is in another split's folder")
            if pair_split and pair_split.get(key) != row["split"]:
                problems.append(f"shard {shard}: key {key} split {row['split']} != pairs split {pair_split.get(key)}")
            if check_media:
                problems += [f"shard {shard}: key {key}: {p}" for p in check_sample(sample["files"], recipe)]
    return problems


def check_sample(files: dict[str, tuple[str, bytes]], recipe: Recipe) -> list[str]:
    """A sample's media contract: target mp4, target wav, reference wavs, metadata."""
    problems = []
    by_ext = {ext: data for ext, data in files.values()}
    encoded = recipe.encode.backend == "ltx"
    media = recipe.encode.keep_media or not encoded
    for need in ("json", *(("mp4", "wav") if media else ())):
        if need not in by_ext:
            problems.append(f"missing .{need}")
    refs = sorted(ext for ext in by_ext if ext.startswith("ref") and ext.endswith(".wav"))
    if media and len(refs) != recipe.pairs.references_per_target:
        problems.append(f"{len(refs)} reference wavs, {recipe.pairs.references_per_target} expected")
    if encoded:
        problems += check_latents(by_ext, recipe)
    if "mp4" in by_ext:
        problems += _check_mp4(by_ext["mp4"], recipe.targets.size)
    if "wav" in by_ext:
        problems += _check_wav(by_ext["wav"], TARGET_SAMPLES, "target audio")
    for ext in refs:
        problems += _check_wav(by_ext[ext], round(recipe.references.duration_s * AUDIO_SAMPLE_RATE), ext)
    problems += _check_face_members(by_ext, recipe.targets.size)
    if "json" in by_ext:
        try:
            meta = json.loads(by_ext["json"])
            if meta.get("num_frames") != TARGET_FRAMES or meta.get("fps") != TARGET_FPS:
                problems.append("metadata frames/fps disagree with the contract")
        except json.JSONDecodeError as e:
            problems.append(f"metadata is not JSON ({e})")
    return problems


def check_latents(by_ext: dict[str, bytes], recipe: Recipe) -> list[str]:
    """The trainer's latent dicts: load with weights_only; video bf16 (or the recipe's dtype)
    [128, 16, S/32, S/32]; audio float32 [8, T, 16]; references float32 [K, 8, T', 16] with
    `variants` = K; sizes agree with the stored counts; every value finite."""
    import torch

    from ..ltx.loader import load_pth

    problems = [f"missing .{m}" for m in LATENT_MEMBERS if m not in by_ext]
    if problems:
        return problems
    try:
        video, audio, refs = (load_pth(by_ext[m]) for m in LATENT_MEMBERS)
    except Exception as e:
        return [f"latents do not load with torch.load(weights_only=True): {e}"]
    side = recipe.targets.size // 32
    checks = [
        ("latents", video, getattr(torch, recipe.encode.video_dtype), (128, (TARGET_FRAMES - 1) // 8 + 1, side, side),
         ("num_frames", "height", "width")),
        ("audio_latents", audio, torch.float32, None, ("num_time_steps", "frequency_bins")),
        ("reference_audio_latents", refs, torch.float32, None, ("num_time_steps", "frequency_bins")),
    ]
    for name, d, dtype, shape, counts in checks:
        z = d.get("latents") if isinstance(d, dict) else None
        if not isinstance(z, torch.Tensor):
            problems.append(f"{name}: no 'latents' tensor")
            continue
        if z.dtype != dtype:
            problems.append(f"{name}: dtype {z.dtype}, {dtype} expected")
        if shape is not None and tuple(z.shape) != shape:
            problems.append(f"{name}: shape {list(z.shape)}, {list(shape)} expected")
        if name != "latents":
            want_dims = 4 if name.startswith("reference") else 3
            if z.ndim != want_dims or z.shape[-3] != 8 or z.shape[-1] != 16:
                problems.append(f"{name}: shape {list(z.shape)}, {'[K, ' if want_dims == 4 else '['}8, T, 16] expected")
        if [d.get(c) for c in counts] != list(z.shape[-len(counts):]):
            problems.append(f"{name}: {', '.join(counts)} {[d.get(c) for c in counts]} disagree with the shape "
                            f"{list(z.shape)}")
        if not torch.isfinite(z.float()).all():
            problems.append(f"{name}: not finite")
        if z.untyped_storage().nbytes() != z.numel() * z.element_size():
            problems.append(f"{name}: stores {z.untyped_storage().nbytes()} bytes for {z.numel() * z.element_size()} "
                            "of latents (a view of a larger tensor was saved)")
    if isinstance(refs, dict) and isinstance(refs.get("latents"), torch.Tensor) and refs["latents"].ndim == 4:
        k = recipe.pairs.references_per_target
        if refs.get("variants") != refs["latents"].shape[0] or refs["latents"].shape[0] != k:
            problems.append(f"reference_audio_latents: {refs['latents'].shape[0]} references, variants "
                            f"{refs.get('variants')}, {k} expected")
    return problems


def _check_face_members(by_ext: dict[str, bytes], size: int) -> list[str]:
    """Face boxes and the latent face mask come together: 121 boxes in the frame, a [16, s/32, s/32] mask."""
    has = ["face_boxes.json" in by_ext, "face_mask_latent.npy" in by_ext]
    if not any(has):
        return []
    if not all(has):
        return ["face_boxes.json and face_mask_latent.npy must come together"]
    import numpy as np


    problems = []
    boxes = np.asarray(json.loads(by_ext["face_boxes.json"]), float)
    if boxes.shape != (TARGET_FRAMES, 4):
        problems.append(f"face boxes shape {boxes.shape}, {(TARGET_FRAMES, 4)} expected")
    elif (boxes[:, :2] < -1).any() or (boxes[:, :2] + boxes[:, 2:] > size + 1).any():
        problems.append("a face box leaves the output frame")
    mask = np.load(io.BytesIO(by_ext["face_mask_latent.npy"]), allow_pickle=False)
    want = (len(latent_frame_groups()), size // LATENT_CELL, size // LATENT_CELL)
    if mask.shape != want:
        problems.append(f"latent face mask shape {list(mask.shape)}, {list(want)} expected")
    return problems


def _check_mp4(data: bytes, size: int) -> list[str]:
    try:
        with av.open(io.BytesIO(data), "r") as c:
            vs = c.streams.video[0]
            n = sum(1 for p in c.demux(vs) if p.size)
            rate = vs.average_rate
            w, h = vs.codec_context.width, vs.codec_context.height
    except (av.FFmpegError, IndexError) as e:
        return [f"target mp4 unreadable ({e})"]
    out = []
    if n != TARGET_FRAMES:
        out.append(f"target video has {n} frames, {TARGET_FRAMES} expected")
    if (w, h) != (size, size):
        out.append(f"target video is {w}x{h}, {size}x{size} expected")
    if rate is None or abs(float(rate) - TARGET_FPS) > 1e-6:
        out.append(f"target video is {rate} fps, {TARGET_FPS} expected")
    return out


def _check_wav(data: bytes, samples: int, what: str) -> list[str]:
    try:
        info = sf.info(io.BytesIO(data))
    except RuntimeError as e:
        return [f"{what} unreadable ({e})"]
    out = []
    if info.samplerate != AUDIO_SAMPLE_RATE:
        out.append(f"{what} is {info.samplerate} Hz, {AUDIO_SAMPLE_RATE} expected")
    if info.channels != 2:
        out.append(f"{what} has {info.channels} channels, 2 expected")
    if info.frames != samples:
        out.append(f"{what} has {info.frames} samples, {samples} expected")
    return out
