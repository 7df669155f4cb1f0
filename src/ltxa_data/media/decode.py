"""Reading media: probing, decoding audio and frame-exact video windows (`ltxa_data.media`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image


class MediaError(Exception):
    """A media file cannot be used; the message is the reason, and callers prefix the path."""


@dataclass(frozen=True)
class ProbeResult:
    """What scan records about one source file (measured by demuxing, not trusted from headers).

    `width` x `height` is the displayed size (see `probe`); `rotation` is the clockwise turn, in
    degrees (0, 90, 180, 270), that brings the stored frames upright; `sample_aspect` is the stored
    pixels' width / height (1.0 for square pixels).
    """

    duration_s: float
    fps: float
    num_frames: int
    width: int
    height: int
    video_codec: str
    variable_frame_rate: bool
    has_audio: bool
    audio_codec: str | None
    sample_rate: int | None
    channels: int | None
    rotation: int = 0
    sample_aspect: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


def _open(path: Path | str) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise MediaError("file does not exist")
    if p.stat().st_size == 0:
        raise MediaError("empty file (0 bytes)")
    try:
        return av.open(str(p), mode="r")
    except av.FFmpegError as e:
        raise MediaError(_iso_truncation(p) or f"cannot open container: {_ffmpeg_reason(e)}") from None


def _iso_truncation(path: Path) -> str | None:
    """For an MP4/MOV that FFmpeg cannot open: say so if it is truncated (a top-level box runs past
    the end of the file, or the index box is missing)."""
    size = path.stat().st_size
    boxes = []
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return None
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            hdr = f.read(16)
            n, kind = int.from_bytes(hdr[:4], "big"), hdr[4:8].decode("latin-1")
            if n == 1 and len(hdr) == 16:
                n = int.from_bytes(hdr[8:16], "big")
            elif n == 0:
                n = size - pos
            if n < 8:
                return None
            boxes.append(kind)
            if pos + n > size:
                return f"truncated: the '{kind}' box needs {pos + n} bytes, the file has {size}"
            pos += n
    if "moov" not in boxes:
        return "truncated: no 'moov' index box (the file was cut before its index was written)"
    return None


def _ffmpeg_reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return msg.strip().rstrip(".") or type(e).__name__


def probe(path: Path | str, check_packets: bool = True) -> ProbeResult:
    """Probe a source video.

    With `check_packets`, every packet is demuxed (no decoding) so that truncated files, the true
    frame count and variable frame rates are measured instead of read from headers. The first frame
    is decoded either way: its display matrix gives the rotation.

    `width` x `height` is the displayed size: the stored size made square-pixel, then rotated. Square
    pixels never drop resolution: a sample aspect ratio (SAR) above 1 widens the picture (720x576 at
    16:15 shows as 768x576), one below 1 heightens it (640x480 at 8:9 shows as 640x540).
    `rotation` follows the old `rotate` tag and ffmpeg's autorotation: the clockwise turn that shows
    the stored frames upright; a phone portrait clip stored as 1920x1080 is 90 (ffprobe prints its
    display matrix as "rotation of -90.00 degrees", counter-clockwise) and displays as 1080x1920.
    """
    rotation = _first_frame_rotation(path)
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError("no video stream (audio-only file?)")
        vs = c.streams.video[0]
        if vs.codec_context.width <= 0 or vs.codec_context.height <= 0:
            raise MediaError("video stream has no frame size")
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        if not rate or float(rate) <= 0:
            raise MediaError("video stream has no frame rate")
        sar = _sample_aspect(vs)
        width, height = _display_size(vs.codec_context.width, vs.codec_context.height, rotation, sar)
        a = c.streams.audio[0] if c.streams.audio else None
        header_dur = _header_duration(c, vs)
        if check_packets:
            streams = [vs] + ([a] if a is not None else [])
            v_end, a_end, n_frames, deltas = _demux_extent(c, streams, vs, a)
            if n_frames == 0:
                raise MediaError("video stream has no packets")
            if header_dur and v_end < header_dur - max(0.5, 0.05 * header_dur):
                raise MediaError(f"truncated: video ends at {v_end:.2f} s but the header says {header_dur:.2f} s")
            duration = min(v_end, a_end) if a is not None and a_end > 0 else v_end
            vfr = _is_variable(deltas)
            fps = (n_frames / v_end) if vfr and v_end > 0 else float(rate)
        else:
            duration = header_dur or 0.0
            n_frames = vs.frames or round(duration * float(rate))
            vfr = False
            fps = float(rate)
        return ProbeResult(
            duration_s=round(float(duration), 6),
            fps=round(float(fps), 6),
            num_frames=int(n_frames),
            width=width,
            height=height,
            video_codec=vs.codec_context.name,
            variable_frame_rate=bool(vfr),
            has_audio=a is not None,
            audio_codec=a.codec_context.name if a is not None else None,
            sample_rate=int(a.codec_context.sample_rate) if a is not None else None,
            channels=int(a.codec_context.channels) if a is not None else None,
            rotation=rotation,
            sample_aspect=round(sar, 6),
        )


def _first_frame_rotation(path: Path | str) -> int:
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError("no video stream (audio-only file?)")
        try:
            frame = next(iter(c.decode(c.streams.video[0])), None)
        except av.FFmpegError as e:
            raise MediaError(f"video decode failed: {_ffmpeg_reason(e)}") from None
        if frame is None:
            raise MediaError("video stream decoded no frames")
        return _rotation(frame)


def _rotation(frame: av.VideoFrame) -> int:
    """Clockwise degrees (0, 90, 180, 270) that turn a decoded frame upright.

    FFmpeg (7+) attaches the stream's display matrix to every decoded frame, and PyAV reads its
    angle counter-clockwise in [-180, 180] (0 without a matrix). A matrix that also mirrors is
    treated as its rotation alone; angles that are not quarter turns are rounded to one.
    """
    try:
        ccw = float(frame.rotation)
    except (ValueError, OverflowError):
        return 0
    if not math.isfinite(ccw) or abs(ccw) > 360:  # a singular matrix (PyAV 18 reads INT_MIN)
        return 0
    return (-round(ccw / 90) * 90) % 360


def _sample_aspect(vs: av.video.stream.VideoStream) -> float:
    """The stream's pixel width / height (the container's value first, then the codec's; 1.0 unset)."""
    sar = vs.sample_aspect_ratio
    value = float(sar) if sar else 1.0
    if not math.isfinite(value) or value <= 0:
        return 1.0
    if not 0.25 <= value <= 4.0:
        raise MediaError(f"implausible sample aspect ratio {sar} (pixel width / height)")
    return value


