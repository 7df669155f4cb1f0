"""shard: render each pair's media and write webdataset tar shards per split, with an index.

A sample is `{key}.json`, `{key}.mp4` (121 frames, 512x512, 25 fps), `{key}.wav` (the target's
audio, 16 kHz stereo, 77,440 samples) and `{key}.ref{i}.wav` (reference i, 16 kHz stereo, 3.5 s).
A face-tracked target adds `{key}.face_boxes.json` (per-frame face-mask boxes [121][x, y, w, h] in
output pixels: the tracked face grown by `targets.face.mask_scale`, clipped to the frame; the pixel
mask of frame i is `floor(x) <= col < ceil(x + w)`, `floor(y) <= row < ceil(y + h)`) and
`{key}.face_mask_latent.npy` (uint8 [16, 16, 16]: latent frame, row, column of 32x32 cells; 1 where
any pixel of a pixel frame the latent frame covers is face). See `ltxa_data.analysis.faces`.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import polars as pl

from .. import __version__, isolation
from ..analysis.audio_quality import apply_gain, integrated_lufs, mono_mix, peak_dbfs
from ..analysis.faces import frame_boxes, latent_face_mask
from ..analysis.splits import SPLITS
from ..gates import failure
from ..ltx.encode import CutSample, SampleEncoder, checkpoint_digest, prefetched
from ..media import encode_video, encode_wav, read_audio, read_frames
from ..memory import GIB, encode_memory, gpu_memory_total, plan_workers
from ..recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES
from ..shard_format import REUSE_DIR, ShardError, ShardWriter, read_members
from ..storage import frame_hash, table_path
from .base import Faults, Partition, Stage, StageResult, guarded, hash_buckets
from .scan import ok_videos
from .target_clips import ClipReader, making


def sample_rows(tables: dict[str, pl.DataFrame]) -> list[dict]:
    """Everything needed to render each ok pair, as plain dicts sorted by key."""
    videos = {v["video_id"]: v for v in ok_videos(tables["videos"]).select("video_id", "path", "rel_path").to_dicts()}
    targets = {t["target_id"]: t for t in tables["targets"].filter(pl.col("status") == "ok").to_dicts()}
    refs = {r["reference_id"]: r for r in tables["references"].filter(pl.col("status") == "ok").to_dicts()}
    out = []
    for p in tables["pairs"].filter(pl.col("status") == "ok").sort("key").to_dicts():
        t = targets[p["target_id"]]
        out.append(dict(
            key=p["key"], split=p["split"], identity_id=p["identity_id"], target_id=t["target_id"],
            video_id=t["video_id"], path=videos[t["video_id"]]["path"], rel_path=videos[t["video_id"]]["rel_path"],
            start_frame=t["start_frame"], crop=[t["crop_x"], t["crop_y"], t["crop_w"], t["crop_h"]],
            crop_mode=t["crop_mode"], crop_pad=t["crop_pad"], face_track=t["face_track"],
            audio_shift_s=t["audio_shift_s"] or 0.0, sync_score=t["sync_score"], sync_offset=t["sync_offset"],
            face_distance=t["face_distance"], lineage=sample_lineage(p), clip=t.get("clip_file"),
            references=[dict(reference_id=r, video_id=refs[r]["video_id"], path=videos[refs[r]["video_id"]]["path"],
                             rel_path=videos[refs[r]["video_id"]]["rel_path"],
                             **{c: refs[r][c] for c in REFERENCE_FIELDS}) for r in p["reference_ids"]],
        ))
    return out


def sample_lineage(pair: dict) -> dict:
    """A sample json's `lineage`, from its pairs row: the source files (path, path relative to the input
    root, content fingerprint) of the target's and the references' videos, the build's models, toolkit
    version and recipe hash (`ltxa_data.lineage`)."""
    refs = zip(pair["reference_video_ids"], pair["reference_paths"], pair["reference_rel_paths"],
               pair["reference_fingerprints"], strict=True)
    return dict(
        toolkit_version=pair["toolkit_version"], recipe_hash=pair["recipe_hash"], models=pair["models"],
        target_video=dict(video_id=pair["target_video_id"], path=pair["target_path"], rel_path=pair["target_rel_path"],
                          fingerprint=pair["target_fingerprint"]),
        reference_videos=[dict(video_id=v, path=path, rel_path=rel, fingerprint=fp) for v, path, rel, fp in refs])


class ShardStage(Stage):
    name = "shard"
    table = "shards"
    reads = ("videos", "targets", "references", "pairs")
    sections = ("shard", "targets", "encode")
    version = "9"  # 9: sample_hash, media_hash (unchanged samples are copied, not rendered again)
    crash_advice = ("use fewer workers (executor.workers), a smaller batch (encode.batch_size), or a GPU "
                    "(encode.device: cuda)")

    def devices(self) -> list[str]:
        return [self.recipe.encode.device] if self.recipe.encode.backend == "ltx" else []

    def fit_memory(self, workers: int, device: str, gpu_count: int,
                   host_available: int | None) -> tuple[int, float, str | None]:
        """The LTX encoders' weights (from the checkpoint's header) and activations at the target size
        (`memory.encode_memory`) against this machine's memory: fewer workers or a smaller batch."""
        if self.recipe.encode.backend != "ltx":
            return workers, 0.0, None

        need = encode_memory(self.recipe, device=device)
        batch = self.recipe.encode.batch_size
        if host_available is None:
            return workers, need.host_bytes(batch) / GIB, None
        plan = plan_workers(need, workers, batch, host_available,
                            gpu_memory_total(0) if device == "cuda" else None, gpu_count)
        if plan.batch_size != batch:
            encode = self.recipe.encode.model_copy(update={"batch_size": plan.batch_size})
            self.recipe = self.recipe.model_copy(update={"encode": encode})
        return plan.workers, need.host_bytes(plan.batch_size) / GIB, plan.message

    def setup(self) -> None:
        self.encoder = None
        self.clips = ClipReader(self.recipe.output_dir)
        if self.recipe.encode.backend == "ltx":

            self.encoder = SampleEncoder(self.recipe)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        import shutil

        # A run killed in this stage left its links to old tars (and their samples, perhaps taken down).
        shutil.rmtree(self.recipe.output_dir / REUSE_DIR, ignore_errors=True)
        samples = sample_rows(tables)
        n = self.recipe.shard.samples_per_shard
        # The checkpoint's content, not only its path, decides the latents: a changed file reruns shards.
        digest = None
        if self.recipe.encode.backend == "ltx":

            digest = checkpoint_digest(self.recipe)
        # What a sample's bytes depend on, not how samples are laid out in shards (samples_per_shard, sizes).
        content = frame_hash(self.version, self.recipe.section_hash("targets", "encode"), self.recipe.shard.video_crf)
        for sample in samples:
            sample["sample_hash"] = frame_hash({k: v for k, v in sample.items() if k not in NOT_CONTENT}, content,
                                               digest)
            sample["media_hash"] = frame_hash(media_part(sample), content, digest)
        # Samples are placed by a hash of their key (`hash_buckets`, as partitions are): a take-down or a few
        # new videos rewrite only the shards that hold those samples, not every shard after the first change.
        parts: list[Partition] = []
        for split in SPLITS:
            keyed = [s for s in samples if s["split"] == split]
            for bucket, chunk in hash_buckets(keyed, lambda s: s["key"], n, self.previous_buckets.get(f"{split}-")):
                data = {"split": split, "bucket": bucket, "samples": chunk, "checkpoint_sha256": digest}
                parts.append(Partition(f"{split}-{bucket}", data, frame_hash(data)))
        return parts

    def before_run(self, todo: list[Partition]) -> None:
        """Hard-link the current tars into `REUSE_DIR` and give each partition where its samples are there:
        a sample whose `sample_hash` is unchanged is copied from them, whatever shard it moves to (a take-down
        shifts every later sample), not rendered again. The links keep the old bytes while new tars replace
        the old names. Without hard links (a filesystem that has none) every sample is rendered."""
        import os
        import shutil

        reuse = self.recipe.output_dir / REUSE_DIR
        shutil.rmtree(reuse, ignore_errors=True)
        path = table_path(self.recipe.manifests_dir, "shards")
        if not path.exists():
            return
        try:
            prev = pl.read_parquet(path, columns=["key", "shard", "offset", "nbytes", "sample_hash", "media_hash",
                                                  "status"])
        except (pl.exceptions.ColumnNotFoundError, OSError):
            return  # a table from before sample hashes
        prev = prev.filter((pl.col("status") == "ok") & pl.col("sample_hash").is_not_null())
        try:
            for shard in prev.get_column("shard").unique().to_list():
                src = self.recipe.shards_dir / shard
                if src.exists():
                    (reuse / shard).parent.mkdir(parents=True, exist_ok=True)
                    os.link(src, reuse / shard)
        except OSError:
            shutil.rmtree(reuse, ignore_errors=True)
            return
        where = {r[0]: r[1:] for r in prev.select("key", "shard", "offset", "nbytes", "sample_hash", "media_hash")
                 .iter_rows()}
        for part in todo:
            part.data["reuse"] = {s["key"]: where[s["key"]] for s in part.data["samples"] if s["key"] in where}

    def after_run(self) -> None:
        import shutil

        shutil.rmtree(self.recipe.output_dir / REUSE_DIR, ignore_errors=True)

    @staticmethod
    def reusable(sample: dict, reuse: dict[str, tuple]) -> bool:
        """Whether the sample's earlier placement has its sample or media hash (`reused` still checks the bytes)."""
        old = reuse.get(sample["key"])
        return old is not None and (old[3] == sample["sample_hash"] or old[4] == sample["media_hash"])

    def reused(self, sample: dict, reuse: dict[str, tuple]) -> dict[str, bytes] | None:
        """The sample's members copied from its earlier shard, if it is unchanged and they read back whole
        (their json carries the same sample_hash); if only what `media_part` leaves out changed (its split,
        scores, lineage: a take-down re-estimates a dialog partner's dominant face), its media copied and its
        json brought up to date; else None."""
        if not self.reusable(sample, reuse):
            return None
        shard, offset, nbytes = reuse[sample["key"]][:3]
        try:
            found = read_members(self.recipe.output_dir / REUSE_DIR / shard, offset, nbytes)
        except (OSError, ShardError):
            return None
        prefix = f"{sample['key']}."
        if not all(name.startswith(prefix) for name in found):
            return None
        members = {name[len(prefix):]: data for name, data in found.items()}
        if "json" not in members:
            return None
        try:
            meta = json.loads(members["json"])
            if meta.get("sample_hash") == sample["sample_hash"]:
                return members
            if meta.get("media_hash") != sample["media_hash"]:
                return None
            meta.update(metadata_of(sample))
            for ref, r in zip(meta["references"], sample["references"], strict=True):
                ref["source"] = r["rel_path"]
        except (ValueError, KeyError, TypeError, AttributeError):  # not a json this stage wrote: render it
            return None
        members["json"] = json.dumps(meta, sort_keys=True).encode()
        return members

    def _copy(self, writer: ShardWriter, sample: dict, members: dict[str, bytes]) -> dict:
        placed = writer.add(sample["key"], members)
        return dict(key=sample["key"], split=sample["split"], shard=placed.shard.removeprefix("shards/"),
                    offset=placed.offset, nbytes=placed.nbytes, members=placed.members,
                    sample_hash=sample["sample_hash"], media_hash=sample["media_hash"], status="ok", error=None)

    def process(self, partition: Partition) -> StageResult:
        split, bucket = partition.data["split"], partition.data["bucket"]
        reuse = partition.data.get("reuse") or {}
        self.clips = ClipReader(self.recipe.output_dir)  # the clip files this partition's samples name, mapped once
        writer = ShardWriter(self.recipe.output_dir, f"shards/{split}/{split}-{bucket}",
                             self.recipe.shard.max_shard_bytes)
        try:
            if self.encoder is None:
                def one(s: dict) -> list[dict]:
                    members = self.reused(s, reuse)
                    return [self._copy(writer, s, members) if members is not None else
                            self._write(writer, s, self._cut(s))]

                rows = guarded(partition.data["samples"], one, self._failed, lambda s: s["key"])
            else:
                rows = self._encode(writer, partition.data["samples"], partition.data["checkpoint_sha256"], reuse)
            outputs = writer.close()
        except BaseException:
            writer.abort()
            raise
        return StageResult(rows, outputs)

    def _cut(self, sample: dict) -> CutSample:
        """The sample cut; with the targets stage's clip of the window its mp4 is that clip, and without latents
        to encode its frames are not decoded at all."""
        cfg, crf = self.recipe.targets, self.recipe.shard.video_crf
        clip = self.clips.get(sample.get("clip"), making(sample["target_id"], sample["start_frame"], sample["crop"],
                                                         cfg.size, cfg.face.pad, crf))
        cut = cut_sample(sample, cfg.size, cfg.face.pad, frames=clip is None or self.encoder is not None)
        if clip is not None:
            cut.media = media_members(cut, crf, mp4=clip)
        return cut

    def _cut_with_media(self, sample: dict) -> CutSample:
        """On a cutting thread: the cut, and its mp4/wav when kept (x264 must not hold up the encoder)."""
        with isolation.item(sample["key"]):
            cut = self._cut(sample)
            if self.recipe.encode.keep_media and cut.media is None:
                cut.media = media_members(cut, self.recipe.shard.video_crf)
        return cut

    def _encode(self, writer: ShardWriter, samples: list[dict], digest: str,
                reuse: dict[str, tuple] | None = None) -> list[dict]:
        """Cut samples on threads ahead of the encoder, encode them in batches, write them in order.
        A sample whose cutting, encoding or writing fails gets its failed row (`Faults` decides
        what is systemic); the others are written. An unchanged sample in `reuse` is copied, in its place."""
        assert self.encoder is not None
        encoder, cfg = self.encoder, self.recipe.encode
        encoder.info["checkpoint_sha256"] = digest
        # Retrying after a worker died: one sample at a time, cut on this thread, so a death names it.
        careful = isolation.careful()
        batch_size = 1 if careful else encoder.batch_size
        rows: dict[str, dict] = {}
        faults = Faults()
        batch: list[tuple[dict, CutSample]] = []

        def write(s: dict, c: CutSample, z: dict[str, bytes]) -> None:
            try:
                rows[s["key"]] = self._write(writer, s, c, z)
            except Exception as e:
                rows[s["key"]] = self._failed(s, faults.reason(e))

        def flush() -> None:
            try:
                with isolation.item(*(s["key"] for s, _ in batch)):
                    latents = encoder.encode([c for _, c in batch])
            except Exception as e:
                faults.raise_if_systemic(e)  # out of memory at one sample, ...
                # One bad sample (non-finite latents) must not fail its batch: encode each alone.
                for s, c in batch:
                    try:
                        with isolation.item(s["key"]):
                            z = encoder.encode([c])[0]
                    except Exception as e1:
                        rows[s["key"]] = self._failed(s, "encode: " + faults.reason(e1))
                    else:
                        write(s, c, z)
            else:
                for (s, c), z in zip(batch, latents, strict=True):
                    write(s, c, z)
            batch.clear()

        # Which samples to copy is decided from their hashes; their bytes are read only when written (a
        # partition's copies may be gigabytes), and one that no longer reads back is cut and encoded there.
        copies = {s["key"] for s in samples if self.reusable(s, reuse or {})}
        fresh = [s for s in samples if s["key"] not in copies]
        order = {s["key"]: i for i, s in enumerate(samples)}
        done = 0  # samples (in order) written so far: a copy is written once every sample before it is

        def copy_ready(upto: int) -> None:
            nonlocal done
            while done < upto:
                s = samples[done]
                if s["key"] in copies:
                    members = self.reused(s, reuse or {})
                    if members is not None:
                        rows[s["key"]] = self._copy(writer, s, members)
                    else:
                        try:
                            cut = self._cut_with_media(s)
                            with isolation.item(s["key"]):
                                z = encoder.encode([cut])[0]
                            rows[s["key"]] = self._write(writer, s, cut, z)
                        except Exception as e:
                            rows[s["key"]] = self._failed(s, faults.reason(e))
                done += 1

        with contextlib.closing(prefetched(self._cut_with_media, fresh, 0 if careful else cfg.decode_threads,
                                           batch_size * cfg.prefetch_batches)) as cuts:
            for sample, future in cuts:
                if any(s["key"] in copies for s in samples[done:order[sample["key"]]]):
                    if batch:
                        flush()
                    copy_ready(order[sample["key"]])
                try:
                    batch.append((sample, future.result()))
                except Exception as e:
                    rows[sample["key"]] = self._failed(sample, faults.reason(e))
                if len(batch) >= batch_size:
                    flush()
                    copy_ready(order[sample["key"]] + 1)
            if batch:
                flush()
            copy_ready(len(samples))
        faults.check(len(fresh))
        return [rows[s["key"]] for s in samples]

    def _failed(self, sample: dict, reason: str) -> dict:
        return dict(key=sample["key"], split=sample["split"], shard=None, offset=None, nbytes=None, members=None,
                    sample_hash=None, media_hash=None, status="failed", error=failure(sample["rel_path"], reason))

    def _write(self, writer: ShardWriter, sample: dict, cut: CutSample,
               latents: dict[str, bytes] | None = None) -> dict:
        recipe = self.recipe
        info = self.encoder.info if latents is not None and self.encoder is not None else None
        members = sample_members(sample, cut, recipe.targets.size, recipe.shard.video_crf,
                                 recipe.targets.face.mask_scale, recipe.encode.keep_media or latents is None,
                                 latents, info)
        return self._copy(writer, sample, members)


