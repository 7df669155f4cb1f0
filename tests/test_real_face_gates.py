"""The active-speaker gate on real material: a real face photo (Grace Hopper, matplotlib's sample data) animated to
talk with real speech (pyannote.audio's two-speaker sample), read, tracked and scored by `TargetsStage.track` with the
recipe's defaults (dlib HOG, the mouth_motion backend).

The mouth is opened by warping the photo's lower face (a smooth downward displacement field below the inner-lip line
from the photo's own 68 landmarks, the gap filled dark like a mouth interior) by 0-12 px per frame, following the RMS
loudness of a stretch of speech (each speaker's solo turns of the sample, joined by the recording's room tone). Talking
faces (in sync, with the sound 3 frames late, with head motion) must be kept at their offset; a still photo (also with
head motion), a dub (also with head motion) and a listener must be skipped by the active-speaker check.
`benchmarks/active_speaker_real.py` runs the same clips, more of them, and prints the score distributions.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from ltxa_data.corpus.faces import TalkingPhoto, real_photo
from ltxa_data.recipe import TARGET_FPS, Recipe

if TYPE_CHECKING:
    from ltxa_data.stages.targets import TargetsStage

RATE = 16000
HOP = RATE // TARGET_FPS
"""Audio samples per 25 fps frame."""
WIDTH, HEIGHT = 640, 360
CLIP_S = 8.0
WINDOW_START = 25
"""First frame of the scored window: 1 s into the clip, so that the ±8-frame search stays inside it."""
MAX_OPEN_PX = 12.0


def _package_dir(name: str) -> Path | None:
    """A package's folder, found without importing it (pyannote.audio would pull in torch)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def photo_path() -> Path | None:
    """matplotlib's grace_hopper.jpg, or None."""
    try:
        return real_photo()
    except RuntimeError:
        return None


def sample_paths() -> tuple[Path, Path] | None:
    """pyannote.audio's sample.wav and sample.rttm (30 s, two speakers), or None."""
    pa = _package_dir("pyannote.audio")
    if pa is None:
        return None
    wav, rttm = pa / "sample" / "sample.wav", pa / "sample" / "sample.rttm"
    return (wav, rttm) if wav.is_file() and rttm.is_file() else None


def missing_material() -> str | None:
    """Why the real material is unavailable, or None."""
    if photo_path() is None:
        return "matplotlib's sample photo mpl-data/sample_data/grace_hopper.jpg is not installed"
    if sample_paths() is None:
        return "pyannote.audio's sample/sample.wav and sample.rttm are not installed"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Real speech: one speaker's voice at a time


def clean_turns(rttm: Path, trim_s: float = 0.05) -> dict[str, list[tuple[float, float]]]:
    """Per speaker, the (start, end) seconds of the RTTM where that speaker alone talks, trimmed `trim_s` at
    each end against boundary bleed."""
    turns = []
    for line in rttm.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            turns.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    out: dict[str, list[tuple[float, float]]] = {}
    for spk in sorted({t[2] for t in turns}):
        pieces = [(s, e) for s, e, who in turns if who == spk]
        for s_o, e_o, who in turns:
            if who == spk:
                continue
            cut = []
            for s, e in pieces:
                cut += [(s, min(e, s_o)), (max(s, e_o), e)] if s < e_o and s_o < e else [(s, e)]
            pieces = [(s, e) for s, e in cut if e > s]
        out[spk] = [(s + trim_s, e - trim_s) for s, e in sorted(pieces) if e - s > 2 * trim_s + 0.2]
    return out


def voice_tracks(wav: Path, rttm: Path, gap_s: float = 0.25) -> dict[str, np.ndarray]:
    """Per speaker, float32 16 kHz mono: that speaker's solo turns of the sample, in order, joined by `gap_s` of the
    recording's own room tone (its first, speech-free second) with 10 ms fades (~10-11 s per speaker)."""
    import soundfile as sf

    x, sr = sf.read(str(wav), dtype="float32")
    assert sr == RATE and x.ndim == 1, f"{wav}: expected 16 kHz mono, got {sr} Hz, shape {x.shape}"
    room = x[: int(gap_s * RATE)]
    fade = int(0.01 * RATE)
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    tracks = {}
    for spk, pieces in clean_turns(rttm).items():
        parts = [room]
        for s, e in pieces:
            seg = x[int(s * RATE): int(e * RATE)].copy()
            seg[:fade] *= ramp
            seg[-fade:] *= ramp[::-1]
            parts += [seg, room]
        tracks[spk] = np.concatenate(parts)
    return tracks