def _square_size(width: int, height: int, sar: float) -> tuple[int, int]:
    """The stored frame's size with square pixels: widened when SAR > 1, heightened when SAR < 1."""
    if sar > 1:
        return round(width * sar), height
    if sar < 1:
        return width, round(height / sar)
    return width, height


def _display_size(width: int, height: int, rotation: int, sar: float) -> tuple[int, int]:
    w, h = _square_size(int(width), int(height), sar)
    return (h, w) if rotation in (90, 270) else (w, h)


def _square(rgb: np.ndarray, sar: float) -> np.ndarray:
    """A decoded [H, W, 3] frame stretched to square pixels (SAR is along the stored axes)."""
    h, w = rgb.shape[:2]
    sw, sh = _square_size(w, h, sar)
    if (sw, sh) == (w, h):
        return rgb
    import cv2  # only non-square sources pay for the import

    return cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_CUBIC)


def _header_duration(c: av.container.InputContainer, vs: av.video.stream.VideoStream) -> float | None:
    if vs.duration is not None and vs.time_base is not None:
        return float(vs.duration * vs.time_base)
    if c.duration is not None:
        return c.duration / av.time_base
    return None


def _demux_extent(c, streams, vs, a) -> tuple[float, float, int, list[float]]:
    v_end = a_end = 0.0
    n = 0
    pts: list[float] = []
    try:
        for pkt in c.demux(streams):
            if pkt.pts is None or pkt.size == 0:
                continue
            end = float((pkt.pts + (pkt.duration or 0)) * pkt.time_base)
            if pkt.stream is vs:
                n += 1
                v_end = max(v_end, end)
                if len(pts) < 2000:
                    pts.append(float(pkt.pts * pkt.time_base))
            elif a is not None and pkt.stream is a:
                a_end = max(a_end, end)
    except av.FFmpegError as e:
        raise MediaError(f"corrupt stream data: {_ffmpeg_reason(e)}") from None
    pts.sort()
    deltas = [b - a_ for a_, b in itertools.pairwise(pts)]
    return v_end, a_end, n, deltas