REFERENCE_FIELDS = ("start_s", "duration_s", "speech_ratio", "lufs", "peak_dbfs", "clipped_fraction", "snr_db",
                    "quality", "gain_db", "gain_limited")
"""Columns of the references table that travel to the renderer and into the sample json."""


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


def reference_audio(ref: dict) -> tuple[np.ndarray, float | None]:
    """(a reference's audio as a shard carries it, 16 kHz stereo with its planned gain; the gain applied in dB).
    `ref`: a references row with its video's `path`."""
    audio = read_audio(ref["path"], AUDIO_SAMPLE_RATE, channels=2, start_s=ref["start_s"], duration_s=ref["duration_s"])
    return reference_gain(audio, ref)


def reference_gain(audio: np.ndarray, ref: dict) -> tuple[np.ndarray, float | None]:
    """(the reference with its planned gain applied, the gain applied in dB; None without normalisation).
    The gain is lowered if these samples peak higher than the ones the references stage measured
    (a different decoder build), so the peak never exceeds the planned one (<= the ceiling)."""
    planned = ref.get("gain_db")
    if planned is None:
        return audio, None
    excess = peak_dbfs(audio) - ref["peak_dbfs"]
    applied = round(planned - max(excess, 0.0), 3) if np.isfinite(excess) else planned
    return apply_gain(audio, applied), applied


