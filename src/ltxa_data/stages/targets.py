"""targets: 121-frame windows on the 25 fps grid where one identified speaker talks, and their crop.

Each candidate window is face-tracked (see `ltxa_data.analysis.faces`) unless `targets.face.required` is off:
a window with no face, or more than one, in most sampled frames is skipped with that reason and the
next-best window of the video is tried in its place (up to `2 x max_per_video` tries per video).
`crop: face` puts one steady square around the tracked face; `crop: center` keeps the centred
square and skips a window whose face leaves it.

Two gates make sure the face on screen is the voice's owner. The active-speaker check scores the
tracked face's mouth against the window's speech (`backends.active_speaker`) and skips a window whose
face does not speak with the voice (a listener, a still picture, a voice-over, a dub), trying the next.
The face-identity check describes each target's face; `finalize` then skips, per voice identity, the
targets whose face is not the identity's dominant face.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pyarrow as pa

from ..analysis.faces import (
    descriptor_frames,
    dominant_face,
    face_track,
    face_views,
    faces_outside,
    mean_descriptor,
    sampled_offsets,
    steady_crop,
)
from ..analysis.windows import covered, single_speaker_windows
from ..backends import (
    load_active_speaker,
    load_face_analyzer,
    load_face_detector,
    load_speech_quality,
    load_text_detector,
)
from ..backends.active_speaker import SyncClip
from ..gates import TARGET_GATES, failure, first_failed
from ..ids import child_id
from ..media import KeptFrames, encode_video, read_audio, read_frames, read_window
from ..recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, Recipe
from .base import Partition, StageResult
from .scenes import crosses_cut
from .speaker_windows import SpeakerWindowStage, speaker_spans
from .target_clips import making, write_clips
from .target_quality import TEXT_SIDE, picture_gates, speech_gates, text_frames

TARGET_SECONDS = TARGET_FRAMES / TARGET_FPS
WORKING_SIDE = 640
"""With the face gates on, a window's frames are read once with their longer side at most this."""
CLIP_HOLD_BYTES = 512 << 20
"""A kept window's clip (`target_clips`) is cut from the targets stage's decode when the window's decoded frames
take about this or less at 1.5 bytes a pixel (8-bit 4:2:0: 376 MB at 1080p; FFmpeg's padded buffers and the cut
raise a worker's peak by ~0.7 GB there, measured); a larger source's window is cut by the shard stage."""


def center_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side, side