def loudness_opening(audio: np.ndarray, frames: int, max_px: float = MAX_OPEN_PX) -> np.ndarray:
    """Mouth opening (px) per 25 fps frame: the RMS of the frame's 40 ms of `audio`, over its 90th percentile,
    clipped to 1, times `max_px`."""
    x = np.zeros(frames * HOP, np.float64)
    x[: min(len(x), len(audio))] = audio[: len(x)]
    rms = np.sqrt((x.reshape(frames, HOP) ** 2).mean(axis=1))
    return max_px * np.clip(rms / max(float(np.percentile(rms, 90)), 1e-9), 0, 1)


def listener_opening(frames: int, rng: np.random.Generator, events: int = 4) -> np.ndarray:
    """A listener's mouth: closed but for `events` small openings (1.5-3.5 px, 4-10 frames, a smooth bump each)
    at random times."""
    out = np.zeros(frames)
    for _ in range(events):
        length = int(rng.integers(4, 11))
        start = int(rng.integers(0, frames - length))
        out[start: start + length] = np.maximum(out[start: start + length],
                                                rng.uniform(1.5, 3.5) * np.hanning(length + 2)[1:-1])
    return out


def head_motion(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Slow head motion per frame: (dx px, dy px, scale), a few px of translation and ±3% of scale, as sums of
    slow sines (periods of 2.5-5 s) with random phases."""
    t = np.arange(frames) / TARGET_FPS
    ph = rng.uniform(0, 2 * np.pi, 3)
    return np.column_stack([4 * np.sin(2 * np.pi * t / 3.1 + ph[0]), 3 * np.sin(2 * np.pi * t / 4.3 + ph[1]),
                            1 + 0.03 * np.sin(2 * np.pi * t / 2.7 + ph[2])])


@dataclass(frozen=True)
class ClipSpec:
    """One clip: `heard` (float32, 16 kHz) is its soundtrack, `opening` (px per frame) its mouth, `motion` its
    head motion per frame (or None); `expect_offset`: the offset a talking clip must be found at (None: the
    clip must be skipped by the active-speaker check)."""

    kind: str
    heard: np.ndarray
    opening: np.ndarray
    motion: np.ndarray | None
    expect_offset: int | None


def stretch(track: np.ndarray, start_s: float, delay: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(heard audio, mouth opening) of a `CLIP_S` clip from `track` at `start_s`: the mouth follows the track from
    `start_s`, the sound comes `delay` frames after it (> 0: the audio is late)."""
    n, frames = int(CLIP_S * RATE), round(CLIP_S * TARGET_FPS)
    begin = int(start_s * RATE)
    mouth = track[begin: begin + n]
    first = begin - delay * HOP
    heard = np.zeros(n, np.float32)
    lo, hi = max(first, 0), min(first + n, len(track))
    heard[lo - first: hi - first] = track[lo:hi]
    return heard, loudness_opening(mouth, frames)


def write_clip(head: TalkingPhoto, spec: ClipSpec, path: Path) -> dict:
    """Render and encode `spec` (H.264 + AAC); the `video` dict that `TargetsStage.track` reads."""
    from ltxa_data.media import write_video

    frames = (head.canvas(float(o), tuple(spec.motion[i]) if spec.motion is not None else (0.0, 0.0, 1.0))
              for i, o in enumerate(spec.opening))
    write_video(path, frames, fps=TARGET_FPS, audio=spec.heard[None], sample_rate=RATE)
    return dict(path=str(path), rel_path=path.name, width=WIDTH, height=HEIGHT, duration_s=CLIP_S)


def window_row(name: str, start_frame: int = WINDOW_START) -> dict:
    """A candidate target row (centre crop, as the stage's `windows_of` makes it) for `track`."""
    side = min(WIDTH, HEIGHT)
    return dict(target_id=name, start_frame=start_frame, start_s=start_frame / TARGET_FPS,
                crop_x=(WIDTH - side) // 2, crop_y=(HEIGHT - side) // 2, crop_w=side, crop_h=side,
                status="ok", error=None)


def default_stage() -> TargetsStage:
    """A `TargetsStage` with the recipe's defaults (dlib HOG detector, mouth_motion active speaker), set up."""
    from ltxa_data.stages.targets import TargetsStage

    stage = TargetsStage(Recipe.model_validate({"name": "real_faces", "input": {"paths": ["."]},
                                                "output": {"dir": "out"}}))
    stage.setup()
    return stage


RESULT_KEYS = ("status", "skipped_by", "sync_score", "sync_offset", "sync_confidence", "mouth_activity")


def run_clip(stage: TargetsStage, head: TalkingPhoto, spec: ClipSpec, folder: Path) -> dict:
    """Render `spec`, track its window with `stage`; the row's gate numbers."""
    video = write_clip(head, spec, folder / f"{spec.kind}.mp4")
    row = stage.track(video, window_row(spec.kind))
    return {k: row.get(k) for k in RESULT_KEYS} | {"error": row.get("error")}


class Material:
    """The photo's talking head and the sample's voice tracks, loaded once."""

    def __init__(self) -> None:
        photo, sample = photo_path(), sample_paths()
        assert photo is not None and sample is not None
        self.photo, self.wav = photo, sample[0]
        self.head = TalkingPhoto(photo)
        self.tracks = voice_tracks(*sample)

    @cached_property
    def speakers(self) -> list[str]:
        return sorted(self.tracks)


def gate_clips(m: Material) -> list[ClipSpec]:
    """The kinds of the test: (a) talking, (b) still, (c) dub, (d) listener, (e) sound 3 frames late, (f) talking
    with head motion, (g) a dub with head motion, (h) the still photo with head motion."""
    rng = np.random.default_rng(7)
    frames = round(CLIP_S * TARGET_FPS)
    one, other = (m.tracks[s] for s in m.speakers)
    heard, mouth = stretch(other, 1.0)  # the longer solo turn (21.8-27.9 s of the sample) is at its end
    _, dub_mouth = stretch(one, 0.5)
    late_heard, late_mouth = stretch(other, 1.0, delay=3)
    return [
        ClipSpec("a_talking", heard, mouth, None, 0),
        ClipSpec("b_still", heard, np.zeros(frames), None, None),
        ClipSpec("c_dub", heard, dub_mouth, None, None),
        ClipSpec("d_listener", heard, listener_opening(frames, rng), None, None),
        ClipSpec("e_late3", late_heard, late_mouth, None, 3),
        ClipSpec("f_talking_motion", heard, mouth, head_motion(frames, rng), 0),
        ClipSpec("g_dub_motion", heard, dub_mouth, head_motion(frames, rng), None),
        ClipSpec("h_still_motion", heard, np.zeros(frames), head_motion(frames, rng), None),
    ]


# ---------------------------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def material() -> Material:
    why = missing_material()
    if why:
        pytest.skip(f"no real material: {why}")
    return Material()


@pytest.fixture(scope="module")
def results(material: Material, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ClipSpec, dict]]:
    folder = tmp_path_factory.mktemp("real_face_clips")
    stage = default_stage()
    return {spec.kind: (spec, run_clip(stage, material.head, spec, folder)) for spec in gate_clips(material)}


