"""A small synthetic talking-head corpus: espeak-ng voices and PIL-drawn faces whose mouths follow the
audio, written as mp4s with an exact ground truth (who speaks when, scene cuts, face boxes).

Used by the demo and the tests. Everything is deterministic from `CorpusConfig.seed`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from scipy.signal import resample_poly

from ..media import write_video
from ..recipe import CorpusConfig
from .faces import LOOKS, MOUTH_LEVELS, PHOTO_FACE, Framing, Shot, ShotArt, TalkingPhoto, look, real_photo
from .speech import ESPEAK_SR, SENTENCES, VOICES, Plan, Speech, corpus_speakers, espeak, plan_corpus
from .spoil import burn_subtitle, defocus, reverberate, subtitle_lines, with_music

__all__ = ["ACCENT_LABELS", "SENTENCES", "VOICES", "generate_corpus", "load_ground_truth", "make_bad_inputs"]


GROUND_TRUTH = "ground_truth.json"


ACCENT_LABELS = "labels/accent.csv"
"""An accent corpus's labels (`write_accent_labels`), relative to the corpus folder."""


GT_VERSION = 8


def _frame_rms(x: np.ndarray, sr: int, n_frames: int, fps: float) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    centres = (np.arange(n_frames) + 0.5) / fps
    half = max(0.5 / fps, 0.02)
    lo = np.clip(np.round((centres - half) * sr).astype(np.int64), 0, len(x))
    hi = np.clip(np.round((centres + half) * sr).astype(np.int64), 0, len(x))
    return np.sqrt((c[hi] - c[lo]) / np.maximum(hi - lo, 1))


def _mouth_levels(env: np.ndarray) -> np.ndarray:
    if not np.any(env > 0):
        return np.zeros(len(env), np.int64)
    loud = env[env > 0.05 * env.max()]
    opening = np.clip(env / np.percentile(loud, 90), 0.0, 1.0)
    opening[opening < 0.1] = 0.0
    return np.round(opening * (MOUTH_LEVELS - 1)).astype(np.int64)


def _shot_mouth(plan: Plan, shot: Shot, levels: dict[str, np.ndarray], sr: int) -> np.ndarray:
    """Mouth opening level per frame of the clip for one shot, by what drives its mouth."""
    n = plan.n_frames
    if shot.mouth == "own":
        return levels[shot.speaker]
    if shot.mouth == "voice":
        return levels[plan.identity]
    if shot.mouth == "still":
        return np.zeros(n, np.int64)
    if shot.mouth == "other":
        unheard = np.zeros(round(plan.duration * sr), np.float32)
        ratio = Fraction(sr, ESPEAK_SR)
        for u in plan.unheard:
            y = resample_poly(u.wave, ratio.numerator, ratio.denominator).astype(np.float32)
            off = round(u.start * sr)
            y = y[: len(unheard) - off]
            unheard[off : off + len(y)] += y
        return _mouth_levels(_frame_rms(unheard, sr, n, float(plan.fps)))
    # A listener: closed, with a few short movements (a smile, a murmur) at times unrelated to the voice.
    rng = np.random.default_rng(zlib.crc32(plan.rel.encode()))
    out = np.zeros(n, np.int64)
    i = int(rng.integers(5, 25))
    while i < n:
        length = int(rng.integers(3, 9))
        out[i : i + length] = rng.integers(1, 4)
        i += length + int(rng.integers(15, 50))
    return out


