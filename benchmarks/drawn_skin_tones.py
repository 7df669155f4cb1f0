"""Drawn faces across the full range of skin tones: are they found and landmarked as reliably as the sample
corpus's looks, and which way of drawing them makes it so?

    python benchmarks/drawn_skin_tones.py [--jobs 2] [--variants base,proposed!] [--tones all|dark|PREFIX,..]
                                          [--first-seed 0]

Tones: the skins of the corpus's 8 looks (each with its own hair, style and proportions) and darker ones from
Fitzpatrick IV to VI (`MORE_SKINS`, each drawn on the 8 looks' hair, styles and proportions in turn, 3 framings
each). Variants redraw `ShotArt`'s face with other colour rules (`Rules`); one marked `*` changes only faces whose
skin is darker than `DARK_LUMA` (Rec. 601 luma), so today's 8 looks render as now (checked pixel for pixel: column
`drawn`), one marked `!` applies the same rules to every skin:

    white-sclera   eye whites near white          socket      sockets skin x 0.7 with a dark lash line
    teeth          upper teeth show when open     light-lips  a thick lighter rose lip ring, near-black mouth
    dark-lips      a thick lip ring darker than the skin (x 0.55 of skin 30% towards rose), near-black mouth
    highlights     forehead, cheekbones and nose bridge lit (30% towards white)
    rim            a lighter ring inside the face outline
    key            the inner face oval 12% towards white (a frontal key light); brows at most half the skin
    proposed       key + dark-lips + highlights + eye whites nearer the skin (0.75 skin + 0.25 x 235)

Per tone x variant, over 24 framings (`faces.framing`; sizes 640x360, 480x480, 360x640, 512x384 x 6 seeds, no
turn), as the targets stage works: the frame shrunk so its longer side is 320 px (`downscale`), dlib's HOG detector
(upsample 1) on mouth levels 0, 6 and 11, and dlib's 68 landmarks on a 224-px square 1.8x the face found at level 0
(taken from the frame itself: every size here is within the 640-px working side) for all 12 mouth levels. Printed:

    det     framings whose three frames each hold exactly one face, IoU >= 0.3 with the drawn face box
    rho     Spearman correlation of the inner-lip opening (`mouth_opening`: pairs 61-67, 62-66, 63-65 over the
            eye-corner distance 36-45) with the mouth level 0..11: median and lowest over the found framings
    range   that opening at level 11 less at level 0 (median; the drawn mouth opens 0.15 of the face height)
    follow  framings found with rho >= 0.9 and range >= 0.08 (what the mouth-motion check can use)

then per variant the worst tone's det / follow among today's looks and among the other skins, and the time per
frame of detection + landmarks against that of drawing the frame (the base variant, this run). `--first-seed 6`
repeats it on framings the variants were not chosen on.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ltxa_data.analysis.faces import (  # noqa: E402
    ANALYSIS_MARGIN,
    ANALYSIS_SIDE,
    steady_crop,
)
from ltxa_data.backends.active_speaker import mouth_opening  # noqa: E402
from ltxa_data.backends.face_detector import DlibFaceAnalyzer, DlibFaceDetector, dlib_model_files  # noqa: E402
from ltxa_data.corpus.faces import LOOKS, MOUTH_LEVELS, Framing, ShotArt, _Look, framing  # noqa: E402
from ltxa_data.media import crop_frame  # noqa: E402
from ltxa_data.stages.targets import downscale  # noqa: E402

SIZES = ((640, 360), (480, 480), (360, 640), (512, 384))
SEEDS = range(6)
DETECT_SIDE = 320
DETECT_LEVELS = (0, 6, 11)
DARK_LUMA = 110.0
"""Skins under this luma get a variant's rules (today's darkest look, (170, 110, 75), has 124)."""
MORE_SKINS: dict[str, tuple[int, int, int]] = {
    "IV 160,104,68": (160, 104, 68),
    "IV 150,95,60": (150, 95, 60),
    "V 141,85,36": (141, 85, 36),
    "V 120,74,48": (120, 74, 48),
    "VI 92,51,23": (92, 51, 23),
    "VI 75,45,30": (75, 45, 30),
    "VI 60,35,20": (60, 35, 20),
}
Rgb = tuple[int, int, int]


def luma(rgb: Rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _mix(a: Rgb, b: Rgb, t: float) -> Rgb:
    """`a` moved a fraction `t` of the way to `b`."""
    return tuple(round(x + t * (y - x)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class Rules:
    """How one variant colours a face (each flag off: today's rule)."""

    sclera: str = "base"  # `white`: eye whites near white (as real ones, whatever the skin), `dim`: nearer the skin
    glow: float = 0.0  # the inner face (a smaller oval, forehead to chin) this far to white: a frontal key light
    socket: bool = False  # sockets a fixed step darker (skin * 0.7) with a dark lash line, not near black
    light: float = 0.0  # nose bridge, forehead and cheekbones lit (this far to white; 0: today's nose only)
    rim: bool = False  # a lighter ring just inside the face outline (a rim light)
    lips: str = "base"  # `light`: a thick lighter rose lip ring, `dark`: a thick darker one, round a near-black mouth
    teeth: bool = False  # the upper teeth show (ivory) once the mouth is open wider than they are tall
    brows: bool = False  # brows at most half the skin's value (light hair's brows otherwise outshine dark skin)
    every_skin: bool = False  # apply to every skin, not only those darker than DARK_LUMA


VARIANTS: dict[str, Rules] = {
    "base": Rules(),
    "white-sclera*": Rules(sclera="white"),
    "socket*": Rules(socket=True),
    "teeth*": Rules(teeth=True),
    "light-lips*": Rules(lips="light"),
    "dark-lips*": Rules(lips="dark"),
    "highlights*": Rules(light=0.3),
    "rim*": Rules(rim=True),
    "hl+dark-lips*": Rules(light=0.3, lips="dark"),
    "key+dark-lips*": Rules(glow=0.12, lips="dark", brows=True),
    "key+dark-lips!": Rules(glow=0.12, lips="dark", brows=True, every_skin=True),
    "proposed*": Rules(glow=0.12, light=0.3, lips="dark", brows=True, sclera="dim"),
    "proposed!": Rules(glow=0.12, light=0.3, lips="dark", brows=True, sclera="dim", every_skin=True),
}


class VariantArt(ShotArt):
    """`ShotArt` with one variant's colour rules (today's drawing where they do not apply)."""

    def __init__(self, w: int, h: int, look: _Look, fr: Framing, rules: Rules) -> None:
        self.rules = rules
        self.on = rules != Rules() and (rules.every_skin or luma(look.skin) < DARK_LUMA)
        super().__init__(w, h, look, fr)

    def _use(self, flag: bool) -> bool:
        return self.on and flag

    def frame(self, level: int) -> np.ndarray:
        ru = self.rules
        if not (self._use(ru.lips != "base") or self._use(ru.teeth)):
            return super().frame(level)
        arr = self._frames.get(level)
        if arr is None:
            skin = self.look.skin
            line, inside, outline = (120, 40, 50), (60, 12, 22), (150, 60, 70)
            if self._use(ru.lips == "light"):
                outline = line = _mix(_mix(skin, (200, 90, 100), 0.5), (255, 255, 255), 0.15)
                inside = (18, 4, 8)
            elif self._use(ru.lips == "dark"):
                outline = line = tuple(int(c * 0.55) for c in _mix(skin, (150, 50, 70), 0.3))
                inside = (18, 4, 8)
            img = self.base.copy()
            d = ImageDraw.Draw(img)
            mx, my = self.mouth_c
            hw = self.mouth_w / 2
            fh = self.fr.face_h
            thick = ru.lips != "base" and self.on
            if level == 0:
                lw = max(2, round(fh / 70))
                d.line([(mx - hw, my), (mx + hw, my)], fill=line, width=lw + 2 * thick)
            else:
                hh = max(1.5, self.mouth_h / 2 * level / (MOUTH_LEVELS - 1))
                d.ellipse([mx - hw, my - hh, mx + hw, my + hh], fill=inside, outline=outline,
                          width=max(2, round(fh / 70)) if thick else max(1, round(fh / 110)))
                tooth = 0.035 * fh
                if self._use(ru.teeth) and hh > tooth:
                    # upper teeth: the top of the opening down to `tooth` below the lip (a chord of its ellipse)
                    t = math.degrees(math.asin(1 - tooth / hh))
                    d.chord([mx - hw * 0.92, my - hh * 0.92, mx + hw * 0.92, my + hh * 0.92], 180 + t, 360 - t,
                            fill=(236, 232, 220))
            arr = np.asarray(img)
            self._frames[level] = arr
        return arr

    def _draw_base(self, w: int, h: int) -> Image.Image:
        if not self.on:
            return super()._draw_base(w, h)
        ru = self.rules
        fr, lk = self.fr, self.look
        fh, fw, cx, cy = fr.face_h, self.face_w, fr.cx, fr.cy
        img, d, skin_dark = self._draw_body(w, h)
        for sx in (-1, 1):
            ex = cx + sx * 0.5 * fw
            d.ellipse([ex - 0.08 * fw, cy - 0.1 * fh, ex + 0.08 * fw, cy + 0.1 * fh], fill=skin_dark)
        if self._use(ru.rim):
            d.ellipse([cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2], fill=_mix(lk.skin, (255, 255, 255), 0.3))
            d.ellipse([cx - 0.46 * fw, cy - 0.47 * fh, cx + 0.46 * fw, cy + 0.47 * fh], fill=lk.skin)
        else:
            d.ellipse([cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2], fill=lk.skin)
        if self._use(ru.glow > 0):
            d.ellipse([cx - 0.36 * fw, cy - 0.4 * fh, cx + 0.36 * fw, cy + 0.4 * fh],
                      fill=_mix(lk.skin, (255, 255, 255), ru.glow))
        lit = _mix(lk.skin, (255, 255, 255), ru.light)
        if self._use(ru.light > 0):
            glow = _mix(lk.skin, lit, 0.6)
            d.ellipse([cx - 0.3 * fw, cy - 0.42 * fh, cx + 0.3 * fw, cy - 0.2 * fh], fill=glow)
            for sx in (-1, 1):
                kx = cx + sx * 0.27 * fw
                d.ellipse([kx - 0.1 * fw, cy + 0.01 * fh, kx + 0.1 * fw, cy + 0.09 * fh], fill=glow)
        self._draw_hair(d, cx, cy, fw, fh)
        ey = cy - 0.07 * fh
        r, pr = 0.085 * fw, 0.05 * fw
        socket = tuple(int(c * (0.7 if self._use(ru.socket) else 0.45)) for c in lk.skin)
        sclera = tuple(int(0.55 * c + 0.45 * 235) for c in lk.skin)
        if self._use(ru.sclera == "white"):
            sclera = (232, 226, 218)
        elif self._use(ru.sclera == "dim"):
            sclera = tuple(int(0.75 * c + 0.25 * 235) for c in lk.skin)
        brow = tuple(int(c * 0.6) for c in lk.hair)
        if self._use(ru.brows):  # never lighter than half the skin (blond brows vanish on dark skin)
            brow = tuple(min(b, int(c * 0.5)) for b, c in zip(brow, lk.skin, strict=True))
        for sx in (-1, 1):
            ex = cx + sx * lk.eye_spacing * fw / 2
            d.ellipse([ex - 1.5 * r, ey - 1.1 * r, ex + 1.5 * r, ey + 1.0 * r], fill=socket)
            if self._use(ru.socket):
                d.ellipse([ex - 1.08 * r, ey - 0.65 * r, ex + 1.08 * r, ey + 0.62 * r], fill=(14, 10, 10))
            d.ellipse([ex - r, ey - 0.55 * r, ex + r, ey + 0.55 * r], fill=sclera)
            d.ellipse([ex - pr, ey - pr * 0.9, ex + pr, ey + pr * 0.9], fill=tuple(int(c * 0.35) for c in lk.iris))
            d.line([(ex - 1.2 * r, ey - 1.6 * r), (ex + 1.2 * r, ey - 1.8 * r * (1 if sx > 0 else 0.9))],
                   fill=brow, width=max(3, round(fh / 28)))
        light = lit if self._use(ru.light > 0) else tuple(min(255, int(c * 1.12 + 12)) for c in lk.skin)
        d.polygon([(cx, cy - 0.06 * fh), (cx - 0.05 * fw, cy + 0.12 * fh), (cx + 0.05 * fw, cy + 0.12 * fh)],
                  fill=light)
        nostril = tuple(int(c * 0.45) for c in lk.skin) if self._use(ru.light > 0) else skin_dark
        for sx in (-1, 1):
            nx = cx + sx * 0.035 * fw
            d.ellipse([nx - 0.025 * fw, cy + 0.11 * fh, nx + 0.025 * fw, cy + 0.14 * fh], fill=nostril)
        return img


def tones() -> dict[str, list[_Look]]:
    """Per tone the look drawn in each framing: today's looks themselves; the other skins on the 8 looks in turn
    (each look's hair, style and proportions in 3 of the 24 framings)."""
    n = len(SIZES) * len(SEEDS)
    out = {f"look{i} {','.join(map(str, lk.skin))}": [lk] * n for i, lk in enumerate(LOOKS)}
    for name, skin in MORE_SKINS.items():
        out[name] = [replace(LOOKS[j % len(LOOKS)], skin=skin) for j in range(n)]
    return out


def iou(a: np.ndarray, b: list[int]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax1, bx1) - max(a[0], b[0])), max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def spearman(x: np.ndarray) -> float:
    """Spearman correlation of `x` with its index (0 when `x` is flat)."""
    from scipy.stats import spearmanr

    if np.ptp(x) == 0:
        return 0.0
    return float(spearmanr(np.arange(len(x)), x).statistic)