def face_members(track: list[list[float]], crop: list[int], size: int, grow: float = 1.0) -> dict[str, bytes]:
    """A sample's per-frame face-mask boxes (json, output pixels) and latent face mask (npy)."""
    boxes = frame_boxes(track, (crop[0], crop[1], crop[2], crop[3]), size, grow)
    buf = io.BytesIO()
    np.save(buf, latent_face_mask(boxes, size), allow_pickle=False)
    return {"face_boxes.json": json.dumps(boxes.tolist()).encode(), "face_mask_latent.npy": buf.getvalue()}


METADATA_ONLY = ("identity_id", "split", "rel_path", "sync_score", "sync_offset", "face_distance", "lineage")
"""Fields of a sample that reach its json and nothing else (a reference's `rel_path` too)."""
NOT_CONTENT = ("clip", "sample_hash", "media_hash")
"""Fields of a sample that are not what it is made of: where the targets stage left its clip (the same bytes the
shard would make, `target_clips`), its hashes."""


def media_part(sample: dict) -> dict:
    """The sample less `METADATA_ONLY` (and its hashes): what its media and latents are made from."""
    out = {k: v for k, v in sample.items() if k not in (*METADATA_ONLY, *NOT_CONTENT)}
    out["references"] = [{k: v for k, v in r.items() if k != "rel_path"} for r in sample["references"]]
    return out