def _is_variable(deltas: Sequence[float]) -> bool:
    if len(deltas) < 3:
        return False
    d = np.asarray(deltas)
    med = float(np.median(d))
    return med > 0 and float(np.mean(np.abs(d - med) > 0.25 * med)) > 0.05


def read_audio(
    path: Path | str,
    sample_rate: int = 16000,
    channels: int = 1,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """Decode the first audio track, resampled, as float32 [channels, samples] on the container clock.

    Sample 0 is at t=0 of the container (a late-starting track is padded with silence), so an
    audio window and a video window that start at the same time start at the same instant.
    A window past the end of the track is zero-padded; the result has exactly
    round(duration_s * sample_rate) samples when `duration_s` is given. A mono source asked for as
    stereo is duplicated exactly (FFmpeg's upmix would lower it by 3 dB).
    """
    if channels not in (1, 2):
        raise ValueError("channels must be 1 or 2")
    with _open(path) as c:
        if not c.streams.audio:
            raise MediaError("no audio track")
        st = c.streams.audio[0]
        duplicate = channels == 2 and st.codec_context.channels == 1
        decode_channels = 1 if duplicate else channels
        layout = {1: "mono", 2: "stereo"}[decode_channels]
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        chunks: list[np.ndarray] = []
        first_pts: float | None = None
        stop_s = None if duration_s is None else start_s + duration_s + 0.5
        try:
            if start_s > 2.0:
                c.seek(int((start_s - 1.0) / st.time_base), stream=st, backward=True)
            for frame in c.decode(st):
                if first_pts is None:
                    first_pts = float(frame.time or 0.0)
                for rf in resampler.resample(frame):
                    chunks.append(rf.to_ndarray())
                if stop_s is not None and frame.time is not None and frame.time > stop_s:
                    break
            for rf in resampler.resample(None):
                chunks.append(rf.to_ndarray())
        except av.FFmpegError as e:
            raise MediaError(f"audio decode failed: {_ffmpeg_reason(e)}") from None
    audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((decode_channels, 0), np.float32)
    audio = audio.astype(np.float32, copy=False)
    if duplicate:
        audio = np.repeat(audio, 2, axis=0)
    offset = round((first_pts or 0.0) * sample_rate) - round(start_s * sample_rate)
    if offset > 0:
        audio = np.concatenate([np.zeros((channels, offset), np.float32), audio], axis=1)
    elif offset < 0:
        audio = audio[:, -offset:]
    if duration_s is not None:
        n = round(duration_s * sample_rate)
        audio = audio[:, :n]
        if audio.shape[1] < n:
            audio = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
    return np.ascontiguousarray(audio)


def read_frames(
    path: Path | str,
    times: Sequence[float],
    crop: tuple[int, int, int, int] | None = None,
    size: int | None = None,
    pad: str = "black",
    max_side: int | None = None,
) -> np.ndarray:
    """Sample frames at the given instants (seconds, increasing) as uint8 [F, H, W, 3].

    Each instant gets the source frame on screen at that time (the last frame with pts <= t):
    this resamples any source rate, VFR included, to the caller's grid without drifting.
    Frames are the displayed picture, `probe`'s width x height: turned upright by the display matrix
    and stretched to square pixels before cropping. `crop` is (x, y, w, h) in these displayed pixels
    and may leave the frame: the outside is filled with black (`pad="black"`) or the edge pixels
    repeated (`pad="edge"`), never stretched. `size` resizes the crop to size x size.
    `max_side` (without `crop`) shrinks the displayed frame so that its longer side is at most that,
    in FFmpeg's scaler straight from the decoded picture (no full-size RGB copy).
    """
    return _read(path, times, crop, size, pad, max_side, ())[0]


def read_window(path: Path | str, times: Sequence[float], keep: Sequence[int],
                max_side: int | None = None) -> tuple[np.ndarray, KeptFrames]:
    """`read_frames(path, times, max_side=max_side)`, and the decoded frames of the instants `keep` (indices into
    `times`), kept to be cut later (`KeptFrames.cut`) exactly as `read_frames` would cut them, without decoding
    the window again."""
    return _read(path, times, None, None, "black", max_side, keep)


def _read(path: Path | str, times: Sequence[float], crop: tuple[int, int, int, int] | None, size: int | None,
          pad: str, max_side: int | None, keep: Sequence[int]) -> tuple[np.ndarray, KeptFrames]:
    if max_side is not None and crop is not None:
        raise ValueError("max_side shrinks whole frames; it cannot be combined with crop")
    times = list(times)
    if not times:
        raise ValueError("no times requested")
    out: list[np.ndarray | None] = [None] * len(times)
    wanted = set(keep)
    kept: dict[int, av.VideoFrame] = {}
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError("no video stream")
        vs = c.streams.video[0]
        sar = _sample_aspect(vs)
        cutter: _Cutter | None = None  # one geometry for the whole call: the first frame's
        scaler = VideoReformatter()
        # No frame threading: closing a frame-threaded decoder after breaking out of decode()
        # can hang in FFmpeg (seen with PyAV 18). Slice threading is safe and on by default.
        if times[0] > 2.0:
            c.seek(int((times[0] - 1.0) / vs.time_base), stream=vs, backward=True)

        def convert(frame: av.VideoFrame) -> np.ndarray:
            assert cutter is not None
            if max_side is not None:
                small = shrunk(frame, sar, cutter.rotation, max_side, scaler)
                return small if size is None else _prepare(small, 0, None, size, pad)
            return cutter.cut(frame, crop, size, pad)

        def emit(k: int, image: np.ndarray) -> None:
            out[k] = image
            if k in wanted:
                kept[k] = sampler.held

        sampler = FrameSampler(times, convert, emit)
        try:
            for frame in c.decode(vs):
                if cutter is None:
                    cutter = _Cutter(sar, _rotation(frame))
                if not sampler.feed(frame):
                    break
            sampler.finish(frame_seconds(vs))
        except av.FFmpegError as e:
            raise MediaError(f"video decode failed: {_ffmpeg_reason(e)}") from None
    first = out[0]
    assert first is not None and cutter is not None, "FrameSampler.finish hands out every instant"
    # The one copy of each frame (np.stack would keep a rot90 view's strides, not C order).
    stacked = np.empty((len(out), *first.shape), np.uint8)
    for i, f in enumerate(out):
        stacked[i] = f
    return stacked, KeptFrames({k: kept[k] for k in keep}, cutter)


class _Cutter:
    """Decoded frames of one video to displayed pixels, cropped and sized (`read_frames`' `crop`, `size`, `pad`)."""

    def __init__(self, sar: float, rotation: int) -> None:
        self.sar, self.rotation = sar, rotation
        self.graphs: dict[tuple, av.filter.Graph] = {}

    def cut(self, frame: av.VideoFrame, crop: tuple[int, int, int, int] | None, size: int | None,
            pad: str) -> np.ndarray:
        if size is not None and crop is not None and self.sar == 1 and not self.rotation and _inside(crop, frame):
            # FFmpeg's own crop (no copy) and scaler, from the decoded picture straight to the output
            # size: 1.7x faster than a full-size RGB frame cropped and resized in Python (1080p).
            shape = (frame.width, frame.height, frame.format.name, crop, size)
            graph = self.graphs.get(shape)
            if graph is None:
                graph = self.graphs[shape] = _crop_scale_graph(frame, crop, size)
            graph.push(frame)
            return graph.pull().to_ndarray()
        return _prepare(_square(frame.to_ndarray(format="rgb24"), self.sar), self.rotation, crop, size, pad)


@dataclass
class KeptFrames:
    """Decoded frames kept by `read_window`, with their video's geometry."""

    frames: dict[int, av.VideoFrame]
    """By index into the `times` read."""
    cutter: _Cutter

    def cut(self, crop: tuple[int, int, int, int] | None, size: int | None, pad: str = "black",
            which: Sequence[int] | None = None) -> np.ndarray:
        """The kept frames `which` (indices into the times read; default: all kept, in order) as `read_frames` with
        this `crop`, `size` and `pad` gives them: uint8 [K, H, W, 3]."""
        which = sorted(self.frames) if which is None else list(which)
        if not which:
            raise ValueError("no frames were kept")
        missing = [k for k in which if k not in self.frames]
        if missing:
            raise ValueError(f"frames {missing} were not kept")
        first = self.cutter.cut(self.frames[which[0]], crop, size, pad)
        out = np.empty((len(which), *first.shape), np.uint8)
        out[0] = first
        for i, k in enumerate(which[1:], start=1):
            out[i] = self.cutter.cut(self.frames[k], crop, size, pad)
        return out


class FrameSampler:
    """The frame on screen at each of `times` (seconds, increasing) from a video's frames fed in decode order:
    the last frame with pts <= t (an instant before the first frame gets the first frame's image). Each frame an
    instant needs is converted once by `convert` and handed out as `emit(index, image)`, in index order for
    instants after the first frame; frames no instant needs are never converted. `read_frames` reads through
    one; a single pass over a whole video can feed several (the scenes stage's, for the fingerprints)."""

    EPS = 1e-6

    def __init__(self, times: Sequence[float], convert: Callable[[av.VideoFrame], np.ndarray],
                 emit: Callable[[int, np.ndarray], None]) -> None:
        self.times, self.convert, self.emit = list(times), convert, emit
        self.k = 0
        self.early: list[int] = []  # instants before the first frame: they get the first frame converted
        self.held: av.VideoFrame | None = None  # the frame on screen so far
        self.held_image: np.ndarray | None = None  # it, converted once an instant needs it
        self.last_t = -math.inf

    def _hand_out(self, k: int) -> None:
        if self.held is None:
            self.early.append(k)
            return
        if self.held_image is None:
            self.held_image = self.convert(self.held)
            for e in self.early:
                self.emit(e, self.held_image)
            self.early = []
        self.emit(k, self.held_image)

    def feed(self, frame: av.VideoFrame) -> bool:
        """Take the next decoded frame; False once every instant is handed out (stop decoding)."""
        ft = float(frame.time if frame.time is not None else 0.0)
        while self.k < len(self.times) and self.times[self.k] + self.EPS < ft:
            self._hand_out(self.k)
            self.k += 1
        if self.k >= len(self.times):
            return False
        self.held, self.held_image, self.last_t = frame, None, ft
        return True

    def finish(self, frame_s: float) -> None:
        """After the last frame: the instants left get it, if within its display interval (`frame_s`)."""
        if self.held is None:
            raise MediaError("video stream decoded no frames")
        # Past the last frame only its own display interval may be held, not arbitrary time.
        if self.k < len(self.times) and self.times[-1] > self.last_t + frame_s + self.EPS:
            raise MediaError(f"video ends at {self.last_t + frame_s:.3f} s, before the requested "
                             f"{self.times[-1]:.3f} s")
        while self.k < len(self.times):
            self._hand_out(self.k)
            self.k += 1


def frame_seconds(vs: av.video.stream.VideoStream) -> float:
    """One frame's display interval at the stream's average rate (25 fps when unknown)."""
    return 1.0 / float(vs.average_rate or vs.guessed_rate or 25)


def shrunk(frame: av.VideoFrame, sar: float, rotation: int, max_side: int,
           scaler: VideoReformatter | None = None) -> np.ndarray:
    """A decoded frame as displayed (upright `rotation`, square pixels), its longer side at most `max_side`,
    shrunk by FFmpeg's area scaler straight from the decoded picture (no full-size RGB copy). Pass the same
    `scaler` for the frames of one stream: `frame.reformat` sets up a scaler per frame (~1 ms at 1080p)."""
    w, h = _square_size(frame.width, frame.height, sar)
    scale = min(1.0, max_side / max(w, h))
    if scale < 1 or (w, h) != (frame.width, frame.height):
        small = (scaler or VideoReformatter()).reformat(
            frame, width=max(1, round(w * scale)), height=max(1, round(h * scale)), format="rgb24",
            interpolation="AREA")
        return _prepare(small.to_ndarray(), rotation, None, None)
    return _prepare(frame.to_ndarray(format="rgb24"), rotation, None, None)


def frame_geometry(vs: av.video.stream.VideoStream, frame: av.VideoFrame) -> tuple[float, int]:
    """(the stream's sample aspect, the clockwise turn that brings `frame` upright): what `shrunk` needs."""
    return _sample_aspect(vs), _rotation(frame)


def _inside(crop: tuple[int, int, int, int], frame: av.VideoFrame) -> bool:
    x, y, w, h = crop
    return x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= frame.width and y + h <= frame.height


def _crop_scale_graph(frame: av.VideoFrame, crop: tuple[int, int, int, int], size: int) -> av.filter.Graph:
    """buffer (the frame's size and format) -> crop (exact, odd offsets kept) -> bicubic scale to size x size
    -> rgb24."""
    x, y, w, h = crop
    g = av.filter.Graph()
    buffer = g.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                          time_base=frame.time_base or Fraction(1, 90000))
    g.link_nodes(buffer, g.add("crop", f"{w}:{h}:{x}:{y}:exact=1"), g.add("scale", f"{size}:{size}:flags=bicubic"),
                 g.add("format", "rgb24"), g.add("buffersink"))
    g.configure()
    return g