def _render(plan: Plan, out_dir: Path, names: list[str]) -> dict[str, Any]:
    sr, fps = plan.sample_rate, plan.fps
    n = round(plan.duration * sr)
    tracks = {s: np.zeros(n, np.float32) for s in plan.speakers}
    ratio = Fraction(sr, ESPEAK_SR)
    segments = []
    for u in plan.utts:
        y = resample_poly(u.wave, ratio.numerator, ratio.denominator).astype(np.float32)
        y /= max(float(np.max(np.abs(y))), 1e-9)
        off = round(u.start * sr)
        y = y[: n - off]
        tracks[u.speaker][off : off + len(y)] += y
        segments.append({"speaker": u.speaker, "start": round(off / sr, 4),
                         "end": round((off + len(y)) / sr, 4), "text": u.text})
    seed = zlib.crc32(plan.rel.encode())
    if plan.kind == "reverb":
        tracks = {sp: reverberate(x, sr, seed) for sp, x in tracks.items()}
    mix = np.sum(list(tracks.values()), axis=0)
    if plan.kind == "music":
        mix = with_music(mix, sr, seed)
    scale = 10 ** (plan.gain_dbfs / 20) / max(float(np.max(np.abs(mix))), 1e-9)
    audio = np.stack([mix * (scale * g) for g in plan.channel_gains]).astype(np.float32)

    levels = {s: _mouth_levels(_frame_rms(x, sr, plan.n_frames, float(fps))) for s, x in tracks.items()}
    mouths = [_shot_mouth(plan, shot, levels, sr) for shot in plan.shots]
    arts = [ShotArt(plan.width, plan.height, look(names.index(s.speaker)), s.framing) if s.speaker != PHOTO_FACE
            else TalkingPhoto(real_photo(), plan.width, plan.height, face_h=s.framing.face_h, cx=s.framing.cx)
            for s in plan.shots]
    starts = [s.start_frame for s in plan.shots]

    def frames() -> Iterator[np.ndarray]:
        j = 0
        for i in range(plan.n_frames):
            while j + 1 < len(starts) and i >= starts[j + 1]:
                j += 1
            yield spoiled(arts[j].frame(int(mouths[j][i])), i, plan.shots[j].framing)

    def spoiled(frame: np.ndarray, i: int, fr: Framing) -> np.ndarray:
        if plan.kind == "blur":
            return defocus(frame, fr.face_h)
        if plan.kind == "subtitle":
            line = subtitle_at(plan, float(i / fps))
            return burn_subtitle(frame, line, fr.cx, fr.cy + SUBTITLE_Y * fr.face_h, SUBTITLE_H * fr.face_h,
                                 min(0.9 * 2 * min(fr.cx, plan.width - fr.cx), 1.6 * fr.face_h))
        return frame

    dest = out_dir / plan.rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    write_video(tmp, frames(), fps=fps, audio=audio, sample_rate=sr, rotation=plan.rotation)
    os.replace(tmp, dest)

    shots = []
    for s, art in zip(plan.shots, arts, strict=True):
        face, mouth = art.boxes()
        shots.append({"start": round(float(Fraction(s.start_frame) / fps), 6), "speaker": s.speaker,
                      "mouth": s.mouth, "face_box": face, "mouth_box": mouth})
    return {
        "path": plan.rel,
        "identity": plan.identity,
        "speakers": plan.speakers,
        "kind": plan.kind,
        "fps": float(fps),
        "sample_rate": sr,
        "channels": plan.channels,
        "width": plan.width,
        "height": plan.height,
        "rotation": plan.rotation,
        "duration_s": round(float(plan.duration), 6),
        "num_frames": plan.n_frames,
        "gain_dbfs": round(plan.gain_dbfs, 2),
        "segments": segments,
        "cuts": [sh["start"] for sh in shots[1:]],
        "shots": shots,
    }


SUBTITLE_Y, SUBTITLE_H = 0.62, 0.1
"""Subtitles sit under the chin (centre `SUBTITLE_Y` face heights below the face centre), `SUBTITLE_H` face heights
tall: inside a face crop, where a target would carry them."""


def subtitle_at(plan: Plan, t: float) -> str:
    """The subtitle line on screen at `t` s: the line of the sentence being spoken (or the next one) that its
    progress has reached."""
    u = next((u for u in plan.utts if u.end > t), plan.utts[-1])
    lines = subtitle_lines(u.text)
    k = int(np.clip((t - u.start) / max(u.end - u.start, 1e-6), 0, 0.999) * len(lines))
    return lines[k]


def _config_json(cfg: CorpusConfig) -> Any:
    # Without accents the accent fields are left out: the ground truth stays what it was before they existed.
    skip = None if cfg.accents else {"accents", "speakers_per_accent"}
    return json.loads(json.dumps(cfg.model_dump(mode="json", exclude=skip)))


def load_ground_truth(out_dir_or_file: Path) -> dict:
    """Read a corpus ground truth, given the corpus folder or the json file itself."""
    p = Path(out_dir_or_file)
    if p.is_dir():
        p = p / GROUND_TRUTH
    return json.loads(p.read_text(encoding="utf-8"))