def metadata_of(sample: dict) -> dict:
    """The json fields `METADATA_ONLY` decides, and the sample's hashes."""
    meta = dict(identity_id=sample["identity_id"], split=sample["split"], source=sample["rel_path"],
                sync_score=sample.get("sync_score"), sync_offset=sample.get("sync_offset"),
                face_distance=sample.get("face_distance"), sample_hash=sample["sample_hash"],
                media_hash=sample["media_hash"])
    if sample.get("lineage") is not None:
        meta["lineage"] = sample["lineage"]
    return meta


def cut_sample(sample: dict, size: int, pad: str = "black", frames: bool = True) -> CutSample:
    """Decode and cut one sample's media: frame-exact video (none without `frames`) and audio that start at the
    same instant, and the references with their loudness gain. A crop that leaves the frame is padded (`pad`:
    black or edge), never stretched. The audio starts `audio_shift_s` after the first frame when the active-speaker
    check measured the sound that late (targets.active_speaker.shift_audio). Its `meta` is the sample's json,
    less what encoding adds."""
    start_s = sample["start_frame"] / TARGET_FPS
    shift = sample.get("audio_shift_s") or 0.0
    times = [(sample["start_frame"] + k) / TARGET_FPS for k in range(TARGET_FRAMES)]
    video = read_frames(sample["path"], times, crop=tuple(sample["crop"]), size=size, pad=pad) if frames else None
    audio = read_audio(sample["path"], AUDIO_SAMPLE_RATE, channels=2, start_s=start_s + shift,
                       duration_s=TARGET_FRAMES / TARGET_FPS)
    meta = dict(
        key=sample["key"], identity_id=sample["identity_id"], split=sample["split"], target_id=sample["target_id"],
        source=sample["rel_path"], video_id=sample["video_id"], start_frame=sample["start_frame"], start_s=start_s,
        crop=sample["crop"], crop_mode=sample.get("crop_mode", "center"), crop_pad=sample.get("crop_pad"),
        num_frames=TARGET_FRAMES, fps=TARGET_FPS, width=size, height=size,
        sample_rate=AUDIO_SAMPLE_RATE, audio_samples=int(audio.shape[1]), references=[],
        ltxa_data_version=__version__, variants=len(sample["references"]), audio_shift_s=shift,
        sync_score=sample.get("sync_score"), sync_offset=sample.get("sync_offset"),
        face_distance=sample.get("face_distance"),
    )
    if sample.get("lineage") is not None:
        meta["lineage"] = sample["lineage"]
    refs: list[np.ndarray] = []
    for r in sample["references"]:
        ref, applied = reference_audio(r)
        refs.append(ref)
        meta["references"].append(dict(
            reference_id=r["reference_id"], source=r["rel_path"], video_id=r["video_id"], samples=int(ref.shape[1]),
            **{c: r.get(c) for c in REFERENCE_FIELDS}, applied_gain_db=applied,
            output_lufs=_finite(round(integrated_lufs(mono_mix(ref), AUDIO_SAMPLE_RATE), 3)),
            output_peak_dbfs=_finite(round(peak_dbfs(ref), 3))))
    return CutSample(video, audio, refs, meta)


