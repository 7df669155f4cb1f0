"""Display geometry: phone clips stored sideways with a display matrix, and non-square pixels, are
probed at their displayed size and decoded upright and square, as the ffmpeg CLI shows them; crop
boxes are in displayed pixels; scene cuts do not depend on how a clip is stored."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ltxa_data.media import ProbeResult, probe, read_frames, write_video
from ltxa_data.stages.scenes import _content_detector, _small_frame_stream, detect_cuts

W, H = 96, 160  # the upright picture: portrait, like a phone held upright
BAR = 12  # rows of the red bar along the top

needs_ffmpeg = pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("ffprobe")),
                                  reason="needs the ffmpeg CLI")


def _upright(w: int = W, h: int = H) -> np.ndarray:
    """Grey, a bright block in the upper-left quadrant and a red bar along the top: every turn and
    mirror of it looks different."""
    a = np.full((h, w, 3), 40, np.uint8)
    a[: h // 2, : w // 2] = 230
    a[:BAR] = (220, 30, 30)
    return a


def _assert_upright(frame: np.ndarray) -> None:
    h, w = frame.shape[:2]
    block = frame[BAR + 4 : h // 2 - 4, 4 : w // 2 - 4].astype(int)
    assert block.mean() > 200, "the bright block is in the upper-left quadrant"
    for q in (frame[h // 2 + 4 :, : w // 2 - 4], frame[BAR + 4 :, w // 2 + 4 :]):
        assert q.astype(int).mean() < 80, "the other quadrants are dark"
    bar = frame[2 : BAR - 2, 4:-4].astype(int)
    assert bar[..., 0].mean() > 180 and bar[..., 1].mean() < 80, "the red bar is along the top"


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["streams"][0]


def _ffmpeg_frame(path: Path, width: int, height: int) -> np.ndarray:
    """The first frame as the ffmpeg CLI shows it: auto-rotated, then made square-pixel by our rule."""
    square = "scale=w='if(gt(sar,1),round(iw*sar),iw)':h='if(lt(sar,1),round(ih/sar),ih)':flags=bicubic,setsar=1"
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", square, "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def _stored_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_a_rotated_clip_is_probed_and_read_upright(tmp_path: Path, rotation: int) -> None:
    path = tmp_path / f"r{rotation}.mp4"
    write_video(path, [_upright()] * 4, fps=25, rotation=rotation, crf=0)

    info = probe(path)
    assert (info.width, info.height, info.rotation, info.sample_aspect) == (W, H, rotation, 1.0)
    stored = _stored_frame(path).astype(int)
    # Stored turned counter-clockwise by `rotation`, so turning it clockwise shows it upright.
    assert np.abs(stored - np.rot90(_upright(), k=rotation // 90)).mean() < 2

    frames = read_frames(path, [0.0, 0.08])
    assert frames.shape == (2, H, W, 3) and frames.flags.c_contiguous
    for f in frames:
        _assert_upright(f)
    # Crop boxes are displayed pixels: the upper-left quadrant, the lower-right one, one that leaves the frame.
    ul = read_frames(path, [0.0], crop=(0, 0, W // 2, H // 2), size=32)[0].astype(int)
    assert ul[8:28, 4:28].mean() > 200 and ul[:2, :, 0].mean() > 180
    lr = read_frames(path, [0.0], crop=(W // 2, H // 2, W // 2, H // 2))[0].astype(int)
    assert lr.shape == (H // 2, W // 2, 3) and lr.mean() < 60
    out = read_frames(path, [0.0], crop=(W - 20, -10, 40, 40))[0].astype(int)
    assert out[:10].max() == 0 and out[:, 20:].max() == 0, "padding where the box leaves the displayed frame"
    assert out[12:18, 2:18, 0].mean() > 180, "the red bar's right end, inside the frame"


@needs_ffmpeg
@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotation_agrees_with_ffprobe_and_the_ffmpeg_cli(tmp_path: Path, rotation: int) -> None:
    path = tmp_path / f"r{rotation}.mp4"
    write_video(path, [_upright()] * 2, fps=25, rotation=rotation, crf=0)
    stream = _ffprobe(path)
    matrix = [s for s in stream.get("side_data_list", []) if s.get("side_data_type") == "Display Matrix"]
    if rotation == 0:
        assert not matrix
    else:
        # ffprobe prints the matrix's counter-clockwise angle; ours is the clockwise turn to upright.
        assert (-int(matrix[0]["rotation"])) % 360 == rotation
        assert (stream["width"], stream["height"]) == ((H, W) if rotation in (90, 270) else (W, H))
    theirs = _ffmpeg_frame(path, W, H)
    _assert_upright(theirs)
    assert np.abs(read_frames(path, [0.0])[0].astype(int) - theirs).mean() < 1  # 0 with FFmpeg 5.1 and PyAV 18


@needs_ffmpeg
@pytest.mark.parametrize(("sar", "rotation"), [(Fraction(4, 3), 0), (Fraction(16, 15), 0), (Fraction(3, 4), 0),
                                               (Fraction(4, 3), 90)])
def test_non_square_pixels_are_read_at_the_displayed_size(tmp_path: Path, sar: Fraction, rotation: int) -> None:
    w, h = (160, 96) if rotation == 0 else (96, 160)
    path = tmp_path / "sar.mp4"
    write_video(path, [_upright(w, h)] * 2, fps=25, rotation=rotation, sample_aspect=sar, crf=0)
    stream = _ffprobe(path)
    stored = (h, w) if rotation in (90, 270) else (w, h)  # square-pixel, stored orientation
    squeezed = (round(stored[0] / sar), stored[1]) if sar > 1 else (stored[0], round(stored[1] * sar))
    assert (stream["width"], stream["height"]) == squeezed
    assert Fraction(stream["sample_aspect_ratio"].replace(":", "/")) == sar

    info = probe(path)
    assert (info.width, info.height, info.rotation) == (w, h, rotation)
    assert info.sample_aspect == pytest.approx(float(sar), abs=1e-6)
    frame = read_frames(path, [0.0])[0]
    assert frame.shape == (h, w, 3)
    _assert_upright(frame)
    theirs = _ffmpeg_frame(path, w, h).astype(int)
    assert np.abs(frame.astype(int) - theirs).mean() < 3


def test_probe_appends_the_new_fields_and_write_video_checks_its_arguments(tmp_path: Path) -> None:
    names = [f.name for f in dataclasses.fields(ProbeResult)]
    assert names[:5] == ["duration_s", "fps", "num_frames", "width", "height"]
    assert names[-2:] == ["rotation", "sample_aspect"]
    with pytest.raises(ValueError, match="rotation"):
        write_video(tmp_path / "x.mp4", [_upright()], fps=25, rotation=45)
    with pytest.raises(ValueError, match="even stored size"):
        write_video(tmp_path / "x.mp4", [_upright(100, 96)], fps=25, sample_aspect=Fraction(4, 3))


def _shots_clip(path: Path, rotation: int) -> None:
    """Three shots of 0.8 s at 25 fps (cuts at 0.8 and 1.6 s), each a textured picture that moves a little."""
    rng = np.random.default_rng(7)
    looks = [rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
             for _ in range(3)]
    frames = [np.roll(looks[i // 20], i % 20, axis=1) for i in range(60)]
    write_video(path, frames, fps=25, rotation=rotation, crf=18)


def test_scene_cuts_do_not_depend_on_rotation(tmp_path: Path) -> None:
    cuts = {}
    for rotation in (0, 90, 180, 270):
        path = tmp_path / f"shots{rotation}.mp4"
        _shots_clip(path, rotation)
        cuts[rotation] = detect_cuts(str(path), threshold=27.0, min_shot_s=0.5)
    assert cuts[0] == pytest.approx([0.8, 1.6], abs=0.001)
    assert all(c == cuts[0] for c in cuts.values()), cuts
    # A window read past a seek (after 2 s) is upright too.
    frames = read_frames(tmp_path / "shots90.mp4", [2.2, 2.3])
    assert frames.shape == (2, H, W, 3)


def test_the_content_score_is_pyscenedetects_bit_for_bit(tmp_path: Path) -> None:
    """The scenes stage's frame score (one OpenCV difference of HSV frames) equals PySceneDetect's own, frame by
    frame, on a grainy clip with cuts."""
    from scenedetect import ContentDetector

    path = tmp_path / "shots.mp4"
    _shots_clip(path, 0)
    ours, stock = _content_detector(27.0, 0.5), ContentDetector(threshold=27.0, min_scene_len=0.5)
    video, scores = _small_frame_stream(str(path)), []
    while (frame := video.read()) is not False:
        grain = np.random.default_rng(video.frame_number).integers(-12, 13, frame.shape)
        frame = np.clip(frame + grain, 0, 255).astype(np.uint8)
        assert ours.process_frame(video.position, frame) == stock.process_frame(video.position, frame)
        scores.append((ours._frame_score, stock._frame_score))
    assert len(scores) == 60 and sum(a > 27.0 for a, _ in scores) == 2
    assert all(a == b for a, b in scores), scores