def downscale(frames: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(frames shrunk so their longer side is at most `max_side`, the factor applied)."""
    import cv2

    h, w = frames.shape[1:3]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return frames, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]), scale


def window_tries(recipe: Recipe) -> int:
    """Windows tried per video: without gates that read the window every kept window is ok; with them, skipped
    windows make room for the next ones (up to twice `max_per_video`)."""
    cfg = recipe.targets
    gated = cfg.face.required or cfg.speech_quality.backend != "snr"
    return 2 * cfg.max_per_video if gated else cfg.max_per_video


class TargetsStage(SpeakerWindowStage):
    name = "targets"
    table = "targets"
    version = "9"  # 9: clips for the shard stage; 8: picture and speech-quality gates; 7: gate records (gates)
    reads = ("videos", "scenes", "turns", "identities", "duplicates")
    sections = ("targets",)
    memory_gb = 2.0  # a worker's peak, measured on 1080p windows with every gate on and the clip held

    def devices(self) -> list[str]:
        cfg = self.recipe.targets.active_speaker
        return [cfg.device] if cfg.check and cfg.backend == "syncnet" else []

    def setup(self) -> None:
        self.detector = self.analyzer = self.scorer = None
        cfg = self.recipe.targets
        if cfg.face.required:
            self.detector = load_face_detector(self.recipe)
        if cfg.face.required and (cfg.active_speaker.check or cfg.face_identity.check or cfg.picture.check):
            self.analyzer = load_face_analyzer(self.recipe)
        if cfg.face.required and cfg.active_speaker.check:
            self.scorer = load_active_speaker(self.recipe)
        self.text = load_text_detector(self.recipe)
        self.speech = load_speech_quality(self.recipe, "targets")
        enc = self.recipe.encode
        # The shard stage writes an mp4 of each target unless it keeps latents only.
        self.clip_crf = self.recipe.shard.video_crf if enc.backend == "none" or enc.keep_media else None
        self.clips: list[dict] = []
        self.clip_file = ""

    def process(self, partition: Partition) -> StageResult:
        """The rows of the partition's videos; the clips of its kept windows in `targets/part-<key>.arrow`."""
        self.clips, self.clip_file = [], f"targets/part-{partition.key}.arrow"
        result = super().process(partition)
        if not self.clips:
            return result
        write_clips(self.recipe.output_dir / self.clip_file, self.clips)
        return StageResult(result.rows, [*result.outputs, self.clip_file])

    def holds_clip(self, video: dict) -> bool:
        """Whether a window of `video` is decoded whole and kept for its clip (`CLIP_HOLD_BYTES`)."""
        return self.clip_crf is not None and video["width"] * video["height"] * 1.5 * TARGET_FRAMES <= CLIP_HOLD_BYTES

    def track(self, video: dict, row: dict) -> dict:
        """The row with its face track (and, for `crop: face`, the crop around it), or skipped with the reason.
        With the face gates on, every frame of the window is read once, at most `WORKING_SIDE` pixels: the
        detector looks at every `sample_every`-th and the gates at all of them."""
        cfg = self.recipe.targets.face
        offsets = sampled_offsets(cfg.sample_every)
        start = row["start_frame"]
        kept = None
        if self.analyzer is None:
            frames, work = read_frames(video["path"], [(start + k) / TARGET_FPS for k in offsets]), 1.0
            sampled = frames
        else:
            # The text gate's frames, and the clip the shard stage takes, are cut from the same decode once the crop
            # is known (no second decode).
            keep = text_frames(self.recipe) if self.text is not None and self.recipe.targets.picture.check else []
            if self.holds_clip(video):
                keep = list(range(TARGET_FRAMES))
            frames, kept = read_window(video["path"], [(start + k) / TARGET_FPS for k in range(TARGET_FRAMES)], keep,
                                       max_side=WORKING_SIDE)
            work = frames.shape[2] / video["width"]
            sampled = frames[offsets]
        small, scale = downscale(sampled, cfg.detect_side)
        assert self.detector is not None, "setup() loads the detector when targets.face.required is on"
        dets = [d[:, :4] / (scale * work) for d in self.detector.detect(small)]
        track, why = face_track(offsets, dets, cfg.min_face_ratio, cfg.min_iou)
        n_single = sum(len(d) == 1 for d in dets)
        row = {**row, "face_ratio": n_single / len(dets)}
        row["gates"] = [*(row.get("gates") or []), {**TARGET_GATES["face"].record(row["face_ratio"], self.recipe),
                                        "passed": track is not None}]
        if track is None:
            return {**row, "status": "skipped", "error": failure(video["rel_path"], why), "skipped_by": "face"}
        med = np.median(np.array(track)[:, 1:], axis=0)
        row.update(face_x=round(float(med[0]), 1), face_y=round(float(med[1]), 1), face_w=round(float(med[2]), 1),
                   face_h=round(float(med[3]), 1), face_track=track)
        if self.recipe.targets.crop == "face":
            crop, pad = steady_crop(track, cfg.margin, video["width"], video["height"])
            row.update(crop_x=crop[0], crop_y=crop[1], crop_w=crop[2], crop_h=crop[3], crop_pad=list(pad))
        else:
            outside = faces_outside(track, (row["crop_x"], row["crop_y"], row["crop_w"], row["crop_h"]))
            row["gates"] = [*(row.get("gates") or []), TARGET_GATES["crop"].record(outside, self.recipe)]
            if outside:
                return {**row, "status": "skipped", "skipped_by": "crop", "error": failure(
                    video["rel_path"], f"the face leaves the centre crop in {outside}/{len(track)} tracked frames")}
        if self.analyzer is None:
            return self.check_speech(video, row)
        return self.check_face(video, row, track, frames, work, kept)

    def check_speech(self, video: dict, row: dict) -> dict:
        """The row with the learned quality of its audio (as the shard carries it), skipped under a floor."""
        if self.speech is None or row["status"] != "ok":
            return row
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=1, duration_s=TARGET_SECONDS,
                           start_s=row["start_s"] + (row.get("audio_shift_s") or 0.0))[0]
        measures, records = speech_gates(self.recipe, self.speech, audio)
        return self.gated(video, {**row, **measures}, records)

    def gated(self, video: dict, row: dict, records: list[dict]) -> dict:
        """The row with `records` appended, skipped by the first that failed (its name and comparison)."""
        row = {**row, "gates": [*(row.get("gates") or []), *records]}
        failed = first_failed(records)
        if failed is None:
            return row
        gate = TARGET_GATES[failed["name"]]
        why = f"{gate.fails}: {gate.describe(failed)}" if failed["value"] is not None else \
            f"{gate.measure} could not be measured ({gate.setting})"
        return {**row, "status": "skipped", "skipped_by": gate.name, "error": failure(video["rel_path"], why)}

    def check_face(self, video: dict, row: dict, track: list[list[float]], frames: np.ndarray,
                   work: float, kept: KeptFrames | None = None) -> dict:
        """The row with its active-speaker score and face descriptor, or skipped when the face does not
        speak with the voice. Both look at a square around the tracked face in every frame of the window
        (`frames`: the window's frames at `work` x the source's displayed size; `kept`: the decoded frames
        the text gate searches)."""
        cfg = self.recipe.targets
        faces, boxes = face_views(frames, track, work)
        assert self.analyzer is not None
        landmarks = np.stack([self.analyzer.landmarks(f, b[None])[0] for f, b in zip(faces, boxes, strict=True)])
        if cfg.picture.check:
            crop = (row["crop_x"], row["crop_y"], row["crop_w"], row["crop_h"])
            # The text is searched in the crop as the shard cuts it (source pixels), not in the working frames.
            shown = None
            if self.text is not None:
                which = text_frames(self.recipe)
                shown = kept.cut(crop, TEXT_SIDE, cfg.face.pad, which) if kept is not None else read_frames(
                    video["path"], [(row["start_frame"] + i) / TARGET_FPS for i in which],
                    crop=crop, size=TEXT_SIDE, pad=cfg.face.pad)
            measures, records = picture_gates(self.recipe, faces, boxes, landmarks, crop, self.text, shown)
            row = self.gated(video, {**row, **measures}, records)
            if row["status"] != "ok":
                return row
        if self.scorer is not None:
            row = self.check_speaker(video, row, faces, boxes, landmarks)
        row = self.check_speech(video, row)
        if row["status"] != "ok":
            return row
        if cfg.face_identity.check:
            picks = descriptor_frames(cfg.face_identity.frames)
            desc = mean_descriptor(self.analyzer, faces[picks], landmarks[picks])
            row["face_descriptor"] = [round(float(v), 5) for v in desc]
        if kept is not None and len(kept.frames) == TARGET_FRAMES:
            row = self.leave_clip(row, kept)
        return row

    def leave_clip(self, row: dict, kept: KeptFrames) -> dict:
        """The row with where its clip is: the window cut and encoded as the shard stage would, from `kept`."""
        assert self.clip_crf is not None
        cfg = self.recipe.targets
        made = making(row["target_id"], row["start_frame"], [row["crop_x"], row["crop_y"], row["crop_w"],
                                                            row["crop_h"]], cfg.size, cfg.face.pad, self.clip_crf)
        mp4 = encode_video(kept.cut(tuple(made["crop"]), cfg.size, cfg.face.pad), TARGET_FPS, crf=self.clip_crf)
        self.clips.append(dict(video_id=row.get("video_id"), **made, mp4=mp4))
        return {**row, "clip_file": self.clip_file}

    def check_speaker(self, video: dict, row: dict, frames: np.ndarray, boxes: np.ndarray,
                      landmarks: np.ndarray) -> dict:
        """The row with its active-speaker score, skipped when below the threshold or out of sync."""

        cfg = self.recipe.targets.active_speaker
        assert self.scorer is not None
        search = cfg.search_frames
        audio = read_audio(video["path"], AUDIO_SAMPLE_RATE, channels=1, start_s=(row["start_frame"] - search)
                           / TARGET_FPS, duration_s=(TARGET_FRAMES + 2 * search) / TARGET_FPS)[0]
        res = self.scorer.score(SyncClip(frames, boxes, landmarks, audio, search))
        min_score = cfg.threshold
        score, offset = (TARGET_GATES[n].record(v, self.recipe) for n, v in (("active_speaker", res.score),
                                                                          ("sync_offset", abs(res.offset))))
        row = {**row, "sync_score": res.score, "sync_offset": res.offset, "sync_confidence": res.confidence,
               "mouth_activity": res.activity, "audio_shift_s": 0.0, "gates": [*(row.get("gates") or []), score]}
        numbers = (f"{self.scorer.name} score {res.score:.2f} at the best offset {res.offset:+d} frames, "
                   f"mouth activity {res.activity:.3f}")
        if not score["passed"]:
            return {**row, "status": "skipped", "skipped_by": "active_speaker", "error": failure(
                video["rel_path"], f"the face does not speak with the voice: {numbers} < {min_score:g}")}
        row["gates"].append(offset)
        if not offset["passed"]:
            return {**row, "status": "skipped", "skipped_by": "active_speaker", "error": failure(
                video["rel_path"], f"face and voice are out of sync: {numbers}, beyond ±{cfg.max_offset_frames}")}
        shift = res.offset / TARGET_FPS
        if cfg.shift_audio and res.offset and 0 <= row["start_s"] + shift <= video["duration_s"] - TARGET_SECONDS:
            row["audio_shift_s"] = shift
        return row

    def finalize(self, table: pa.Table) -> pa.Table:
        """Per voice identity, skip the ok targets whose face is not the identity's dominant face."""
        cfg = self.recipe.targets.face_identity
        if not cfg.check or table.num_rows == 0:
            return table
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        ok = df.filter((pl.col("status") == "ok") & pl.col("face_descriptor").is_not_null())
        updates: list[dict] = []
        for (identity,), group in ok.sort("target_id").group_by(["identity_id"], maintain_order=True):
            desc = np.array(group.get_column("face_descriptor").to_list(), np.float64)
            centre = dominant_face(desc, cfg.max_distance)
            dist = np.linalg.norm(desc - centre, axis=1)
            n_agree = int(np.sum(dist <= cfg.max_distance))
            share = TARGET_GATES["dominant_face"].record(n_agree / len(desc), self.recipe)
            for tid, d in zip(group.get_column("target_id"), dist, strict=True):
                identity_gate = TARGET_GATES["face_identity"].record(float(d), self.recipe)
                agrees = identity_gate["passed"]
                why = None
                if not share["passed"]:
                    why = failure(tid, f"no dominant face for identity {identity}: only {n_agree} of "
                                  f"its {len(desc)} targets show one face (within {cfg.max_distance:g}); below "
                                  f"{cfg.min_dominant_share:.0%}")
                elif not agrees:
                    why = failure(tid, f"the face is not the voice's: {d:.2f} from the dominant face of identity "
                                  f"{identity} ({n_agree} of its {len(desc)} targets) > {cfg.max_distance:g}")
                # A share too small skips the target by itself: its failed record is the last.
                records = [share] if not share["passed"] else [share, identity_gate]
                updates.append({"target_id": tid, "face_distance": round(float(d), 4),
                                "face_agrees": bool(agrees and share["passed"]), "why": why, "add": records})
        if not updates:
            return table
        record = pl.Struct({"name": pl.String, "value": pl.Float64, "threshold": pl.Float64, "passed": pl.Boolean})
        upd = pl.DataFrame(updates, schema={"target_id": pl.String, "face_distance": pl.Float64,
                                            "face_agrees": pl.Boolean, "why": pl.String, "add": pl.List(record)})
        df = df.drop("face_distance", "face_agrees").join(upd, on="target_id", how="left")
        df = df.with_columns(
            gates=pl.when(pl.col("add").is_not_null())
            .then(pl.concat_list([pl.col("gates").fill_null(pl.lit([], dtype=pl.List(record))), pl.col("add")]))
            .otherwise(pl.col("gates")),
            status=pl.when(pl.col("why").is_not_null()).then(pl.lit("skipped")).otherwise(pl.col("status")),
            error=pl.when(pl.col("why").is_not_null()).then(pl.col("why")).otherwise(pl.col("error")),
            skipped_by=pl.when(pl.col("why").is_not_null()).then(pl.lit("face_identity"))
            .otherwise(pl.col("skipped_by")),
        ).drop("why", "add")
        return df.select(table.schema.names).to_arrow()

    def no_window(self, video: dict, status: str, reason: str) -> dict:
        row = super().no_window(video, status, reason)
        return {**row, "skipped_by": "window"} if status == "skipped" else row

    def windows_of(self, video: dict, turns: pl.DataFrame, identities: pl.DataFrame) -> list[dict]:
        cfg = self.recipe.targets
        if video.get("copy_of"):
            return [{**super().no_window(video, "skipped", f"a copy of {video['copy_of']} (duplicate group "
                                         f"{video['copy_group']}): with duplicates.targets one, targets come from "
                                         "the group's best copy only"), "skipped_by": "duplicate"}]
        last_start = math.floor(video["duration_s"] * TARGET_FPS + 1e-6) - TARGET_FRAMES
        if last_start < 0:
            return [self.no_window(video, "skipped", f"shorter than a {TARGET_SECONDS:.2f} s target "
                                   f"({video['duration_s']:.2f} s)")]
        crop = center_square(video["width"], video["height"])
        tries = window_tries(self.recipe)
        rows = []
        for ident in identities.sort("speaker").iter_rows(named=True):
            own, others = speaker_spans(turns, ident["speaker"])
            starts = [f / TARGET_FPS for f in range(0, last_start + 1, cfg.stride_frames)
                      if not crosses_cut(f / TARGET_FPS, (f + TARGET_FRAMES - 1) / TARGET_FPS, video["cut_s"])]
            for w in single_speaker_windows(own, others, starts, TARGET_SECONDS, cfg.min_speech_ratio,
                                            cfg.max_other_speech_s, tries):
                frame = round(w.start * TARGET_FPS)
                rows.append(dict(
                    target_id=child_id(video["video_id"], ident["speaker"], frame / TARGET_FPS),
                    video_id=video["video_id"], voice_id=ident["voice_id"], identity_id=ident["identity_id"],
                    start_frame=frame, start_s=frame / TARGET_FPS, num_frames=TARGET_FRAMES,
                    duration_s=TARGET_SECONDS, crop_x=crop[0], crop_y=crop[1], crop_w=crop[2], crop_h=crop[3],
                    speech_ratio=w.speech_ratio, crop_mode=cfg.crop, crop_pad=[0, 0, 0, 0], face_ratio=None,
                    face_x=None, face_y=None, face_w=None, face_h=None, face_track=None, sync_score=None,
                    sync_offset=None, sync_confidence=None, mouth_activity=None, audio_shift_s=None,
                    face_descriptor=None, face_distance=None, face_agrees=None, upscale=None, face_sharpness=None,
                    head_yaw=None, head_pitch=None, head_roll=None, text_fraction=None, dnsmos_sig=None,
                    dnsmos_bak=None, dnsmos_ovrl=None, dnsmos_povrl=None, clip_file=None,
                    skipped_by=None,
                    gates=[TARGET_GATES["speech_ratio"].record(w.speech_ratio, self.recipe),
                           TARGET_GATES["other_speech"].record(covered(others, w.start, w.start + TARGET_SECONDS),
                                                               self.recipe)],
                    status="ok", error=None))
        rows = sorted(rows, key=lambda r: (-r["speech_ratio"], r["start_frame"]))[:tries]
        if cfg.face.required or self.speech is not None:
            tracked: list[dict] = []
            for r in rows:
                if sum(t["status"] == "ok" for t in tracked) == cfg.max_per_video:
                    break
                tracked.append(self.track(video, r) if cfg.face.required else self.check_speech(video, r))
            rows = tracked
        if not rows:
            within = f" within one shot (cuts at {', '.join(f'{c:.2f}' for c in video['cut_s'])} s)" \
                if video["cut_s"] else ""
            return [self.no_window(video, "skipped", f"no {TARGET_SECONDS:.2f} s window{within} where one "
                                   f"speaker talks ≥ {cfg.min_speech_ratio:.0%} and nobody else more than "
                                   f"{cfg.max_other_speech_s} s")]
        return rows

