"""What one generated file shows: its speech's voice embedding and its face's descriptor, measured with the
build's own embedder, face detector and face descriptor, and the identities' references to compare them with
(the mean voice of each identity, the dominant face `identity_faces` found).

These are proxies: an embedder's similarity and a descriptor's distance say how alike two voices or faces
are to those models, not whether a person would take them for the same one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ..analysis.faces import descriptor_frames, face_track, face_views, mean_descriptor, sampled_offsets
from ..backends import load_embedder, load_face_analyzer, load_face_detector
from ..errors import SystemicError
from ..media import MediaError, probe, read_audio, read_frames
from ..recipe import AUDIO_SAMPLE_RATE, Recipe
from ..stages.embed import speech_windows
from ..stages.targets import WORKING_SIDE, downscale
from ..storage import read_frame, table_path

SILENT_DBFS = -60.0
"""Audio whose RMS level is under this carries no voice to measure."""


def _dbfs(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * float(np.log10(max(rms, 1e-12)))


def _normalized(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def identity_voices(recipe: Recipe) -> dict[str, np.ndarray]:
    """Per identity, the L2-normalised mean of its voices' embeddings (the voices table, as identify grouped it)."""
    m = recipe.manifests_dir
    voices = read_frame(m, "voices", ok_only=True).select("voice_id", "embedding")
    ids = read_frame(m, "identities", ok_only=True).select("voice_id", "identity_id")
    out = {}
    for (identity,), group in voices.join(ids, on="voice_id").group_by(["identity_id"]):
        out[str(identity)] = _normalized(np.array(group["embedding"].to_list(), np.float64).mean(axis=0))
    return out


def identity_faces(recipe: Recipe) -> dict[str, np.ndarray]:
    """Per identity, its dominant face descriptor (`identity_faces`); empty when the build described no faces."""
    m = recipe.manifests_dir
    if not table_path(m, "identity_faces").exists():
        return {}
    rows = read_frame(m, "identity_faces", ok_only=True).filter(pl.col("dominant_face").is_not_null())
    return {r["identity_id"]: np.array(r["dominant_face"], np.float64) for r in rows.iter_rows(named=True)}


class RunMeasurer:
    """Measures generated files with the build's models, loaded once."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.embedder = load_embedder(recipe)
        self.detector = load_face_detector(recipe)
        self.analyzer = load_face_analyzer(recipe)

    def measure(self, path: Path) -> dict:
        """{duration_s, voice_embedding, voice_error, face_ratio, face_descriptor, face_error}. The voice and the face
        are read apart, so a broken or missing stream costs only its own measure; raises `MediaError` naming both
        reasons when neither stream can be read at all."""
        out: dict = dict(duration_s=None, voice_embedding=None, voice_error=None, face_ratio=None,
                         face_descriptor=None, face_error=None)
        broken = []
        for part, measure in (("voice", self.voice), ("face", self.face)):
            try:
                out.update(measure(path))
            except (SystemicError, MemoryError, KeyboardInterrupt):
                raise
            except Exception as e:  # the stream cannot be decoded: that measure's reason
                out[f"{part}_error"] = f"unreadable: {type(e).__name__}: {e}"
                broken.append(f"{part}: {e}")
        if len(broken) == 2 and not any("no audio track" in b or "no video stream" in b for b in broken):
            raise MediaError("; ".join(broken))
        return out

    def voice(self, path: Path) -> dict:
        """The voice as the build's embed stage measures a speaker: `embed.window_s` windows averaged, here
        over the whole file, leaving out windows under `SILENT_DBFS`."""
        try:
            audio = read_audio(path, AUDIO_SAMPLE_RATE, channels=1)[0]
        except MediaError as e:
            if "no audio track" in str(e):
                return {"voice_error": "no audio track"}
            raise
        sr = AUDIO_SAMPLE_RATE
        out: dict = {"duration_s": round(len(audio) / sr, 3)}
        level = _dbfs(audio)
        if level < SILENT_DBFS:
            return {**out, "voice_error": f"silent: RMS {level:.0f} dBFS < {SILENT_DBFS:g}"}
        cfg = self.recipe.embed
        windows = speech_windows([(0.0, len(audio) / sr)], cfg.window_s, cfg.max_windows)
        clips = [audio[round(s * sr): round(s * sr) + round((e - s) * sr)] for s, e in windows]
        clips = [c for c in clips if _dbfs(c) >= SILENT_DBFS]
        if not clips:
            return {**out, "voice_error": f"no {cfg.window_s:g} s window with sound (embed.window_s; a window needs "
                                          f"half of it at least, above {SILENT_DBFS:g} dBFS)"}
        emb = _normalized(np.asarray(self.embedder.embed(clips, sr), np.float64).mean(axis=0))
        if not np.all(np.isfinite(emb)):
            return {**out, "voice_error": "the embedder returned values that are not finite"}
        return {**out, "voice_embedding": emb.astype(np.float32).tolist()}

    def face(self, path: Path) -> dict:
        """The face as the build's targets stage tracks and describes it: detection on every `sample_every`-th
        frame, one face in at least `min_face_ratio` of them, descriptors averaged over
        `face_identity.frames` frames of the track."""
        cfg = self.recipe.targets
        try:
            facts = probe(path)  # counts the frames by demuxing: a container's duration can include longer audio
        except MediaError as e:
            if "no video stream" in str(e):
                return {"face_error": "no video stream"}
            raise
        fps, num_frames = facts.fps, facts.num_frames
        if num_frames < 1 or fps <= 0:
            return {"face_error": "no video frames"}
        offsets = sampled_offsets(cfg.face.sample_every, num_frames)
        picks = descriptor_frames(cfg.face_identity.frames, num_frames)
        wanted = sorted({*offsets, *picks.tolist()})
        frames = read_frames(path, [(k + 0.5) / fps for k in wanted], max_side=WORKING_SIDE)
        row = {k: i for i, k in enumerate(wanted)}
        small, scale = downscale(frames[[row[k] for k in offsets]], cfg.face.detect_side)
        dets = [d[:, :4] / scale for d in self.detector.detect(small)]
        ratio = round(sum(len(d) == 1 for d in dets) / len(dets), 4)
        track, why = face_track(offsets, dets, cfg.face.min_face_ratio, cfg.face.min_iou)
        if track is None:
            return {"face_ratio": ratio, "face_error": why}
        faces, boxes = face_views(frames[[row[k] for k in picks]], track, at=picks)
        landmarks = np.stack([self.analyzer.landmarks(f, b[None])[0] for f, b in zip(faces, boxes, strict=True)])
        desc = mean_descriptor(self.analyzer, faces, landmarks)
        if not np.all(np.isfinite(desc)):
            return {"face_ratio": ratio, "face_error": "the face descriptor is not finite"}
        return {"face_ratio": ratio, "face_descriptor": desc.astype(np.float32).tolist()}
