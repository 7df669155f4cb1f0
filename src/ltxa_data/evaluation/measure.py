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
from ..media import probe, read_audio, read_frames
from ..recipe import AUDIO_SAMPLE_RATE, Recipe
from ..stages.embed import speech_windows
from ..stages.targets import WORKING_SIDE, downscale
from ..storage import read_frame, table_path

SILENT_DBFS = -60.0
"""Audio whose RMS level is under this carries no voice to measure."""


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
        """{duration_s, voice_embedding, voice_error, face_ratio, face_descriptor, face_error}; raises
        `MediaError` (or another decoding error) when the file cannot be read at all."""
        facts = probe(path, check_packets=False)
        out: dict = dict(duration_s=round(facts.duration_s, 3), voice_embedding=None, voice_error=None,
                         face_ratio=None, face_descriptor=None, face_error=None)
        if facts.has_audio:
            out.update(self.voice(path, facts.duration_s))
        else:
            out["voice_error"] = "no audio track"
        out.update(self.face(path, facts.fps, facts.num_frames))
        return out

    def voice(self, path: Path, duration_s: float) -> dict:
        audio = read_audio(path, AUDIO_SAMPLE_RATE, channels=1)[0]
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
        level = 20 * np.log10(max(rms, 1e-12))
        if level < SILENT_DBFS:
            return {"voice_error": f"silent: RMS {level:.0f} dBFS < {SILENT_DBFS:g}"}
        cfg = self.recipe.embed
        windows = speech_windows([(0.0, len(audio) / AUDIO_SAMPLE_RATE)], cfg.window_s, cfg.max_windows)
        if not windows:
            return {"voice_error": f"audio too short: {len(audio) / AUDIO_SAMPLE_RATE:.2f} s < half of "
                                   f"embed.window_s ({cfg.window_s:g} s)"}
        sr = AUDIO_SAMPLE_RATE
        clips = [audio[round(s * sr): round(s * sr) + round((e - s) * sr)] for s, e in windows]
        emb = _normalized(np.asarray(self.embedder.embed(clips, sr), np.float64).mean(axis=0))
        return {"voice_embedding": emb.astype(np.float32).tolist()}

    def face(self, path: Path, fps: float, num_frames: int) -> dict:
        """The face as the build's targets stage tracks and describes it: detection on every `sample_every`-th
        frame, one face in at least `min_face_ratio` of them, descriptors averaged over
        `face_identity.frames` frames of the track."""
        cfg = self.recipe.targets
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
        return {"face_ratio": ratio, "face_descriptor": desc.astype(np.float32).tolist()}