def crop_frame(rgb: np.ndarray, crop: tuple[int, int, int, int], size: int, pad: str = "black") -> np.ndarray:
    """An upright frame's `crop` (x, y, w, h; may leave the frame: padded per `pad`), resized to size x size
    with OpenCV (area averaging when shrinking: 5x faster than the shards' bicubic, for analysis)."""
    import cv2

    out = _prepare(rgb, 0, crop, None, pad)
    if out.shape[:2] == (size, size):
        return out
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA if out.shape[0] > size else cv2.INTER_LINEAR)


def _prepare(rgb: np.ndarray, rotation: int, crop: tuple[int, int, int, int] | None, size: int | None,
             pad: str = "black") -> np.ndarray:
    """Turn a square-pixel stored frame upright `rotation` degrees clockwise, crop it (displayed
    pixels) and resize it. Only the crop is turned, and by cv2 (4-10x faster than copying a rot90 view)."""
    shown = np.rot90(rgb, k=-(rotation // 90)) if rotation else rgb  # a view: crop boxes are displayed pixels
    widths = None
    if crop is not None:
        x, y, w, h = crop
        fh, fw = shown.shape[:2]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
        shown = shown[y0:y1, x0:x1]
        widths = ((y0 - y, y + h - y1), (x0 - x, x + w - x1), (0, 0))
    if rotation and shown.size:
        import cv2

        stored = np.rot90(shown, k=rotation // 90)  # the crop as a plain slice of the stored frame
        shown = cv2.rotate(stored, {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
                                    270: cv2.ROTATE_90_COUNTERCLOCKWISE}[rotation])
    if widths is not None and any(widths[0] + widths[1]):
        shown = np.pad(shown, widths, mode="edge" if pad == "edge" else "constant")
    if size is not None and (shown.shape[0] != size or shown.shape[1] != size):
        shown = np.asarray(Image.fromarray(shown).resize((size, size), Image.Resampling.BICUBIC))
    return shown


