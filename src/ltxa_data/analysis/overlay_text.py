"""Burned-in overlay text (subtitles, captions, lower thirds, tickers) in a target's output crop, told apart
from the scene's own text by where text lines sit and how they are shaped. Pure functions of text boxes (a
`TextDetector`'s output); no model here.

The rule. Boxes are first merged into text lines: two boxes share a line when they overlap vertically by at
least half the lower one's height, their heights differ by at most 2x, and the horizontal gap between them is at
most one line height. A line is overlay text when it is at most 0.15 of the frame high and at least 4x as wide
as high, and it is one of (fractions of the frame's width W and height H):

- subtitle: at least 0.25 W wide, its centre at or below 0.70 H and within 0.2 W of the vertical midline
  (one- and two-line subtitles, with or without a band; bottom tickers);
- lower third: at least 0.25 W wide, starting within 0.15 W of the left edge or ending within 0.15 W of the
  right edge, its centre between 0.65 H and 0.92 H (name plates; the bottom margin below 0.92 H is left to
  corner watermarks, which are not rejected);
- top: at least 0.25 W wide, its centre at or above 0.20 H and within 0.2 W of the midline (captions, tickers).

A frame shows overlay text when one of its lines is overlay text; the gate's value is the share of a window's
sampled frames that do.

Measured (benchmarks/overlay_text_real.py: 18 real photographs from installed packages and their wheels and
sdists, 11 of people, cropped as the targets stage crops a talking head, 512x512, JPEG 85; PP-OCRv4's detector
at 512): drawn overlays are flagged in 805 of 812 frames (99.1%): every subtitle of 1-2 lines at OpenCV font
scales 0.6-1.5, white with an outline, yellow, on a band, every lower third, top caption and ticker; missed: 7 of
29 one-line subtitles at scale 0.6 whose text is short (about 0.21 W wide). Crops without overlays are flagged in
0 of 232: the photos as they are (flags and their stars, insignia, a name tag, open mouths, handwriting in sand),
and with a corner logo or watermark, a name tag, a logo or a printed slogan on the chest, a sign or a printed
page beside the head. The starting rule (subtitles only) flags 67% of the overlays with the same 0 false flags;
lower thirds and top lines add the rest without a false flag. `MIN_WIDTH` is the trade: at 0.20 every overlay is
flagged, and so are 27 of 29 slogans 0.22 W wide on a chest (geometrically a short subtitle); at 0.30, 785 of
812 overlays. Scene text placed exactly where overlays go is flagged: a plate centred on a lectern below the
speaker (29 of 29) and a banner centred above the head (29 of 29); by place and shape it is overlay text.
"""

from __future__ import annotations

import numpy as np

LINE_OVERLAP = 0.5
"""Boxes share a line when their vertical overlap is at least this share of the lower one's height,"""
LINE_HEIGHT_RATIO = 2.0
"""their heights differ by at most this factor,"""
LINE_GAP = 1.0
"""and the horizontal gap between them is at most this many line heights (a word space is about 0.3)."""

MAX_HEIGHT = 0.15
"""An overlay line is at most this share of the frame high,"""
MIN_ASPECT = 4.0
"""at least this many times as wide as it is high,"""
MIN_WIDTH = 0.25
"""and at least this share of the frame wide (narrower text: logos, name tags, signs)."""
MAX_OFFSET = 0.2
"""A centred line (subtitle, top caption) has its centre within this share of the width of the midline."""
SUBTITLE_MIN_Y = 0.70
"""A subtitle's centre is at or below this share of the height."""
LOWER_THIRD_Y = (0.65, 0.92)
"""A lower third's centre lies between these shares of the height (below: the watermark margin)."""
LOWER_THIRD_EDGE = 0.15
"""A lower third starts or ends within this share of the width of the frame's left or right edge."""
TOP_MAX_Y = 0.20
"""A top caption's or ticker's centre is at or above this share of the height."""

OVERLAY_KINDS = ("subtitle", "lower_third", "top")

Line = tuple[float, float, float, float]


def text_lines(boxes: np.ndarray) -> list[Line]:
    """Boxes [n, >=4] (x, y, w, h, ...) merged into text lines (x, y, w, h): boxes on one baseline with small
    gaps between them."""
    lines = [(float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])) for b in boxes if b[2] > 0 < b[3]]
    merged = True
    while merged:  # a grown line may reach one it was compared with before: pass again
        merged = False
        i = 0
        while i < len(lines):
            j = i + 1
            while j < len(lines):
                if _same_line(lines[i], lines[j]):
                    a, b = lines[i], lines.pop(j)
                    lines[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    merged = True
                else:
                    j += 1
            i += 1
    return [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in lines]


def _same_line(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether corner boxes (x0, y0, x1, y1) a and b are parts of one text line."""
    ha, hb = a[3] - a[1], b[3] - b[1]
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    gap = max(a[0], b[0]) - min(a[2], b[2])
    return (overlap >= LINE_OVERLAP * min(ha, hb) and max(ha, hb) <= LINE_HEIGHT_RATIO * min(ha, hb)
            and gap <= LINE_GAP * max(ha, hb))


def overlay_kind(line: Line, width: int, height: int) -> str | None:
    """Which overlay (one of `OVERLAY_KINDS`) a text line (x, y, w, h) of a `width` x `height` frame looks
    like, or None for scene text."""
    x, y, w, h = line
    if h <= 0 or h > MAX_HEIGHT * height or w < MIN_ASPECT * h or w < MIN_WIDTH * width:
        return None
    cx, cy = x + w / 2, y + h / 2
    centred = abs(cx - width / 2) <= MAX_OFFSET * width
    if centred and cy >= SUBTITLE_MIN_Y * height:
        return "subtitle"
    at_edge = x <= LOWER_THIRD_EDGE * width or x + w >= (1 - LOWER_THIRD_EDGE) * width
    if at_edge and LOWER_THIRD_Y[0] * height <= cy <= LOWER_THIRD_Y[1] * height:
        return "lower_third"
    if centred and cy <= TOP_MAX_Y * height:
        return "top"
    return None


def overlay_lines(boxes: np.ndarray, width: int, height: int) -> list[Line]:
    """Boxes merged into text lines (same baseline, small horizontal gaps), then those that look like overlay
    text, as (x, y, w, h)."""
    return [line for line in text_lines(boxes) if overlay_kind(line, width, height)]


def overlay_fraction(per_frame_boxes: list[np.ndarray], width: int, height: int) -> float:
    """Share of the sampled frames that show at least one overlay line: the gate's value (0 for no frames)."""
    if not per_frame_boxes:
        return 0.0
    return sum(bool(overlay_lines(b, width, height)) for b in per_frame_boxes) / len(per_frame_boxes)
