"""The sample corpus's faces: PIL-drawn heads whose mouths open with the audio, shot by shot, and a real
photograph (skimage's `grace_hopper`) animated the same way (`TalkingPhoto`)."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..backends.face_detector import DlibFaceAnalyzer, DlibFaceDetector, dlib_model_files

MOUTH_LEVELS = 12


@dataclass(frozen=True)
class _Look:
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    style: str
    eye_spacing: float  # distance between eye centres / face width
    width_ratio: float  # face width / face height
    shirt: tuple[int, int, int]
    iris: tuple[int, int, int]


# Skins from Fitzpatrick I to VI: with the key light and dark lips of `ShotArt`, dlib's HOG detector finds the darkest
# drawn face as often as the lightest and its inner lips follow the mouth (benchmarks/drawn_skin_tones.py).
LOOKS: tuple[_Look, ...] = (
    _Look((241, 194, 160), (45, 32, 25), "short", 0.42, 0.74, (40, 70, 140), (60, 90, 140)),
    _Look((198, 134, 94), (20, 15, 10), "long", 0.47, 0.69, (150, 40, 60), (70, 45, 30)),
    _Look((92, 51, 23), (12, 10, 10), "bald", 0.40, 0.81, (50, 120, 70), (40, 25, 15)),
    _Look((255, 219, 172), (205, 165, 70), "bun", 0.45, 0.67, (200, 180, 60), (60, 120, 90)),
    _Look((224, 172, 105), (125, 55, 25), "fringe", 0.44, 0.72, (90, 50, 120), (80, 60, 40)),
    _Look((60, 35, 20), (30, 25, 20), "spiky", 0.42, 0.78, (210, 110, 40), (30, 20, 15)),
    _Look((233, 190, 150), (160, 160, 165), "short", 0.46, 0.80, (35, 35, 40), (90, 110, 120)),
    _Look((141, 85, 36), (95, 20, 20), "long", 0.41, 0.65, (40, 140, 150), (50, 35, 25)),
)
STYLES = ("short", "long", "bald", "bun", "fringe", "spiky")
HAIR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (12, 10, 10), (45, 32, 25), (95, 60, 35), (125, 55, 25), (160, 70, 30), (205, 165, 70), (225, 200, 140),
    (160, 160, 165), (215, 215, 210),
)
"""Black, dark brown, brown, auburn, red, blond, light blond, grey, white."""
IRISES: tuple[tuple[int, int, int], ...] = (
    (60, 90, 140), (70, 45, 30), (40, 25, 15), (60, 120, 90), (80, 60, 40), (90, 110, 120), (110, 90, 50),
)
"""Blue, brown, dark brown, green, hazel, grey, amber."""
_GOLDEN = (5**0.5 - 1) / 2


def look(k: int) -> _Look:
    """The look of the corpus's `k`-th speaker: `LOOKS[k]` for the first 8, then looks derived from `k`.

    A derived look's skin lies on the chain of `LOOKS`'s skins ordered by lightness (Fitzpatrick I to VI), a
    golden-ratio step along it from the previous derived look's, so that consecutive looks differ in skin. Style
    and hair colour form a pair no other of the first 54 derived looks has (style `j % 6`, colour
    `(7 * (j // 6) + j % 6) % 9`, 7 being prime to 9); proportions, shirt and iris are seeded by `k`.
    """
    if k < len(LOOKS):
        return LOOKS[k]
    j = k - len(LOOKS)
    rng = np.random.default_rng([0x100C5, k])
    skins = sorted((lk.skin for lk in LOOKS), key=lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
    at = ((j + 1) * _GOLDEN) % 1.0 * (len(skins) - 1)
    i = min(int(at), len(skins) - 2)
    hair = HAIR_COLOURS[(7 * (j // len(STYLES)) + j % len(STYLES)) % len(HAIR_COLOURS)]
    r, g, b = colorsys.hsv_to_rgb(float(rng.uniform(0, 1)), float(rng.uniform(0.35, 0.8)),
                                  float(rng.uniform(0.3, 0.85)))
    return _Look(_mix(skins[i], skins[i + 1], at - i), hair, STYLES[j % len(STYLES)],
                 round(float(rng.uniform(0.40, 0.47)), 3), round(float(rng.uniform(0.65, 0.81)), 3),
                 (int(r * 255), int(g * 255), int(b * 255)), IRISES[int(rng.integers(len(IRISES)))])


@dataclass(frozen=True)
class Framing:
    """Where and how one speaker is shown: background, panel, face centre and face height (pixels)."""

    bg: tuple[int, int, int]
    panel: tuple[int, int, int, int]
    panel_rgb: tuple[int, int, int]
    cx: float
    cy: float
    face_h: float
    turn: float = 0.0
    """Sideways shift of the features, in face widths (> 0: the head turns to its left, a three-quarter view)."""


@dataclass
class Shot:
    """`speaker`: whose face is shown; `mouth`: what moves its mouth: `own` (that speaker's heard voice),
    `voice` (the clip's main voice, lip-synced onto another face), `other` (words nobody hears), `listener`
    (small movements unrelated to the audio) or `still` (one picture throughout)."""

    start_frame: int
    speaker: str
    framing: Framing
    mouth: str = "own"


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    """`a` moved a fraction `t` of the way to `b`."""
    return tuple(round(x + t * (y - x)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _colour(rng: np.random.Generator, hue: float | None = None) -> tuple[int, int, int]:
    h = float(rng.uniform(0, 1)) if hue is None else hue % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, float(rng.uniform(0.2, 0.55)), float(rng.uniform(0.35, 0.85)))
    return int(r * 255), int(g * 255), int(b * 255)


def framing(rng: np.random.Generator, w: int, h: int, look: _Look, scale: float | None = None,
             hue: float | None = None, cx_frac: float | None = None) -> Framing:
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
    return Framing(bg, (px, py, px + pw, py + ph), panel_rgb, cx, cy, fh)  # type: ignore[arg-type]


def reframe(rng: np.random.Generator, w: int, h: int, look: _Look, old: Framing) -> Framing:
    """A different camera set-up of the same person: new background, position and scale."""
    scale = old.face_h / h * float(rng.choice([rng.uniform(0.72, 0.85), rng.uniform(1.18, 1.3)]))
    scale = float(np.clip(scale, 0.3, 0.5))
    if abs(scale * h - old.face_h) < 0.12 * old.face_h:
        scale = float(np.clip(old.face_h / h * (0.78 if old.face_h / h > 0.4 else 1.25), 0.3, 0.5))
    side = -1.0 if old.cx > w / 2 else 1.0
    hue = colorsys.rgb_to_hsv(*(c / 255 for c in old.bg))[0] + float(rng.uniform(0.3, 0.7))
    return framing(rng, w, h, look, scale=scale, hue=hue, cx_frac=0.5 + side * float(rng.uniform(0.12, 0.2)))


class ShotArt:
    """Pre-drawn frames of one shot, one per mouth opening level (drawing is the slow part)."""

    def __init__(self, w: int, h: int, look: _Look, fr: Framing) -> None:
        self.look, self.fr = look, fr
        self.face_w = fr.face_h * look.width_ratio
        self.base = self._draw_base(w, h)
        fw, fh = self.face_w, fr.face_h
        self.mouth_c = (fr.cx + fr.turn * fw, fr.cy + 0.27 * fh)
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
            # Lips darker than the skin round a near-black mouth, whatever the skin: lips lighter than dark skin
            # leave the inner-lip landmarks shut.
            lips = tuple(int(c * 0.55) for c in _mix(self.look.skin, (150, 50, 70), 0.3))
            lw = max(2, round(self.fr.face_h / 70))
            if level == 0:
                d.line([(mx - hw, my), (mx + hw, my)], fill=lips, width=lw + 2)
            else:
                hh = max(1.5, self.mouth_h / 2 * level / (MOUTH_LEVELS - 1))
                d.ellipse([mx - hw, my - hh, mx + hw, my + hh], fill=(18, 4, 8), outline=lips, width=lw)
            arr = np.asarray(img)
            self._frames[level] = arr
        return arr

    def _draw_body(self, w: int, h: int) -> tuple[Image.Image, ImageDraw.ImageDraw, tuple[int, ...]]:
        """The frame up to the head: background, panel, long hair behind, shoulders and neck; with the
        drawing context and the shaded skin colour."""
        fr, lk = self.fr, self.look
        fh, fw, cx, cy = fr.face_h, self.face_w, fr.cx, fr.cy
        img = Image.new("RGB", (w, h), fr.bg)
        d = ImageDraw.Draw(img)
        d.rectangle(fr.panel, fill=fr.panel_rgb)
        skin_dark = tuple(int(c * 0.8) for c in lk.skin)
        if lk.style == "long":
            d.rounded_rectangle([cx - 0.62 * fw, cy - 0.58 * fh, cx + 0.62 * fw, cy + 0.62 * fh],
                                radius=int(0.4 * fw), fill=lk.hair)
        d.ellipse([cx - 1.15 * fw, cy + 0.42 * fh, cx + 1.15 * fw, cy + 1.5 * fh], fill=lk.shirt)
        d.rectangle([cx - 0.17 * fw, cy + 0.3 * fh, cx + 0.17 * fw, cy + 0.6 * fh], fill=skin_dark)
        return img, d, skin_dark

    def _draw_base(self, w: int, h: int) -> Image.Image:
        fr, lk = self.fr, self.look
        fh, fw, cx, cy = fr.face_h, self.face_w, fr.cx, fr.cy
        shift, far = fr.turn * fw, (1 if fr.turn > 0 else -1) if fr.turn else 0
        img, d, skin_dark = self._draw_body(w, h)
        # ears, face
        for sx in (-1, 1):
            if sx == far:  # a turned head hides its far ear
                continue
            ex = cx + sx * 0.5 * fw
            d.ellipse([ex - 0.08 * fw, cy - 0.1 * fh, ex + 0.08 * fw, cy + 0.1 * fh], fill=skin_dark)
        d.ellipse([cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2], fill=lk.skin)
        # A frontal key light: the inner face a little lighter, the forehead, cheekbones and nose bridge lit. On
        # dark skin the face's outline otherwise outweighs its features in the detector's normalised gradients.
        kx = cx + 0.5 * shift
        d.ellipse([kx - 0.36 * fw, cy - 0.4 * fh, kx + 0.36 * fw, cy + 0.4 * fh], fill=_mix(lk.skin, (255,) * 3, 0.12))
        light = _mix(lk.skin, (255, 255, 255), 0.3)
        glow = _mix(lk.skin, light, 0.6)
        d.ellipse([kx - 0.3 * fw, cy - 0.42 * fh, kx + 0.3 * fw, cy - 0.2 * fh], fill=glow)
        for sx in (-1, 1):
            gx = kx + sx * 0.27 * fw
            d.ellipse([gx - 0.1 * fw, cy + 0.01 * fh, gx + 0.1 * fw, cy + 0.09 * fh], fill=glow)
        self._draw_hair(d, cx, cy, fw, fh)
        # Shaded eye sockets and thick brows over a lighter nose bridge: the dark band across the
        # eyes is what frontal face detectors key on, whatever the skin tone.
        ey = cy - 0.07 * fh
        r, pr = 0.085 * fw, 0.05 * fw
        socket = tuple(int(c * 0.45) for c in lk.skin)
        sclera = tuple(int(0.75 * c + 0.25 * 235) for c in lk.skin)
        # brows at most half the skin's value: light hair's brows would outshine dark skin
        brow = tuple(min(int(h * 0.6), int(c * 0.5)) for h, c in zip(lk.hair, lk.skin, strict=True))
        for sx in (-1, 1):
            # A turned head's far eye is foreshortened and nearer the middle.
            k = 0.55 if sx == far else 1.0
            ex = cx + shift + sx * lk.eye_spacing * fw / 2 * (0.75 if sx == far else 1.0)
            d.ellipse([ex - 1.5 * r * k, ey - 1.1 * r, ex + 1.5 * r * k, ey + 1.0 * r], fill=socket)
            d.ellipse([ex - r * k, ey - 0.55 * r, ex + r * k, ey + 0.55 * r], fill=sclera)
            d.ellipse([ex - pr * k, ey - pr * 0.9, ex + pr * k, ey + pr * 0.9],
                      fill=tuple(int(c * 0.35) for c in lk.iris))
            d.line([(ex - 1.2 * r * k, ey - 1.6 * r), (ex + 1.2 * r * k, ey - 1.8 * r * (1 if sx > 0 else 0.9))],
                   fill=brow, width=max(3, round(fh / 28)))
        # nose: a lit bridge and dark nostrils (a turned nose stands out further than the eyes move)
        nose, nostril = cx + 1.4 * shift, tuple(int(c * 0.45) for c in lk.skin)
        d.polygon([(cx + shift, cy - 0.06 * fh), (nose - 0.05 * fw, cy + 0.12 * fh),
                   (nose + 0.05 * fw, cy + 0.12 * fh)], fill=light)
        for sx in (-1, 1):
            nx = nose + sx * 0.035 * fw
            d.ellipse([nx - 0.025 * fw, cy + 0.11 * fh, nx + 0.025 * fw, cy + 0.14 * fh], fill=nostril)
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


PHOTO_FACE = "grace_hopper"
"""The name the ground truth gives the real photograph's face (it is no identity of the corpus)."""

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
            self._levels[level] = self.canvas(level / (MOUTH_LEVELS - 1) * 0.085 * self.box[3] * self.scale)
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