_worker: dict = {}


def _init() -> None:
    _worker["det"] = DlibFaceDetector("hog", 1, None)
    _worker["lm"] = DlibFaceAnalyzer(dlib_model_files(None))


def one(job: tuple[str, str, list[_Look], list[int]]) -> dict:
    """Measures of one tone x variant over the 24 framings; for a variant that redraws none of them, only whether
    its frames equal today's (`copy`: the base variant's measures stand for it)."""
    tone, variant, looks, seeds = job
    rules = VARIANTS[variant]
    shots, t_draw, same = [], 0.0, True
    for j, ((w, h), seed) in enumerate((size, seed) for size in SIZES for seed in seeds):
        fr = framing(np.random.default_rng(seed), w, h, looks[j])
        t0 = time.perf_counter()
        art = VariantArt(w, h, looks[j], fr, rules)
        frames = [art.frame(level) for level in range(MOUTH_LEVELS)]
        t_draw += time.perf_counter() - t0
        if variant != "base" and not art.on:
            ref = ShotArt(w, h, looks[j], fr)
            same &= all(np.array_equal(f, ref.frame(k)) for k, f in enumerate(frames))
        shots.append((art, frames))
    out = dict(tone=tone, variant=variant, same=same, copy=variant != "base" and not any(a.on for a, _ in shots))
    if out["copy"]:
        return out
    det, lm = _worker["det"], _worker["lm"]
    found, follow, rhos, ranges = 0, 0, [], []
    t_det = t_lm = 0.0
    n_lm = 0
    for art, frames in shots:
        h, w = frames[0].shape[:2]
        truth = art.boxes()[0]
        t0 = time.perf_counter()
        small, scale = downscale(np.stack([frames[k] for k in DETECT_LEVELS]), DETECT_SIDE)
        boxes = [b[:, :4] / scale for b in det.detect(small)]
        t_det += time.perf_counter() - t0
        if not all(len(b) == 1 and iou(b[0], truth) >= 0.3 for b in boxes):
            continue
        found += 1
        hit = boxes[0][0]
        t0 = time.perf_counter()
        square, _ = steady_crop([[0, *hit]], ANALYSIS_MARGIN, w, h)
        s = ANALYSIS_SIDE / square[2]
        box = np.array([[(hit[0] - square[0]) * s, (hit[1] - square[1]) * s, hit[2] * s, hit[3] * s]])
        marks = np.stack([lm.landmarks(crop_frame(f, square, ANALYSIS_SIDE), box)[0] for f in frames])
        t_lm += time.perf_counter() - t0
        n_lm += len(frames)
        opening = mouth_opening(marks)
        rho, rise = spearman(opening), float(opening[-1] - opening[0])
        rhos.append(rho)
        ranges.append(rise)
        follow += rho >= 0.9 and rise >= 0.08
    n = len(shots)
    return {**out, "det": found, "follow": follow, "rhos": rhos, "ranges": ranges,
            "draw_s": t_draw / (n * MOUTH_LEVELS),
            "analyse_s": t_det / (n * len(DETECT_LEVELS)) + t_lm / max(n_lm, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    ap.add_argument("--first-seed", type=int, default=0, help="seeds first..first+5 (0: the measured set)")
    ap.add_argument("--tones", default="all", help="'all', 'dark' or comma-separated name prefixes")
    args = ap.parse_args()
    variants = args.variants.split(",")
    all_tones = tones()
    if args.tones == "dark":
        chosen = {k: v for k, v in all_tones.items() if k in MORE_SKINS}
    elif args.tones == "all":
        chosen = all_tones
    else:
        chosen = {k: v for k, v in all_tones.items() if any(k.startswith(p) for p in args.tones.split(","))}
    seeds = [args.first_seed + s for s in SEEDS]
    jobs = [(t, v, looks, seeds) for t, looks in chosen.items() for v in variants]
    t0 = time.perf_counter()
    with mp.Pool(args.jobs, initializer=_init) as pool:
        res = pool.map(one, jobs, chunksize=1)
    n = len(SIZES) * len(SEEDS)
    by = {(r["tone"], r["variant"]): r for r in res}
    for (t, _), r in by.items():
        if r["copy"]:  # drawn exactly as today (or not: "NO"): today's measures
            base = by.get((t, "base"))
            r.update({k: base[k] for k in ("det", "follow", "rhos", "ranges")} if base
                     else {"det": None, "follow": None, "rhos": [], "ranges": []})
    print(f"{'tone':<18}{'variant':<16}{'luma':>5}{'det':>7}{'rho med':>9}{'rho min':>9}{'range':>7}{'follow':>8}"
          "  drawn")
    for t, looks in chosen.items():
        for v in variants:
            r = by[(t, v)]
            rhos, ranges = np.array(r["rhos"]), np.array(r["ranges"])
            med = f"{np.median(rhos):9.2f}{rhos.min():9.2f}{np.median(ranges):7.3f}" if len(rhos) else f"{'-':>25}"
            drawn = "" if v == "base" else "redrawn" if not r["copy"] else "as today" if r["same"] else "CHANGED"
            det, fol = (f"{r[k]:>{w}}/{n}" if r[k] is not None else f"{'(no base)':>{w + 3}}"
                        for k, w in (("det", 4), ("follow", 5)))
            print(f"{t:<18}{v:<16}{luma(looks[0].skin):5.0f}{det}{med}{fol}  {drawn}")
    print("per variant, worst tone (det / follow) among today's looks | among the other skins:")
    for v in variants:
        parts = []
        for group in (lambda t: t not in MORE_SKINS, lambda t: t in MORE_SKINS):
            rows = [by[(t, v)] for t in chosen if group(t) and by[(t, v)]["det"] is not None]
            parts.append(f"{min(r['det'] for r in rows):>2}/{min(r['follow'] for r in rows):>2}" if rows else "  -  ")
        print(f"  {v:<16}{parts[0]}  |  {parts[1]}")
    base = [r for r in res if r["variant"] == "base"]
    if base:
        draw, analyse = np.mean([r["draw_s"] for r in base]), np.mean([r["analyse_s"] for r in base])
        print(f"baseline per frame: detection + landmarks {analyse * 1e3:.1f} ms, drawing {draw * 1e3:.2f} ms, "
              f"ratio {analyse / draw:.1f}x")
    print(f"wall {time.perf_counter() - t0:.0f} s, {args.jobs} processes")


if __name__ == "__main__":
    main()