def generate_corpus(out_dir: Path, cfg: CorpusConfig) -> Path:
    """Write the corpus under out_dir; return the path of out_dir/'ground_truth.json'.

    Idempotent: if ground_truth.json exists and its stored config equals cfg, return at once without
    rewriting. Otherwise clips of an older corpus listed in its ground truth are replaced.
    """
    out_dir = Path(out_dir)
    gt_path = out_dir / GROUND_TRUTH
    want = _config_json(cfg)
    old: dict | None = None
    if gt_path.is_file():
        try:
            old = load_ground_truth(gt_path)
        except (OSError, ValueError):
            old = None
        if (old is not None and old.get("config") == want and old.get("version") == GT_VERSION
                and all((out_dir / c["path"]).is_file() for c in old.get("clips", []))
                and (not cfg.accents or (out_dir / ACCENT_LABELS).is_file())):
            return gt_path
        gt_path.unlink()
    speakers = corpus_speakers(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    if old is not None:
        root = out_dir.resolve()
        for c in old.get("clips", []):
            p = (out_dir / str(c.get("path", ""))).resolve()
            if p.is_file() and p.is_relative_to(root) and p != root:
                p.unlink()
        if "accents" in old:
            (out_dir / ACCENT_LABELS).unlink(missing_ok=True)

    names = list(speakers)
    voices = {s: voice for s, (voice, _) in speakers.items()}
    rng = np.random.default_rng(cfg.seed)
    with tempfile.TemporaryDirectory(prefix="ltxa_corpus_") as td:
        speech = Speech(Path(td), rng, voices)
        plans = plan_corpus(cfg, speech, rng)
    workers = max(1, min(len(plans), os.cpu_count() or 1, 8))
    with ThreadPoolExecutor(max_workers=workers) as ex:
        clips = list(ex.map(lambda p: _render(p, out_dir, names), plans))

    clips += _copies(cfg, clips, out_dir)
    gt: dict[str, Any] = {"config": want, "version": GT_VERSION, "speakers": voices, "clips": clips}
    if cfg.accents:
        gt["accents"] = {s: accent for s, (_, accent) in speakers.items()}
        write_accent_labels(out_dir / ACCENT_LABELS, gt)
    tmp = gt_path.with_name(gt_path.name + ".tmp")
    tmp.write_text(json.dumps(gt, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, gt_path)
    return gt_path


def write_accent_labels(dest: Path, ground_truth: dict) -> None:
    """Write an accent corpus's labels (`attributes.<name>.labels`): columns video (relative to the corpus folder),
    start, end, value (an espeak-ng accent). A dialog has one row per turn, from its first sentence's start to its
    last's end; every other clip has one row for the whole video (start and end empty): its one voice's accent."""
    accents = ground_truth["accents"]
    rows: list[tuple[str, str, str, str]] = []
    for c in ground_truth["clips"]:
        if c["kind"] != "dialog":
            rows.append((c["path"], "", "", accents[c["identity"]]))
            continue
        turns: list[list[dict]] = []
        for g in c["segments"]:
            if turns and turns[-1][0]["speaker"] == g["speaker"]:
                turns[-1].append(g)
            else:
                turns.append([g])
        rows += [(c["path"], f"{t[0]['start']:.4f}", f"{t[-1]['end']:.4f}", accents[t[0]["speaker"]]) for t in turns]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["video", "start", "end", "value"])
        w.writerows(rows)
    os.replace(tmp, dest)


COPY_KINDS: dict[str, tuple[float, float, float, float, int | None]] = {
    # kind: (trimmed from the start, from the end, centred crop kept, then scaled by, frame rate)
    "crop_rescale": (0.0, 0.0, 0.88, 0.94, None),
    "trim": (1.0, 1.5, 1.0, 0.8, None),
    "framerate": (0.0, 0.0, 1.0, 0.8, 30),
}
"""The copies of `CorpusConfig.copy_clips`, in turn: re-uploads of a clip that was cropped and rescaled,
trimmed at both ends, or converted to another frame rate (each also rescaled and re-encoded at other
qualities: a copy is never its group's best)."""

"""The copies of `CorpusConfig.copy_clips`, in turn: re-uploads of a clip that was cropped and rescaled,
trimmed at both ends, or converted to another frame rate (each also rescaled and re-encoded at other
qualities: a copy is never its group's best)."""


def _copies(cfg: CorpusConfig, clips: list[dict[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """Copies of the first single-speaker clip of the first `copy_clips` speakers (FFmpeg), with their
    ground truth: `kind` copy, `copy_of` the original's path, `copy_kind`, times and boxes moved with it."""
    singles = [c for c in clips if c["kind"] == "single"]
    originals = [next(c for c in singles if c["identity"] == who)
                 for who in dict.fromkeys(c["identity"] for c in singles)][: cfg.copy_clips]
    out = []
    for k, orig in enumerate(originals):
        kind = list(COPY_KINDS)[k % len(COPY_KINDS)]
        head, tail, keep, factor, fps = COPY_KINDS[kind]
        w, h = orig["width"], orig["height"]
        cw, ch = 2 * round(w * keep / 2), 2 * round(h * keep / 2)
        ow, oh = 2 * round(cw * factor / 2), 2 * round(ch * factor / 2)
        filters = [f"crop={cw}:{ch}", f"scale={ow}:{oh}"] + ([f"fps={fps}"] if fps else [])
        rel = f"{orig['identity']}/reupload_{k:02d}.mp4"
        dest = out_dir / rel
        tmp = dest.with_name(dest.name + ".tmp.mp4")
        duration = orig["duration_s"] - head - tail
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", f"{head}", "-i",
                        str(out_dir / orig["path"]), "-t", f"{duration:.6f}", "-vf", ",".join(filters),
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-b:a", "64k", str(tmp)], check=True)
        os.replace(tmp, dest)
        ox, oy, scale = (w - cw) / 2, (h - ch) / 2, ow / cw

        def box(b: list[int], ox: float = ox, oy: float = oy, scale: float = scale) -> list[int]:
            return [round((b[0] - ox) * scale), round((b[1] - oy) * scale), round(b[2] * scale), round(b[3] * scale)]

        segments = [{**g, "start": round(max(g["start"] - head, 0.0), 4),
                     "end": round(min(g["end"] - head, duration), 4)}
                    for g in orig["segments"] if g["end"] > head and g["start"] < head + duration]
        shots = [{**sh, "start": round(max(sh["start"] - head, 0.0), 6), "face_box": box(sh["face_box"]),
                  "mouth_box": box(sh["mouth_box"])} for sh in orig["shots"]]
        out.append({**orig, "path": rel, "kind": "copy", "copy_of": orig["path"], "copy_kind": kind,
                    "fps": float(fps or orig["fps"]), "width": ow, "height": oh, "rotation": 0,
                    "duration_s": round(duration, 6), "num_frames": math.ceil(duration * (fps or orig["fps"]) - 1e-6),
                    "segments": segments, "cuts": [], "shots": shots})
    return out


def _speech_16k(seconds: float) -> np.ndarray:
    """About `seconds` of speaker spk0 at 16 kHz mono, float32 [1, N]."""
    n = round(seconds * 16000)
    out = np.zeros(n, np.float32)
    t = round(0.3 * 16000)
    with tempfile.TemporaryDirectory(prefix="ltxa_bad_") as td:
        for sentence in SENTENCES[:4]:
            if t >= n:
                break
            y = resample_poly(espeak(VOICES[0][1], sentence, 165, Path(td) / "s.wav"), 320, 441)
            y = y[: n - t]
            out[t : t + len(y)] = 0.3 * y
            t += len(y) + round(0.4 * 16000)
    return out[None]


def _plain_video(dest: Path, w: int, h: int, n_frames: int, audio: np.ndarray | None) -> None:
    fps = 25
    fr = Framing((90, 110, 140), (0, 0, 1, 1), (90, 110, 140), w / 2, h * 0.45, h * 0.42)
    art = ShotArt(w, h, LOOKS[0], fr)
    if audio is not None:
        levels = _mouth_levels(_frame_rms(audio[0], 16000, n_frames, fps))
    else:
        levels = np.arange(n_frames) % MOUTH_LEVELS
    write_video(dest, (art.frame(int(lv)) for lv in levels), fps=fps, audio=audio,
                sample_rate=16000 if audio is not None else None)


def make_bad_inputs(out_dir: Path, good_clip: Path) -> dict[str, str]:
    """Write a bad-input corpus into out_dir; return {relative filename: short expected-reason keyword}.

    Each file is broken in one way (the keyword says which); the strangely named one is a valid clip
    (its own content, so it is no duplicate) and is expected to be accepted ("ok").
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = Path(good_clip).read_bytes()
    (out_dir / "truncated.mp4").write_bytes(data[: int(len(data) * 0.4)])
    (out_dir / "empty.mp4").write_bytes(b"")
    speech = _speech_16k(6.0)
    _plain_video(out_dir / "no_audio.mp4", 480, 360, 150, None)
    with av.open(str(out_dir / "audio_only.mp4"), "w", format="mp4") as c:
        st = c.add_stream("aac", rate=16000, layout="mono")
        step = 8192
        for s in range(0, speech.shape[1], step):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(speech[:, s : s + step]), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, s, Fraction(1, 16000)
            for p in st.encode(af):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    _plain_video(out_dir / "ten_frames.mp4", 480, 360, 10, speech[:, : 16000 * 10 // 25])
    _plain_video(out_dir / "tiny.mp4", 96, 96, 150, speech)
    weird = "it's a \"weird\" náme 東京.mp4"
    _plain_video(out_dir / weird, 480, 360, 150, speech)
    return {
        "truncated.mp4": "truncated",
        "empty.mp4": "empty",
        "no_audio.mp4": "no audio",
        "audio_only.mp4": "no video",
        "ten_frames.mp4": "too short",
        "tiny.mp4": "too small",
        weird: "ok",
    }
