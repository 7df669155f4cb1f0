"""Frame-rate conversion keeps audio and picture in sync: a clip whose picture turns white and whose
audio starts a tone at one known instant, at each common source rate (and variable frame rate) and
several audio sample rates, becomes a 25 fps target where the tone starts at that instant (within
5 ms) and the flash within one target frame of the source's own flash."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from ltxa_data.media import probe, write_video
from ltxa_data.recipe import AUDIO_SAMPLE_RATE, TARGET_FPS
from ltxa_data.stages.shard import render_sample

EVENT_S = 3.013  # off every frame grid on purpose
START_FRAME = 25  # the target window starts at 1.0 s
CLIP_S = 7.0


def _clip(path: Path, fps: Fraction | None, sample_rate: int) -> float:
    """Black picture and silence, then from EVENT_S on a white picture and a 440 Hz tone; returns
    when the source's first white frame is shown. fps None: variable frame rate (gaps of 20-50 ms)."""
    if fps is None:
        rng = np.random.default_rng(0)
        times = np.cumsum(np.r_[0.0, rng.uniform(0.02, 0.05, 400)])
        times = times[times < CLIP_S].tolist()
    else:
        times = [k / fps for k in range(int(CLIP_S * fps))]
    frames = (np.full((64, 64, 3), 255 if t >= EVENT_S else 0, np.uint8) for t in times)
    t = np.arange(int(CLIP_S * sample_rate)) / sample_rate
    tone = np.where(t >= EVENT_S, 0.8 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    write_video(path, frames, fps=fps or 30, audio=np.stack([tone, tone]), sample_rate=sample_rate, crf=0,
                frame_times=times if fps is None else None)
    return float(min(t for t in times if t >= EVENT_S))


@pytest.mark.parametrize(("fps", "sample_rate"), [
    (Fraction(24000, 1001), 48000), (Fraction(24), 44100), (Fraction(30000, 1001), 48000), (Fraction(30), 22050),
    (Fraction(50), 48000), (Fraction(60), 44100), (None, 48000),
], ids=["23.976", "24", "29.97", "30", "50", "60", "vfr"])
def test_a_flash_and_a_click_stay_within_one_frame_at_25_fps(tmp_path: Path, fps: Fraction | None,
                                                             sample_rate: int) -> None:
    path = tmp_path / "sync.mp4"
    source_flash_s = _clip(path, fps, sample_rate)
    info = probe(path)
    assert info.variable_frame_rate == (fps is None)
    sample = dict(key="k", identity_id="i", split="train", target_id="t", rel_path="sync.mp4", video_id="v",
                  path=str(path), start_frame=START_FRAME, crop=[0, 0, 64, 64], references=[])
    members = render_sample(sample, size=64, crf=0)

    with av.open(io.BytesIO(members["mp4"])) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == TARGET_FPS
        brightness = np.array([f.to_ndarray(format="gray").mean() for f in c.decode(stream)])
    audio, sr = sf.read(io.BytesIO(members["wav"]), dtype="float32")
    assert sr == AUDIO_SAMPLE_RATE and audio.shape == (121 * AUDIO_SAMPLE_RATE // TARGET_FPS, 2)

    window_start = START_FRAME / TARGET_FPS
    flash_s = window_start + int(np.argmax(brightness > 128)) / TARGET_FPS
    # The tone's onset: the first sample of the first 1 ms block carrying a tenth of its level.
    blocks = np.abs(audio[:, 0]).reshape(-1, AUDIO_SAMPLE_RATE // 1000).max(axis=1)
    click_s = window_start + int(np.argmax(blocks > 0.08)) / 1000
    frame = 1 / TARGET_FPS
    # The source shows the flash from its first frame at or after EVENT_S; a 25 fps frame shows it
    # from the first grid instant at or after that: conversion may delay it by less than a frame.
    assert source_flash_s - 1e-3 <= flash_s < source_flash_s + frame + 1e-3, (flash_s, source_flash_s)
    assert abs(click_s - EVENT_S) < 0.005, (click_s, EVENT_S)
    assert abs(flash_s - click_s) <= abs(source_flash_s - EVENT_S) + frame, (flash_s, click_s)
