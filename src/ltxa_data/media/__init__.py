"""Media I/O on PyAV (which bundles FFmpeg): probing, decoding audio and frame-exact video windows,
encoding mp4/wav (`decode`, `encode`). Every stage that touches media goes through here.

Video geometry is always the displayed picture: frames stored sideways with a display matrix (phone
portrait clips) are turned upright and non-square pixels are stretched square, so sizes, crop boxes
and frames outside this module are all in displayed pixels (what ffmpeg and players show)."""

from .decode import (
    FrameSampler,
    KeptFrames,
    MediaError,
    ProbeResult,
    crop_frame,
    frame_geometry,
    frame_seconds,
    probe,
    read_audio,
    read_frames,
    read_window,
    shrunk,
)
from .encode import encode_video, encode_wav, mux_target, write_video

__all__ = [
    "FrameSampler",
    "KeptFrames",
    "MediaError",
    "ProbeResult",
    "crop_frame",
    "encode_video",
    "encode_wav",
    "frame_geometry",
    "frame_seconds",
    "mux_target",
    "probe",
    "read_audio",
    "read_frames",
    "read_window",
    "shrunk",
    "write_video",
]