def media_members(cut: CutSample, crf: int, mp4: bytes | None = None) -> dict[str, bytes]:
    """A cut sample's mp4 (`mp4`, else its frames encoded) and wavs (target, then the references in order)."""
    if mp4 is None:
        assert cut.frames is not None, "a sample cut without frames has its clip"
        mp4 = encode_video(cut.frames, TARGET_FPS, crf=crf)
    members = {"mp4": mp4, "wav": encode_wav(cut.audio, AUDIO_SAMPLE_RATE)}
    for i, ref in enumerate(cut.references):
        members[f"ref{i}.wav"] = encode_wav(ref, AUDIO_SAMPLE_RATE)
    return members


def sample_members(sample: dict, cut: CutSample, size: int, crf: int, mask_scale: float = 1.0,
                   media: bool = True, latents: dict[str, bytes] | None = None,
                   latents_info: dict | None = None) -> dict[str, bytes]:
    """A sample's shard members: json, the media (`media`), face masks, and the latents when encoded."""
    meta = dict(cut.meta)
    if sample.get("sample_hash"):
        meta.update(sample_hash=sample["sample_hash"], media_hash=sample["media_hash"])
    members: dict[str, bytes] = {}
    if sample.get("face_track"):
        meta["face_mask_scale"] = mask_scale
    if latents is not None:
        meta["latents"] = dict(latents_info or {}, members=sorted(latents))
    members["json"] = json.dumps(meta, sort_keys=True).encode()
    if media:
        members.update(cut.media if cut.media is not None else media_members(cut, crf))
    if sample.get("face_track"):
        members.update(face_members(sample["face_track"], sample["crop"], size, mask_scale))
    members.update(latents or {})
    return members


def render_sample(sample: dict, size: int, crf: int, pad: str = "black", mask_scale: float = 1.0) -> dict[str, bytes]:
    """A media-only sample's shard members (json, mp4, wav, reference wavs, face masks)."""
    return sample_members(sample, cut_sample(sample, size, pad), size, crf, mask_scale)
