"""A small synthetic talking-head corpus: espeak-ng voices and PIL-drawn faces whose mouths follow the
audio, written as mp4s with an exact ground truth (who speaks when, scene cuts, face boxes).

Used by the demo and the tests. Everything is deterministic from `CorpusConfig.seed`.
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw
from scipy.signal import resample_poly

from ..media import write_video
from ..recipe import CorpusConfig

__all__ = ["SENTENCES", "VOICES", "generate_corpus", "load_ground_truth", "make_bad_inputs"]

VOICES: tuple[tuple[str, str], ...] = (
    ("spk0", "en-029+m2"),
    ("spk1", "en-gb-scotland+f4"),
    ("spk2", "en-us+Alex"),
    ("spk3", "en-us+Annie"),
    ("spk4", "en-us+f2 -p 65"),
    ("spk5", "en-us+m1 -p 20"),
    ("spk6", "en-us+m7"),
    ("spk7", "en+klatt"),
)

SENTENCES: tuple[str, ...] = (
    "The train to the city leaves in ten minutes.",
    "Please remember to water the plants on Friday.",
    "We found a small cafe near the old harbour.",
    "My brother bought a new bicycle last summer.",
    "The meeting has been moved to Thursday afternoon.",
    "She painted the kitchen a bright shade of yellow.",
    "It rained all night and the river is very high.",
    "Could you pass me the salt and the pepper?",
    "The museum is closed on Mondays.",
    "I have never seen so many stars in the sky.",
    "Our neighbours are planning a garden party next week.",
    "The soup needs a little more salt.",
    "He forgot his umbrella at the library again.",
    "The children built a sandcastle on the beach.",
    "This road leads straight to the mountain village.",
    "I usually drink tea in the morning and coffee after lunch.",
    "The concert starts at eight o'clock sharp.",
    "Dogs are not allowed inside the bakery.",
    "We should leave early to avoid the traffic.",
    "The old clock in the hall stopped working years ago.",
    "She reads a new book almost every week.",
    "The bridge was painted red to match the sunset.",
    "My grandmother grows tomatoes and beans in her garden.",
    "The printer on the second floor is out of paper.",
    "Let me know when you arrive at the station.",
    "The lake freezes over every winter.",
    "They opened a small bookshop on the corner.",
    "I think the package will arrive tomorrow.",
    "The wind knocked over the sign outside the shop.",
    "He plays the piano for an hour every evening.",
    "Fresh bread smells wonderful in the morning.",
    "The team won the final match by a single point.",
    "We watched the boats come back into the harbour.",
    "The hotel room had a beautiful view of the sea.",
    "Please close the window before you go to bed.",
    "The history lesson was about ancient ships.",
    "A family of ducks lives near the pond.",
    "My phone battery always runs out too quickly.",
    "The farmer drove his tractor across the field.",
    "We need more chairs for the guests tonight.",
    "The mountain path is steep but the view is worth it.",
    "She sent a postcard from every city she visited.",
    "The cat likes to sleep on the warm windowsill.",
    "The market sells fruit and flowers on Saturdays.",
    "I lost my keys somewhere between home and work.",
    "The new bridge will open to traffic next spring.",
    "He fixed the broken fence with some old boards.",
    "Breakfast is served until half past ten.",
    "The students planted trees along the school yard.",
    "Snow covered the whole town by the morning.",
    "Turn left after the church and keep going straight.",
    "The lighthouse guided ships along the rocky coast.",
    "We ordered pizza because nobody wanted to cook.",
    "The doctor said I should walk more every day.",
    "Her favourite colour has always been deep green.",
    "The bus was late because of the heavy snow.",
    "Our teacher told us a story about a brave sailor.",
    "The orchestra practised the same piece all afternoon.",
    "I will call you back after dinner.",
    "The garden looks lovely after the rain.",
    "They spent the weekend camping by the river.",
    "The baker wakes up at four to make the bread.",
    "Nobody expected the film to be so funny.",
    "The tickets sold out in less than an hour.",
    "A strong coffee helps me think in the morning.",
    "The owl called softly from the top of the barn.",
    "We painted the fence white last weekend.",
    "The shop on the corner sells very good cheese.",
    "My sister is learning to speak Italian.",
    "The plane landed safely despite the strong wind.",
    "Please write your name at the top of the page.",
    "The kettle is boiling so the tea is almost ready.",
)

GROUND_TRUTH = "ground_truth.json"
GT_VERSION = 4

_ESPEAK_SR = 22050
_FPS_CHOICES = (Fraction(24), Fraction(25), Fraction(30))
_NTSC = Fraction(30000, 1001)
_SAMPLE_RATES = (16000, 44100, 48000)
_SIZES = ((640, 360), (480, 480), (360, 640), (512, 384))
_MOUTH_LEVELS = 12
_SCAN = 12  # unused sentences tried (synthesized) when looking for one that fits the remaining room
_TURN_MIN_S = 5.5


# ---------------------------------------------------------------------------------------------- faces


@dataclass(frozen=True)
class _Look:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    style: str
    eye_spacing: float  # distance between eye centres / face width
    width_ratio: float  # face width / face height
    shirt: tuple[int, int, int]
    iris: tuple[int, int, int]


# Skin tones stop at a medium brown: on flat drawn faces, darker skin leaves dlib's HOG detector and landmarks
# too little contrast (looks 2 and 5 were found in 4-19 of 24 framings and their inner lips not followed).
_LOOKS: tuple[_Look, ...] = (
    _Look((241, 194, 160), (45, 32, 25), "short", 0.42, 0.74, (40, 70, 140), (60, 90, 140)),
    _Look((198, 134, 94), (20, 15, 10), "long", 0.47, 0.69, (150, 40, 60), (70, 45, 30)),
    _Look((185, 125, 85), (12, 10, 10), "bald", 0.40, 0.81, (50, 120, 70), (40, 25, 15)),
    _Look((255, 219, 172), (205, 165, 70), "bun", 0.45, 0.67, (200, 180, 60), (60, 120, 90)),
    _Look((224, 172, 105), (125, 55, 25), "fringe", 0.44, 0.72, (90, 50, 120), (80, 60, 40)),
    _Look((175, 118, 85), (30, 25, 20), "spiky", 0.42, 0.78, (210, 110, 40), (30, 20, 15)),
    _Look((233, 190, 150), (160, 160, 165), "short", 0.46, 0.80, (35, 35, 40), (90, 110, 120)),
    _Look((170, 110, 75), (95, 20, 20), "long", 0.41, 0.65, (40, 140, 150), (50, 35, 25)),
)


@dataclass(frozen=True)
class _Framing:
    """Where and how one speaker is shown: background, panel, face centre and face height (pixels)."""

    bg: tuple[int, int, int]
    panel: tuple[int, int, int, int]
    panel_rgb: tuple[int, int, int]
    cx: float
    cy: float
    face_h: float


@dataclass
class _Shot:
    """`speaker`: whose face is shown; `mouth`: what moves its mouth: `own` (that speaker's heard voice),
    `voice` (the clip's main voice, lip-synced onto another face), `other` (words nobody hears), `listener`
    (small movements unrelated to the audio) or `still` (one picture throughout)."""

    start_frame: int
    speaker: str
    framing: _Framing
    mouth: str = "own"


def _colour(rng: np.random.Generator, hue: float | None = None) -> tuple[int, int, int]:
    h = float(rng.uniform(0, 1)) if hue is None else hue % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, float(rng.uniform(0.2, 0.55)), float(rng.uniform(0.35, 0.85)))
    return int(r * 255), int(g * 255), int(b * 255)


def _framing(rng: np.random.Generator, w: int, h: int, look: _Look, scale: float | None = None,
             hue: float | None = None, cx_frac: float | None = None) -> _Framing:
    fh = h * (float(rng.uniform(0.36, 0.46)) if scale is None else scale)
    fw = fh * look.width_ratio
    margin = 0.5 * fw * 1.25 + 4
    cx = w * (0.5 + float(rng.uniform(-0.08, 0.08))) if cx_frac is None else w * cx_frac
    cx = float(np.clip(cx, margin, w - margin))
    cy = h * (0.45 + float(rng.uniform(-0.04, 0.04)))
    bg = _colour(rng, hue)
    pw, ph = int(w * rng.uniform(0.15, 0.35)), int(h * rng.uniform(0.15, 0.35))
    px, py = int(rng.uniform(0, w - pw)), int(rng.uniform(0, h * 0.5))
    shade = float(rng.choice([0.7, 1.3]))
    panel_rgb = tuple(int(np.clip(c * shade + 10, 0, 255)) for c in bg)
    return _Framing(bg, (px, py, px + pw, py + ph), panel_rgb, cx, cy, fh)  # type: ignore[arg-type]


def _reframe(rng: np.random.Generator, w: int, h: int, look: _Look, old: _Framing) -> _Framing:
    """A different camera set-up of the same person: new background, position and scale."""
    scale = old.face_h / h * float(rng.choice([rng.uniform(0.72, 0.85), rng.uniform(1.18, 1.3)]))
    scale = float(np.clip(scale, 0.3, 0.5))
    if abs(scale * h - old.face_h) < 0.12 * old.face_h:
        scale = float(np.clip(old.face_h / h * (0.78 if old.face_h / h > 0.4 else 1.25), 0.3, 0.5))
    side = -1.0 if old.cx > w / 2 else 1.0
    hue = colorsys.rgb_to_hsv(*(c / 255 for c in old.bg))[0] + float(rng.uniform(0.3, 0.7))
    return _framing(rng, w, h, look, scale=scale, hue=hue, cx_frac=0.5 + side * float(rng.uniform(0.12, 0.2)))


class _ShotArt:
    """Pre-drawn frames of one shot, one per mouth opening level (drawing is the slow part)."""

    def __init__(self, w: int, h: int, look: _Look, fr: _Framing) -> None:
        self.look, self.fr = look, fr
        self.face_w = fr.face_h * look.width_ratio
        self.base = self._draw_base(w, h)
        fw, fh = self.face_w, fr.face_h
        self.mouth_c = (fr.cx, fr.cy + 0.27 * fh)
        self.mouth_w, self.mouth_h = 0.36 * fw, 0.15 * fh
        self._frames: dict[int, np.ndarray] = {}

    def boxes(self) -> tuple[list[int], list[int]]:
        fr, fw = self.fr, self.face_w
        face = [round(fr.cx - fw / 2), round(fr.cy - fr.face_h / 2), round(fw), round(fr.face_h)]
        mx, my = self.mouth_c
        mouth = [round(mx - self.mouth_w / 2) - 2, round(my - self.mouth_h / 2) - 2,
                 round(self.mouth_w) + 4, round(self.mouth_h) + 4]
        return face, mouth

    def frame(self, level: int) -> np.ndarray:
        arr = self._frames.get(level)
        if arr is None:
            img = self.base.copy()
            d = ImageDraw.Draw(img)
            mx, my = self.mouth_c
            hw = self.mouth_w / 2
            if level == 0:
                lw = max(2, round(self.fr.face_h / 70))
                d.line([(mx - hw, my), (mx + hw, my)], fill=(120, 40, 50), width=lw)
            else:
                hh = max(1.5, self.mouth_h / 2 * level / (_MOUTH_LEVELS - 1))
                d.ellipse([mx - hw, my - hh, mx + hw, my + hh], fill=(60, 12, 22), outline=(150, 60, 70),
                          width=max(1, round(self.fr.face_h / 110)))
            arr = np.asarray(img)
            self._frames[level] = arr
        return arr

    def _draw_base(self, w: int, h: int) -> Image.Image:
        fr, lk = self.fr, self.look
        fh, fw, cx, cy = fr.face_h, self.face_w, fr.cx, fr.cy
        img = Image.new("RGB", (w, h), fr.bg)
        d = ImageDraw.Draw(img)
        d.rectangle(fr.panel, fill=fr.panel_rgb)
        skin_dark = tuple(int(c * 0.8) for c in lk.skin)
        if lk.style == "long":
            d.rounded_rectangle([cx - 0.62 * fw, cy - 0.58 * fh, cx + 0.62 * fw, cy + 0.62 * fh],
                                radius=int(0.4 * fw), fill=lk.hair)
        # shoulders, neck
        d.ellipse([cx - 1.15 * fw, cy + 0.42 * fh, cx + 1.15 * fw, cy + 1.5 * fh], fill=lk.shirt)
        d.rectangle([cx - 0.17 * fw, cy + 0.3 * fh, cx + 0.17 * fw, cy + 0.6 * fh], fill=skin_dark)
        # ears, face
        for sx in (-1, 1):
            ex = cx + sx * 0.5 * fw
            d.ellipse([ex - 0.08 * fw, cy - 0.1 * fh, ex + 0.08 * fw, cy + 0.1 * fh], fill=skin_dark)
        d.ellipse([cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2], fill=lk.skin)
        self._draw_hair(d, cx, cy, fw, fh)
        # Shaded eye sockets and thick brows over a lighter nose bridge: the dark band across the
        # eyes is what frontal face detectors key on, whatever the skin tone.
        ey = cy - 0.07 * fh
        r, pr = 0.085 * fw, 0.05 * fw
        socket = tuple(int(c * 0.45) for c in lk.skin)
        sclera = tuple(int(0.55 * c + 0.45 * 235) for c in lk.skin)
        for sx in (-1, 1):
            ex = cx + sx * lk.eye_spacing * fw / 2
            d.ellipse([ex - 1.5 * r, ey - 1.1 * r, ex + 1.5 * r, ey + 1.0 * r], fill=socket)
            d.ellipse([ex - r, ey - 0.55 * r, ex + r, ey + 0.55 * r], fill=sclera)
            d.ellipse([ex - pr, ey - pr * 0.9, ex + pr, ey + pr * 0.9], fill=tuple(int(c * 0.35) for c in lk.iris))
            d.line([(ex - 1.2 * r, ey - 1.6 * r), (ex + 1.2 * r, ey - 1.8 * r * (1 if sx > 0 else 0.9))],
                   fill=tuple(int(c * 0.6) for c in lk.hair), width=max(3, round(fh / 28)))
        # nose: a lit bridge and dark nostrils
        light = tuple(min(255, int(c * 1.12 + 12)) for c in lk.skin)
        d.polygon([(cx, cy - 0.06 * fh), (cx - 0.05 * fw, cy + 0.12 * fh), (cx + 0.05 * fw, cy + 0.12 * fh)],
                  fill=light)
        for sx in (-1, 1):
            nx = cx + sx * 0.035 * fw
            d.ellipse([nx - 0.025 * fw, cy + 0.11 * fh, nx + 0.025 * fw, cy + 0.14 * fh], fill=skin_dark)
        return img

    def _draw_hair(self, d: ImageDraw.ImageDraw, cx: float, cy: float, fw: float, fh: float) -> None:
        lk = self.look
        top = [cx - 0.53 * fw, cy - 0.56 * fh, cx + 0.53 * fw, cy + 0.05 * fh]
        if lk.style in ("short", "long"):
            d.chord(top, 180, 360, fill=lk.hair)
        elif lk.style == "bun":
            d.chord(top, 180, 360, fill=lk.hair)
            d.ellipse([cx - 0.2 * fw, cy - 0.78 * fh, cx + 0.2 * fw, cy - 0.45 * fh], fill=lk.hair)
        elif lk.style == "fringe":
            d.chord(top, 180, 360, fill=lk.hair)
            d.rectangle([cx - 0.4 * fw, cy - 0.3 * fh, cx + 0.4 * fw, cy - 0.2 * fh], fill=lk.hair)
        elif lk.style == "spiky":
            d.chord(top, 180, 360, fill=lk.hair)
            n = 7
            for i in range(n):
                x0 = cx - 0.48 * fw + i * 0.96 * fw / n
                d.polygon([(x0, cy - 0.4 * fh), (x0 + 0.96 * fw / n, cy - 0.4 * fh),
                           (x0 + 0.48 * fw / n, cy - 0.66 * fh)], fill=lk.hair)
        else:  # bald: a thin fringe of hair at the temples (a beard would hide the jaw that landmarks fit)
            for sx in (-1, 1):
                d.chord([cx + sx * 0.5 * fw - 0.1 * fw, cy - 0.3 * fh, cx + sx * 0.5 * fw + 0.1 * fw, cy + 0.05 * fh],
                        90 - sx * 90 - 90, 90 - sx * 90 + 90, fill=lk.hair)


# ---------------------------------------------------------------------------------------------- a real face

PHOTO_FACE = "grace_hopper"
"""The name the ground truth gives the real photograph's face (it is no identity of the corpus)."""


def real_photo() -> Path:
    """A real photograph of a face that ships inside a widely used package: matplotlib's grace_hopper.jpg."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    path = Path(spec.origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise RuntimeError("matplotlib's sample photo mpl-data/sample_data/grace_hopper.jpg is missing: the corpus "
                           "shows it as a real face; install the project's dependencies")
    return path


class TalkingPhoto:
    """A real photograph (head and shoulders) on a canvas whose mouth opens by a smooth warp of the lower face:
    pixels below the inner-lip line (from dlib's 68 landmarks on the photo, found once) move down by
    `open * weight(x, y)` (1 from the lips to the chin between the mouth corners, widening to the jaw, fading out
    over the neck), and the opened gap is filled dark like a mouth interior. dlib's landmarks on the warped photo
    open with it, so a talking real face can be made from any speech."""

    def __init__(self, photo: Path, width: int = 640, height: int = 360, face_h: float | None = None,
                 rows: tuple[int, int] = (40, 520), cx: float | None = None,
                 backdrop: tuple[int, int, int] = (96, 108, 124)) -> None:
        from ..backends.face_detector import DlibFaceAnalyzer, DlibFaceDetector, dlib_model_files

        img = np.asarray(Image.open(photo).convert("RGB"))
        self.photo = np.ascontiguousarray(img[rows[0]: rows[1]])
        boxes = DlibFaceDetector("hog", 1).detect(self.photo[None])[0]
        if len(boxes) != 1:
            raise RuntimeError(f"{photo}: expected one face, dlib found {len(boxes)}")
        self.box = boxes[0, :4]
        self.landmarks = DlibFaceAnalyzer(dlib_model_files(None)).landmarks(self.photo, boxes)[0]
        self.width, self.height = width, height
        self.scale = 0.75 if face_h is None else float(face_h) / float(self.box[3])
        """Photo pixels to canvas pixels."""
        self._field()
        h, w = self.photo.shape[:2]
        self.centre = self.box[:2] + self.box[2:] / 2
        self.backdrop = np.empty((height, width, 3), np.uint8)
        shade = np.linspace(1.1, 0.85, height)[:, None, None]
        self.backdrop[:] = np.clip(np.array(backdrop) * shade, 0, 255).astype(np.uint8)
        left = (width - w * self.scale) / 2 if cx is None else cx - self.scale * self.centre[0]
        self.origin = np.array([left, height - h * self.scale])
        """Canvas position of the photo's top-left corner when still."""
        self._levels: dict[int, np.ndarray] = {}

    def _field(self) -> None:
        lm = self.landmarks
        h, w = self.photo.shape[:2]
        mid = (lm[[60, 61, 62, 63, 64]] + lm[[60, 67, 66, 65, 64]]) / 2  # inner-lip midline, corner to corner
        xc = (lm[60, 0] + lm[64, 0]) / 2
        lips_hw = 1.15 * (lm[64, 0] - lm[60, 0]) / 2
        jaw_hw = (lm[12, 0] - lm[4, 0]) / 2
        chin = lm[8, 1]
        fall = 0.6 * (chin - lm[27, 1])
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        line = np.interp(xx[0], mid[:, 0], mid[:, 1]).astype(np.float32)[None, :]
        depth = np.clip((yy - line) / (chin - np.interp(xc, mid[:, 0], mid[:, 1])), 0, 1)
        half = lips_hw + (jaw_hw - lips_hw) * np.sqrt(depth)
        across = np.clip(1 - ((xx - xc) / half) ** 2, 0, 1)
        down = np.where(yy < chin, 1.0, 0.5 * (1 + np.cos(np.pi * np.clip((yy - chin) / fall, 0, 1))))
        weight = (across * down * (yy >= line)).astype(np.float32)
        rows, cols = np.nonzero(weight.any(axis=1))[0], np.nonzero(weight.any(axis=0))[0]
        self.roi = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        """The part of the photo the warp changes."""
        self.weight, self.xx, self.yy = weight[self.roi], xx[self.roi], yy[self.roi]
        self.line = np.broadcast_to(line, yy.shape)[self.roi]
        self.below = (yy >= line)[self.roi]

    def photo_frame(self, open_px: float) -> np.ndarray:
        """The photo with its mouth opened `open_px` canvas pixels (0: the photo untouched)."""
        import cv2

        if open_px <= 0.05:
            return self.photo
        src_y = self.yy - np.float32(open_px / self.scale) * self.weight
        moved = cv2.remap(self.photo, self.xx, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gap = (np.clip(self.line - src_y, 0, 1) * self.below)[..., None]  # sampling from above the lip line
        inside = np.array([46, 18, 22], np.float32)
        out = self.photo.copy()
        out[self.roi] = (moved * (1 - gap) + inside * gap).astype(np.uint8)
        return out

    def canvas(self, open_px: float, motion: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
        """One RGB canvas: the photo (mouth open `open_px`) moved by `motion` = (dx, dy, scale about the face)."""
        import cv2

        dx, dy, s = motion
        scale = self.scale * s
        face = self.origin + self.scale * self.centre
        shift = face + np.array([dx, dy]) - scale * self.centre
        m = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]], np.float64)
        out = self.backdrop.copy()
        cv2.warpAffine(self.photo_frame(open_px), m, (self.width, self.height), dst=out, flags=cv2.INTER_AREA,
                       borderMode=cv2.BORDER_TRANSPARENT)
        return out

    def frame(self, level: int) -> np.ndarray:
        """The still canvas with the mouth at a corpus mouth level (0 closed .. 11 widest: 8.5% of the face)."""
        if level not in self._levels:
            self._levels[level] = self.canvas(level / (_MOUTH_LEVELS - 1) * 0.085 * self.box[3] * self.scale)
        return self._levels[level]

    def boxes(self) -> tuple[list[int], list[int]]:
        """The face's and the mouth's boxes on the still canvas (x, y, w, h)."""
        def on_canvas(x0: float, y0: float, x1: float, y1: float) -> list[int]:
            a, b = self.origin + self.scale * np.array([x0, y0])
            c, d = self.origin + self.scale * np.array([x1, y1])
            return [round(a), round(b), round(c - a), round(d - b)]

        x, y, w, h = self.box
        mouth = self.landmarks[48:68]
        return on_canvas(x, y, x + w, y + h), on_canvas(*mouth.min(axis=0), *mouth.max(axis=0))


# ---------------------------------------------------------------------------------------------- speech


def _espeak(voice_args: str, text: str, rate: int, wav: Path) -> np.ndarray:
    """Synthesize one sentence; returns float32 mono at 22050 Hz, trimmed to the speech itself."""
    voice, *extra = voice_args.split()
    cmd = ["espeak-ng", "-v", voice, *extra, "-s", str(rate), "-w", str(wav), text]
    subprocess.run(cmd, check=True, capture_output=True)
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != _ESPEAK_SR:
        x = resample_poly(x, _ESPEAK_SR, sr, axis=0).astype(np.float32)
    return _trim(x[:, 0])


def _trim(x: np.ndarray, rel: float = 0.02) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        raise RuntimeError("espeak-ng produced silence")
    idx = np.flatnonzero(np.abs(x) > rel * peak)
    return np.ascontiguousarray(x[idx[0] : idx[-1] + 1] / peak)


class _Speech:
    """Sentence supply per speaker (each speaker walks its own shuffle of the pool) with a synth cache."""

    def __init__(self, workdir: Path, rng: np.random.Generator, voices: dict[str, str]) -> None:
        self._wav = workdir / "say.wav"
        self._rng = rng
        self._voices = voices
        self._queues: dict[str, list[int]] = {s: [] for s in voices}
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}

    def say(self, speaker: str, sentence: int, rate: int) -> np.ndarray:
        key = (speaker, sentence, rate)
        if key not in self._cache:
            self._cache[key] = _espeak(self._voices[speaker], SENTENCES[sentence], rate, self._wav)
        return self._cache[key]

    def take(self, speaker: str, rate: int, max_s: float | None = None, min_s: float = 0.0,
             scan: int | None = _SCAN, longest: bool = False) -> tuple[str, np.ndarray] | None:
        """The next unused sentence of this speaker lasting min_s..max_s seconds (None: any), or None.

        With `longest`, the longest such sentence among those scanned instead of the next one.
        """
        q = self._queues[speaker]
        if not q:  # only after the whole pool is used up; sentences repeat from here on
            q.extend(int(i) for i in self._rng.permutation(len(SENTENCES)))
        best, best_d = -1, -1.0
        for j, idx in enumerate(q if scan is None else q[:scan]):
            d = len(self.say(speaker, idx, rate)) / _ESPEAK_SR
            if d >= min_s and (max_s is None or d <= max_s) and d > best_d:
                best, best_d = j, d
                if not longest:
                    break
        if best < 0:
            return None
        idx = q.pop(best)
        return SENTENCES[idx], self.say(speaker, idx, rate)


# ---------------------------------------------------------------------------------------------- planning


@dataclass
class _Utt:
    speaker: str
    text: str
    start: float
    wave: np.ndarray  # 22050 Hz, trimmed, peak 1

    @property
    def end(self) -> float:
        return self.start + len(self.wave) / _ESPEAK_SR


@dataclass
class _Plan:
    rel: str
    kind: str
    identity: str
    speakers: list[str]
    fps: Fraction
    sample_rate: int
    channels: int
    width: int
    height: int
    gain_dbfs: float
    channel_gains: list[float]
    n_frames: int = 0
    utts: list[_Utt] = field(default_factory=list)
    shots: list[_Shot] = field(default_factory=list)
    unheard: list[_Utt] = field(default_factory=list)  # what a dubbed face's mouth says
    rotation: int = 0

    @property
    def duration(self) -> Fraction:
        return Fraction(self.n_frames) / self.fps


def _rate(rng: np.random.Generator) -> int:
    return int(rng.integers(150, 176))


def _monologue(speech: _Speech, rng: np.random.Generator, spk: str, length_s: float,
               bounds: tuple[float, float] | None) -> tuple[list[_Utt], float]:
    """Sentences with pauses filling about `length_s`; returns them and the clip length.

    With `bounds` (the configured length range) trailing silence is cut, and a clip that would end
    in a long silence gets one more sentence instead, so that every window stays dense with speech.
    Without, the clip keeps `length_s` and its speech is one or two sentences that nearly fill it.
    """
    rate = _rate(rng)
    t = float(rng.uniform(0.3, 0.6))
    utts: list[_Utt] = []
    while True:
        start = t + (float(rng.uniform(0.3, 0.8)) if utts else 0.0)
        room = length_s - 0.15 - start
        got = None
        if bounds is None and not utts:
            got = speech.take(spk, rate, room, room - 0.6, scan=None)
            got = got or speech.take(spk, rate, room, scan=None, longest=True)
        elif room > 0.8:
            got = speech.take(spk, rate, room)
        if got is None and bounds is not None and bounds[0] - t > 0.6:
            got = speech.take(spk, rate, bounds[1] - 0.15 - start)
        if got is None:
            if utts:
                break
            got = speech.take(spk, rate)
            assert got is not None
        utts.append(_Utt(spk, got[0], start, got[1]))
        t = utts[-1].end
    tail = float(rng.uniform(0.2, 0.45))
    if bounds is None:
        return utts, max(length_s, t + tail)
    return utts, max(t + tail, min(bounds[0], length_s))


def _dialog(speech: _Speech, rng: np.random.Generator, a: str, b: str
            ) -> tuple[list[_Utt], list[float], float]:
    """Turns A, B, A, ... of 2-3 sentences, each turn at least 5.5 s; about 14-20 s in all."""
    target = float(rng.uniform(14.0, 20.0))
    n_turns = 3 if target >= 19.0 else 2
    lead = float(rng.uniform(0.3, 0.6))
    gaps = [float(rng.uniform(0.4, 0.8)) for _ in range(n_turns - 1)]
    turn_len = max(_TURN_MIN_S, (target - lead - sum(gaps)) / n_turns)
    rates = {a: _rate(rng), b: _rate(rng)}
    utts: list[_Utt] = []
    turn_starts: list[float] = []
    t = lead
    for k in range(n_turns):
        spk = a if k % 2 == 0 else b
        start = t + (gaps[k - 1] if k else 0.0)
        s, n = start, 0
        while n < 2 or s - start < _TURN_MIN_S or (s - start < turn_len - 0.8 and n < 3):
            rate = rates[spk]
            pause = float(rng.uniform(0.3, 0.6)) if n else 0.0
            got = None
            if n:
                need = turn_len - (s + pause - start)
                got = speech.take(spk, rate, max(need, 0.0) + 1.5, need)
                got = got or speech.take(spk, rate, max(need, 0.0) + 1.5, longest=True)
            got = got or speech.take(spk, rate)
            assert got is not None
            short_by = _TURN_MIN_S + 0.01 - (s + pause + len(got[1]) / _ESPEAK_SR - start)
            if n and 0 < short_by <= 0.9 - pause:
                pause += short_by  # a slightly longer pause completes the turn instead of a third sentence
            utts.append(_Utt(spk, got[0], s + pause, got[1]))
            s, n = utts[-1].end, n + 1
        turn_starts.append(start)
        t = s
    return utts, turn_starts, t + float(rng.uniform(0.3, 0.6))


def _plan_corpus(cfg: CorpusConfig, speech: _Speech, rng: np.random.Generator) -> list[_Plan]:
    names = [name for name, _ in VOICES[: cfg.speakers]]
    n_spk = len(names)
    perm = [names[int(i)] for i in rng.permutation(n_spk)]
    specs: list[tuple[str, str, str | None]] = [
        ("single", s, None) for s in names for _ in range(cfg.clips_per_speaker)
    ]
    for k in range(cfg.two_speaker_clips):
        off = 1 + (k // n_spk) % (n_spk - 1)
        specs.append(("dialog", perm[k % n_spk], perm[(k + off) % n_spk]))
    d = cfg.two_speaker_clips
    specs += [("cut", perm[(d + k) % n_spk], None) for k in range(cfg.scene_cut_clips)]
    c = cfg.scene_cut_clips
    specs += [("short", perm[(d + c + k) % n_spk], None) for k in range(cfg.short_clips)]
    # The cases where the face on screen is not the voice's owner speaking, and a phone clip; each kind
    # starts at another speaker, and a shown face is another identity's.
    for j, (kind, count) in enumerate((("listener", cfg.listener_clips), ("still", cfg.still_clips),
                                       ("dub", cfg.dub_clips), ("lipsync", cfg.lipsync_clips),
                                       ("phone", cfg.phone_clips))):
        for k in range(count):
            main = perm[(j + k) % n_spk]
            specs.append((kind, main, perm[(j + k + 1 + n_spk // 2) % n_spk] if kind == "listener" else None))

    n = len(specs)
    o_fps, o_sr, o_ch, o_size = (int(x) for x in rng.integers(0, 12, size=4))
    ntsc = int(rng.integers(0, n)) if n >= 12 else -1
    counters: dict[tuple[str, str], int] = {}
    prefix = {"single": "clip", "dialog": "dialog", "cut": "cut", "short": "short", "listener": "listener",
              "still": "still", "dub": "dub", "lipsync": "lipsync", "phone": "phone"}
    rotations = (90, 270, 180)
    plans: list[_Plan] = []
    for i, (kind, main, partner) in enumerate(specs):
        k = counters.get((main, kind), 0)
        counters[(main, kind)] = k + 1
        fps = _NTSC if i == ntsc else _FPS_CHOICES[(i + o_fps) % 3]
        sr = _SAMPLE_RATES[(i + i // 3 + o_sr) % 3]
        channels = 1 + (i + i // 4 + o_ch) % 2
        w, h = _SIZES[(i + o_size) % 4] if kind != "phone" else (360, 640)
        gains = [1.0, float(rng.uniform(0.7, 1.0))]
        if channels == 2 and rng.uniform() < 0.5:
            gains.reverse()
        plan = _Plan(rel=f"{main}/{prefix[kind]}_{k:02d}.mp4", kind=kind, identity=main,
                     speakers=[main] if partner is None or kind != "dialog" else [main, partner], fps=fps,
                     sample_rate=sr,
                     channels=channels, width=w, height=h, gain_dbfs=float(rng.uniform(-9.0, -1.0)),
                     channel_gains=gains[:channels])
        look = _LOOKS[names.index(main)]
        fr = _framing(rng, w, h, look)
        lo, hi = cfg.clip_seconds
        if kind == "dialog":
            assert partner is not None
            utts, turn_starts, dur = _dialog(speech, rng, main, partner)
            fr_b = _framing(rng, w, h, _LOOKS[names.index(partner)], hue=colorsys.rgb_to_hsv(
                *(x / 255 for x in fr.bg))[0] + float(rng.uniform(0.3, 0.7)))
            for j, ts in enumerate(turn_starts):
                who = plan.speakers[j % 2]
                # The shot changes on the frame on screen when the turn's first sentence starts.
                start_frame = 0 if j == 0 else math.floor(ts * fps + Fraction(1, 10**6))
                plan.shots.append(_Shot(start_frame, who, fr if who == main else fr_b))
        else:
            if kind == "short":
                utts, dur = _monologue(speech, rng, main, float(rng.uniform(3.8, 4.5)), None)
            else:
                utts, dur = _monologue(speech, rng, main, float(rng.uniform(lo, hi)), (lo, hi))
            if kind == "listener":
                assert partner is not None
                shown = _LOOKS[names.index(partner)]
                plan.shots.append(_Shot(0, partner, _framing(rng, w, h, shown), "listener"))
            elif kind == "lipsync":  # a real face, not the voice's owner, lip-synced to the voice
                plan.shots.append(_Shot(0, PHOTO_FACE, _framing(rng, w, h, look), "voice"))
            else:
                plan.shots.append(_Shot(0, main, fr, {"still": "still", "dub": "other"}.get(kind, "own")))
            if kind == "dub":
                plan.unheard, _ = _monologue(speech, rng, main, dur, (dur, dur))
            if kind == "phone":
                plan.rotation = rotations[k % len(rotations)]
        plan.n_frames = math.ceil(Fraction(dur).limit_denominator(10**6) * fps)
        if kind == "cut":
            cut = round(plan.n_frames * float(rng.uniform(0.42, 0.58)))
            plan.shots.append(_Shot(cut, main, _reframe(rng, w, h, look, fr)))
        plan.utts = utts
        plans.append(plan)
    return plans


# ---------------------------------------------------------------------------------------------- rendering


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
    return np.round(opening * (_MOUTH_LEVELS - 1)).astype(np.int64)


def _shot_mouth(plan: _Plan, shot: _Shot, levels: dict[str, np.ndarray], sr: int) -> np.ndarray:
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
        ratio = Fraction(sr, _ESPEAK_SR)
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


def _render(plan: _Plan, out_dir: Path, names: list[str]) -> dict[str, Any]:
    sr, fps = plan.sample_rate, plan.fps
    n = round(plan.duration * sr)
    tracks = {s: np.zeros(n, np.float32) for s in plan.speakers}
    ratio = Fraction(sr, _ESPEAK_SR)
    segments = []
    for u in plan.utts:
        y = resample_poly(u.wave, ratio.numerator, ratio.denominator).astype(np.float32)
        y /= max(float(np.max(np.abs(y))), 1e-9)
        off = round(u.start * sr)
        y = y[: n - off]
        tracks[u.speaker][off : off + len(y)] += y
        segments.append({"speaker": u.speaker, "start": round(off / sr, 4),
                         "end": round((off + len(y)) / sr, 4), "text": u.text})
    mix = np.sum(list(tracks.values()), axis=0)
    scale = 10 ** (plan.gain_dbfs / 20) / max(float(np.max(np.abs(mix))), 1e-9)
    audio = np.stack([mix * (scale * g) for g in plan.channel_gains]).astype(np.float32)

    levels = {s: _mouth_levels(_frame_rms(x, sr, plan.n_frames, float(fps))) for s, x in tracks.items()}
    mouths = [_shot_mouth(plan, shot, levels, sr) for shot in plan.shots]
    arts = [_ShotArt(plan.width, plan.height, _LOOKS[names.index(s.speaker)], s.framing) if s.speaker != PHOTO_FACE
            else TalkingPhoto(real_photo(), plan.width, plan.height, face_h=s.framing.face_h, cx=s.framing.cx)
            for s in plan.shots]
    starts = [s.start_frame for s in plan.shots]

    def frames() -> Iterator[np.ndarray]:
        j = 0
        for i in range(plan.n_frames):
            while j + 1 < len(starts) and i >= starts[j + 1]:
                j += 1
            yield arts[j].frame(int(mouths[j][i]))

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


# ---------------------------------------------------------------------------------------------- public API


def _config_json(cfg: CorpusConfig) -> Any:
    return json.loads(json.dumps(cfg.model_dump(mode="json")))


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
                and all((out_dir / c["path"]).is_file() for c in old.get("clips", []))):
            return gt_path
        gt_path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if old is not None:
        root = out_dir.resolve()
        for c in old.get("clips", []):
            p = (out_dir / str(c.get("path", ""))).resolve()
            if p.is_file() and p.is_relative_to(root) and p != root:
                p.unlink()

    names = [name for name, _ in VOICES[: cfg.speakers]]
    rng = np.random.default_rng(cfg.seed)
    with tempfile.TemporaryDirectory(prefix="ltxa_corpus_") as td:
        speech = _Speech(Path(td), rng, dict(VOICES[: cfg.speakers]))
        plans = _plan_corpus(cfg, speech, rng)
    workers = max(1, min(len(plans), os.cpu_count() or 1, 8))
    with ThreadPoolExecutor(max_workers=workers) as ex:
        clips = list(ex.map(lambda p: _render(p, out_dir, names), plans))

    clips += _copies(cfg, clips, out_dir)
    gt = {"config": want, "version": GT_VERSION, "speakers": dict(VOICES[: cfg.speakers]), "clips": clips}
    tmp = gt_path.with_name(gt_path.name + ".tmp")
    tmp.write_text(json.dumps(gt, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, gt_path)
    return gt_path


COPY_KINDS: dict[str, tuple[float, float, float, float, int | None]] = {
    # kind: (trimmed from the start, from the end, centred crop kept, then scaled by, frame rate)
    "crop_rescale": (0.0, 0.0, 0.88, 0.94, None),
    "trim": (1.0, 1.5, 1.0, 0.8, None),
    "framerate": (0.0, 0.0, 1.0, 0.8, 30),
}
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
            y = resample_poly(_espeak(VOICES[0][1], sentence, 165, Path(td) / "s.wav"), 320, 441)
            y = y[: n - t]
            out[t : t + len(y)] = 0.3 * y
            t += len(y) + round(0.4 * 16000)
    return out[None]


def _plain_video(dest: Path, w: int, h: int, n_frames: int, audio: np.ndarray | None) -> None:
    fps = 25
    fr = _Framing((90, 110, 140), (0, 0, 1, 1), (90, 110, 140), w / 2, h * 0.45, h * 0.42)
    art = _ShotArt(w, h, _LOOKS[0], fr)
    if audio is not None:
        levels = _mouth_levels(_frame_rms(audio[0], 16000, n_frames, fps))
    else:
        levels = np.arange(n_frames) % _MOUTH_LEVELS
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