def test_material_is_one_face_and_two_voices(material: Material) -> None:
    assert 120 <= material.head.box[3] * material.head.scale <= 160  # face height on the canvas
    assert len(material.speakers) == 2
    for spk, track in material.tracks.items():
        assert len(track) >= 9 * RATE, f"{spk}: only {len(track) / RATE:.1f} s of solo speech"


def test_mouth_warp_moves_the_landmarks(material: Material) -> None:
    """The warp opens the mouth as dlib sees it: the inner-lip gap grows with the opening, while the eye-corner
    distance (the scale it is measured in) stays within 3%."""
    from ltxa_data.backends.active_speaker import mouth_opening
    from ltxa_data.backends.face_detector import DlibFaceAnalyzer, dlib_model_files

    head = material.head
    analyzer = DlibFaceAnalyzer(dlib_model_files(None))
    box = head.box[None]
    lms = np.stack([analyzer.landmarks(head.photo_frame(o), box)[0] for o in (0.0, 4.0, 8.0, 12.0)])
    opening = mouth_opening(lms)
    assert np.all(np.diff(opening) > 0.02), opening
    eyes = np.linalg.norm(lms[:, 36] - lms[:, 45], axis=1)
    assert np.abs(eyes / eyes[0] - 1).max() < 0.03, eyes


@pytest.mark.parametrize("kind", ["a_talking", "e_late3", "f_talking_motion"])
def test_talking_real_face_is_kept_at_its_offset(results: dict[str, tuple[ClipSpec, dict]], kind: str) -> None:
    spec, got = results[kind]
    assert got["status"] == "ok", f"{kind}: {got}"
    assert spec.expect_offset is not None and abs(got["sync_offset"] - spec.expect_offset) <= 1, f"{kind}: {got}"


@pytest.mark.parametrize("kind", ["b_still", "c_dub", "d_listener", "g_dub_motion", "h_still_motion"])
def test_non_talking_real_face_is_skipped(results: dict[str, tuple[ClipSpec, dict]], kind: str) -> None:
    _, got = results[kind]
    assert got["status"] == "skipped" and got["skipped_by"] == "active_speaker", f"{kind}: {got}"
