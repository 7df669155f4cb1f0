"""Writing media: H.264 mp4 and wav encoding, test and corpus videos (`ltxa_data.media`)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from .decode import MediaError, _square_size


def encode_video(frames: np.ndarray, fps: int, crf: int = 18, preset: str = "veryfast") -> bytes:
    """Encode uint8 [F, H, W, 3] frames as an H.264 mp4 (yuv420p, constant `fps`), no audio."""
    buf = io.BytesIO()
    write_video(buf, frames, fps=fps, crf=crf, preset=preset)
    return buf.getvalue()


def write_video(
    dest: Path | str | io.BytesIO,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    frame_times: Sequence[float] | None = None,
    rotation: int = 0,
    sample_aspect: float | Fraction = 1,
) -> None:
    """Write an mp4: H.264 video (+ AAC audio from float32 [C, N] when `audio` is given).

    `frame_times` (seconds) writes a variable-frame-rate file with those presentation times.
    `frames` are the displayed picture; `rotation` and `sample_aspect` store them the way phones and
    anamorphic sources do, and `read_frames` returns them as given. `rotation` (0, 90, 180, 270) stores
    them turned that far counter-clockwise, with a display matrix saying to turn them back clockwise
    (`probe` reads it as `rotation`). `sample_aspect` != 1 squeezes the stored width (SAR > 1) or height
    (SAR < 1) and labels the pixels with that aspect ratio; the squeezed side must come out a whole,
    even number of pixels that `probe` stretches back to the given size.
    """
    if rotation % 90 or not 0 <= rotation < 360:
        raise ValueError(f"rotation must be 0, 90, 180 or 270, not {rotation}")
    sar = Fraction(sample_aspect).limit_denominator(1000)
    if sar <= 0:
        raise ValueError(f"sample_aspect must be positive, not {sample_aspect}")
    rate = Fraction(fps).limit_denominator(1001)
    target = dest if isinstance(dest, io.BytesIO) else str(dest)
    with av.open(target, mode="w", format="mp4") as c:
        vs = None
        a_stream = None
        if audio is not None:
            if sample_rate is None:
                raise ValueError("sample_rate is required with audio")
            layout = {1: "mono", 2: "stereo"}[audio.shape[0]]
            a_stream = c.add_stream("aac", rate=sample_rate, layout=layout)
        tb = Fraction(1, 90000) if frame_times is not None else 1 / rate
        stored_size: tuple[int, int] | None = None
        for i, shown in enumerate(frames):
            arr = np.rot90(shown, k=rotation // 90) if rotation else shown
            if stored_size is None:
                stored_size = _stored_size(arr.shape[1], arr.shape[0], float(sar))
            if stored_size != (arr.shape[1], arr.shape[0]):
                import cv2

                arr = cv2.resize(np.ascontiguousarray(arr), stored_size, interpolation=cv2.INTER_AREA)
            if vs is None:
                vs = c.add_stream("libx264", rate=rate)
                vs.width, vs.height = stored_size
                vs.pix_fmt = "yuv420p"
                if sar != 1:
                    vs.codec_context.sample_aspect_ratio = sar
                if rotation:
                    _set_rotation(vs, rotation)
                vs.time_base = tb
                vs.codec_context.time_base = tb
                vs.options = {"crf": str(crf), "preset": preset, "threads": "1"}
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
            vf.pts = round(frame_times[i] / tb) if frame_times is not None else i
            vf.time_base = tb
            for p in vs.encode(vf):
                c.mux(p)
        if vs is None:
            raise ValueError("no frames to write")
        for p in vs.encode():
            c.mux(p)
        if a_stream is not None:
            assert audio is not None and sample_rate is not None
            pcm = np.ascontiguousarray(audio.astype(np.float32))
            step = 1024 * 16
            for s in range(0, pcm.shape[1], step):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, s : s + step]), format="fltp",
                                                layout=a_stream.layout.name)
                af.sample_rate = sample_rate
                af.pts = s
                af.time_base = Fraction(1, sample_rate)
                for p in a_stream.encode(af):
                    c.mux(p)
            for p in a_stream.encode():
                c.mux(p)


def _stored_size(width: int, height: int, sar: float) -> tuple[int, int]:
    """The inverse of `_square_size`: the stored size whose square-pixel size is width x height."""
    w, h = (round(width / sar), height) if sar > 1 else (width, round(height * sar))
    if (w % 2 or h % 2 or _square_size(w, h, sar) != (width, height)) and sar != 1:
        raise ValueError(f"{width}x{height} at sample aspect {sar} has no whole, even stored size ({w}x{h})")
    return w, h


def _set_rotation(vs: av.video.stream.VideoStream, rotation: int) -> None:
    if not hasattr(vs, "set_display_rotation"):
        raise MediaError(f"PyAV {av.__version__} cannot write a display matrix (VideoStream.set_display_rotation)")
    vs.set_display_rotation(-rotation)  # PyAV's angle is counter-clockwise, ours clockwise


def encode_wav(audio: np.ndarray, sample_rate: int) -> bytes:
    """Encode float32 [C, N] audio as 16-bit PCM wav bytes."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio.T, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def mux_target(mp4: bytes, wav: bytes, dest: Path) -> None:
    """The target's H.264 video with its own audio as AAC, so a browser plays them together."""
    with av.open(io.BytesIO(mp4)) as vin, av.open(io.BytesIO(wav)) as ain, av.open(str(dest), "w", format="mp4") as out:
        vstream = out.add_stream_from_template(vin.streams.video[0])
        astream = out.add_stream("aac", rate=ain.streams.audio[0].rate, layout="stereo")
        for packet in vin.demux(vin.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = vstream
            out.mux(packet)
        for frame in ain.decode(audio=0):
            frame.pts = None
            out.mux(astream.encode(frame))
        out.mux(astream.encode(None))
