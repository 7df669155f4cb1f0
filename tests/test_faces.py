"""Face tracks, face crops and face masks on generated media.

The faces are drawn with the corpus's own painter (looks 0 and 3 here, which OpenCV's Haar cascade
finds on every frame; every look is checked below): detections are real, and the drawn face box is
the ground truth they are measured against. Haar boxes are squares over eyes to mouth, so centres are
compared (within a few pixels) and sides only roughly (the drawn box is an ellipse's bounding box,
taller than wide)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ltxa_data.analysis.faces import frame_boxes, latent_face_mask, latent_frame_groups, pixel_face_mask, steady_crop
from ltxa_data.corpus.faces import LOOKS, Framing, ShotArt
from ltxa_data.media import read_frames, write_video
from ltxa_data.recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, Recipe
from ltxa_data.reporting.verify import _check_face_members, check_face_crops
from ltxa_data.stages.shard import render_sample
from ltxa_data.stages.targets import TargetsStage

W, H = 640, 360
BG = (90, 110, 140)
N_FRAMES = 150  # 6 s: one target window from frame 0


def _art(look: int, cx: float, fh: float = 150, cy: float = 165) -> ShotArt:
    return ShotArt(W, H, LOOKS[look], Framing(BG, (0, 0, 1, 1), BG, cx, cy, fh))


def _centre(box: list[float] | np.ndarray) -> np.ndarray:
    return np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])


def _clip(path: Path, frame_of: callable) -> Path:  # type: ignore[valid-type]
    silence = np.zeros((2, round(N_FRAMES / TARGET_FPS * AUDIO_SAMPLE_RATE)), np.float32)
    write_video(path, (frame_of(i) for i in range(N_FRAMES)), fps=TARGET_FPS, audio=silence,
                sample_rate=AUDIO_SAMPLE_RATE, crf=12)
    return path


def _moving(i: int) -> tuple[float, float]:
    """Face centre x of the moving clip at frame i (and its height): 250 -> 370 px over the window."""
    return 250 + 120 * min(i, TARGET_FRAMES - 1) / (TARGET_FRAMES - 1), 150.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faces")
    arts = {}

    def moving(i: int) -> np.ndarray:
        cx = round(_moving(i)[0])
        if cx not in arts:
            arts[cx] = _art(3, cx)
        return arts[cx].frame(0)

    edge = _art(0, 85, fh=170).frame(0)
    left, right = _art(3, 170, fh=140).frame(0), _art(0, 470, fh=140).frame(0)
    two = np.concatenate([left[:, : W // 2], right[:, W // 2 :]], axis=1)
    empty = np.full((H, W, 3), BG, np.uint8)
    return {"moving": _clip(root / "moving.mp4", moving), "edge": _clip(root / "edge.mp4", lambda i: edge),
            "two": _clip(root / "two.mp4", lambda i: two), "empty": _clip(root / "empty.mp4", lambda i: empty)}


NO_GATES = {"active_speaker": {"check": False}, "face_identity": {"check": False}, "picture": {"check": False},
            "speech_quality": {"backend": "snr"}}
"""These clips are silent drawings that never speak: tracking and crops are tested without the face and quality
gates (tests/test_face_gates.py and tests/test_quality_gates.py test those)."""


def _stage(**face: object) -> TargetsStage:
    recipe = Recipe.model_validate({"name": "faces", "input": {"paths": ["."]}, "output": {"dir": "out"},
                                    "targets": {"crop": "face", "face": face, **NO_GATES}})
    stage = TargetsStage(recipe)
    stage.setup()
    return stage


def _track(stage: TargetsStage, path: Path) -> dict:
    video = {"path": str(path), "width": W, "height": H, "rel_path": path.name}
    return stage.track(video, {"target_id": path.stem, "start_frame": 0, "status": "ok", "error": None})


@pytest.mark.parametrize("kind", ["dlib_hog", "haar"])
def test_the_detectors_find_every_look_of_the_corpus_painter(kind: str) -> None:
    """Each of the corpus's eight looks, at three sizes and two positions: dlib's HOG detector (the default)
    and Haar find exactly the drawn face (IoU > 0.3 with its box) in most frames, and nothing else anywhere."""
    from ltxa_data.analysis.faces import iou
    from ltxa_data.backends.face_detector import DlibFaceDetector, HaarFaceDetector

    detector = DlibFaceDetector("hog") if kind == "dlib_hog" else HaarFaceDetector()
    for i in range(len(LOOKS)):
        found, false = 0, 0
        for fh in (120.0, 150.0, 170.0):
            for cx in (220.0, 400.0):
                art = _art(i, cx, fh=fh)
                truth = np.array(art.boxes()[0], float)
                (boxes,) = detector.detect(art.frame(6)[None])
                found += len(boxes) == 1 and iou(boxes[0, :4], truth) > 0.3
                false += sum(iou(b[:4], truth) <= 0.3 for b in boxes)
        assert found >= 4 and false == 0, (i, found, false)


@pytest.mark.parametrize("kind", ["dlib_hog", "haar"])
def test_face_track_follows_the_drawn_face_and_the_crop_holds_it(clips: dict[str, Path], kind: str) -> None:
    row = _track(_stage(detector=kind), clips["moving"])
    assert row["status"] == "ok", row["error"]
    assert row["face_ratio"] == 1.0
    errors = []
    for off, *box in row["face_track"]:
        truth = _art(3, round(_moving(int(off))[0])).boxes()[0]
        errors.append(np.abs(_centre(box) - _centre(truth)))
        assert 0.7 * truth[3] < box[2] < 1.2 * truth[3], (box, truth)
    # Measured: Haar x within 2 px, y 3-5 px low (its square spans eyes to mouth, the drawn box hair to chin);
    # dlib's HOG x within 4 px, y 10-17 px low (brows to chin; the key light moves its box a little).
    ex, ey = np.max(errors, axis=0)
    ey_spread = np.ptp(np.array(errors)[:, 1])
    assert ex <= 6.0 and ey <= 0.15 * 150 and ey_spread <= 8.0, errors
    x, y, w, h = row["crop_x"], row["crop_y"], row["crop_w"], row["crop_h"]
    assert w == h >= 2.2 * row["face_h"] - 1
    assert row["crop_pad"] == [0, 0, 0, 0]
    assert check_face_crops(_as_frame(row)) == []
    # steady: one crop whose centre is the centre of the path the face took
    track = np.array(row["face_track"])
    assert abs(x + w / 2 - 310) <= 6 and abs(y + h / 2 - np.mean(track[:, 2] + track[:, 4] / 2)) <= 2


def _as_frame(row: dict) -> pl.DataFrame:
    return pl.DataFrame([{**row, "crop_mode": "face"}])


def test_a_crop_leaving_the_frame_is_padded_not_stretched(clips: dict[str, Path]) -> None:
    row = _track(_stage(), clips["edge"])
    assert row["status"] == "ok", row["error"]
    truth = _art(0, 85, fh=170).boxes()[0]
    dx, dy = np.abs(_centre([row["face_x"], row["face_y"], row["face_w"], row["face_h"]]) - _centre(truth))
    assert dx <= 4 and dy <= 0.12 * truth[3], (dx, dy)  # dlib's box: brows to chin, lower than the drawn one
    crop = (row["crop_x"], row["crop_y"], row["crop_w"], row["crop_h"])
    left, top, right, bottom = row["crop_pad"]
    assert crop[0] < 0 and left == -crop[0] > 40 and right == 0
    assert crop[2] == crop[3] and crop[2] <= H + top + bottom
    size = 256
    black = read_frames(clips["edge"], [0.0], crop=crop, size=size)[0]
    edge = read_frames(clips["edge"], [0.0], crop=crop, size=size, pad="edge")[0]
    cols = int(left * size / crop[2]) - 2  # bicubic resize blurs the boundary by a pixel or two
    assert black[:, :cols].max() <= 2, "padding is black"
    assert np.abs(edge[:, :cols].astype(int) - edge[:, cols : cols + 1].astype(int)).max() <= 6
    # not stretched: the face keeps its aspect ratio (its drawn box scales by one factor on both axes)
    boxes = frame_boxes(row["face_track"], crop, size)
    ratio = boxes[:, 2] / boxes[:, 3]
    assert np.allclose(ratio, row["face_w"] / row["face_h"], atol=0.02)


@pytest.mark.parametrize(("clip", "reason"), [("empty", "no face in 16/16 sampled frames"),
                                              ("two", "more than one face in 16/16 sampled frames")])
def test_windows_without_exactly_one_face_are_skipped_with_the_reason(clips: dict[str, Path], clip: str,
                                                                       reason: str) -> None:
    row = _track(_stage(), clips[clip])
    assert row["status"] == "skipped" and row["error"].endswith(reason)
    assert row["face_ratio"] == 0.0 and "face_track" not in row


def test_a_window_skipped_for_its_face_makes_room_for_the_next_best(tmp_path: Path) -> None:
    """12 s of one speaker; nobody is on screen for the first 5 s. The best window (from 0 s) is
    skipped for its face and the next window (from 5 s) is kept in its place."""
    face = _art(0, 320).frame(0)
    empty = np.full((H, W, 3), BG, np.uint8)
    n = 12 * TARGET_FPS
    silence = np.zeros((2, 12 * AUDIO_SAMPLE_RATE), np.float32)
    path = tmp_path / "late_face.mp4"
    write_video(path, (empty if i < 5 * TARGET_FPS else face for i in range(n)), fps=TARGET_FPS, audio=silence,
                sample_rate=AUDIO_SAMPLE_RATE, crf=12)
    recipe = Recipe.model_validate({"name": "faces", "input": {"paths": ["."]}, "output": {"dir": "out"},
                                    "targets": {"max_per_video": 1, **NO_GATES}})
    stage = TargetsStage(recipe)
    stage.setup()
    video = dict(video_id="v", path=str(path), rel_path=path.name, width=W, height=H, duration_s=12.0, cut_s=[])
    turns = pl.DataFrame({"speaker": ["S0"], "start_s": [0.0], "end_s": [12.0], "overlap": [False]})
    identities = pl.DataFrame({"speaker": ["S0"], "voice_id": ["v-S0"], "identity_id": ["id-a"]})
    rows = stage.windows_of(video, turns, identities)
    assert [(r["start_frame"], r["status"]) for r in rows] == [(0, "skipped"), (125, "ok")]
    assert rows[0]["error"] == "late_face.mp4: no face in 16/16 sampled frames"
    assert rows[1]["crop_mode"] == "center" and rows[1]["face_ratio"] == 1.0 and rows[1]["face_track"]


def test_centre_crops_carry_face_tracks_and_skip_faces_outside_them(clips: dict[str, Path]) -> None:
    recipe = Recipe.model_validate({"name": "faces", "input": {"paths": ["."]}, "output": {"dir": "out"},
                                    "targets": NO_GATES})
    stage = TargetsStage(recipe)
    stage.setup()
    video = {"path": str(clips["edge"]), "width": W, "height": H, "rel_path": "edge.mp4"}
    row = stage.track(video, {"target_id": "e", "start_frame": 0, "status": "ok", "error": None,
                              "crop_x": 140, "crop_y": 0, "crop_w": 360, "crop_h": 360})
    assert row["status"] == "skipped" and "the face leaves the centre crop in" in row["error"], row
    row = stage.track(video, {"target_id": "e", "start_frame": 0, "status": "ok", "error": None,
                              "crop_x": 0, "crop_y": 0, "crop_w": 360, "crop_h": 360})
    assert row["status"] == "ok" and row["face_track"]
    assert check_face_crops(pl.DataFrame([{**row, "crop_mode": "center"}]), required=True) == []
    moved = {**row, "crop_mode": "center", "crop_x": 280}
    assert "leaves its centre crop" in check_face_crops(pl.DataFrame([moved]))[0]
    untracked = {**row, "crop_mode": "center", "face_track": None}
    assert check_face_crops(pl.DataFrame([untracked])) == []
    assert "no face track" in check_face_crops(pl.DataFrame([untracked]), required=True)[0]


def test_face_masks_grow_about_the_face_and_stay_in_the_frame() -> None:
    track = [[0.0, 100.0, 100.0, 80.0, 80.0], [120.0, 300.0, 100.0, 80.0, 80.0]]
    plain = frame_boxes(track, (0, 0, 512, 512), 512)
    grown = frame_boxes(track, (0, 0, 512, 512), 512, grow=1.25)
    assert np.allclose(grown[0], [90, 90, 100, 100]) and np.allclose(plain[0], [100, 100, 80, 80])
    assert np.allclose(grown[:, :2] + grown[:, 2:] / 2, plain[:, :2] + plain[:, 2:] / 2)
    edge = frame_boxes([[0.0, -20.0, 480.0, 80.0, 80.0]], (0, 0, 512, 512), 512, grow=1.5)
    assert np.allclose(edge[0], [0, 460, 80, 52]), edge[0]


def test_latent_mask_has_the_vae_grid_and_covers_every_face_pixel() -> None:
    track = [[0.0, 100.0, 80.0, 90.0, 100.0], [120.0, 300.0, 120.0, 90.0, 100.0]]
    crop, _ = steady_crop(track, 2.2, W, H)
    boxes = frame_boxes(track, crop, 512)
    assert boxes.shape == (TARGET_FRAMES, 4)
    mask = latent_face_mask(boxes, 512)
    assert mask.shape == (16, 16, 16) and mask.dtype == np.uint8
    pixels = pixel_face_mask(boxes, 512)
    groups = latent_frame_groups()
    assert [list(g)[:1] + list(g)[-1:] for g in groups[:3]] == [[0, 0], [1, 8], [9, 16]] and groups[-1][-1] == 120
    for k, g in enumerate(groups):
        face = pixels[list(g)].any(axis=0).reshape(16, 32, 16, 32).any(axis=(1, 3))
        assert (mask[k].astype(bool) == face).all(), k
    assert 0 < mask.mean() < 0.5


def test_face_members_are_in_the_sample_and_load(clips: dict[str, Path]) -> None:
    row = _track(_stage(), clips["moving"])
    sample = dict(key="face0", split="train", identity_id="i", target_id="t", video_id="v", path=str(clips["moving"]),
                  rel_path="moving.mp4", start_frame=0, references=[],
                  crop=[row["crop_x"], row["crop_y"], row["crop_w"], row["crop_h"]], crop_mode="face",
                  crop_pad=row["crop_pad"], face_track=row["face_track"])
    members = render_sample(sample, 256, 30)
    assert {"json", "mp4", "wav", "face_boxes.json", "face_mask_latent.npy"} <= members.keys()
    boxes = np.array(json.loads(members["face_boxes.json"]))
    mask = np.load(io.BytesIO(members["face_mask_latent.npy"]), allow_pickle=False)
    assert boxes.shape == (TARGET_FRAMES, 4) and mask.shape == (16, 8, 8)
    assert json.loads(members["json"])["crop_mode"] == "face"
    assert _check_face_members(members, 256) == []
    assert _check_face_members({"face_boxes.json": members["face_boxes.json"]}, 256) != []
    # the rebuilt pixel mask of the last frame sits where the face is drawn in the rendered picture
    last = read_frames(clips["moving"], [(TARGET_FRAMES - 1) / TARGET_FPS],
                       crop=tuple(sample["crop"]), size=256)[0].astype(int)
    face_px = pixel_face_mask(boxes[-1:], 256)[0]
    skin = np.abs(last - np.array(LOOKS[3].skin)).sum(axis=2) < 40
    assert skin[face_px].mean() > 3 * skin[~face_px].mean()


def test_a_face_crop_build_verifies_and_says_why_windows_were_skipped(built: Recipe, tmp_path: Path) -> None:
    from ltxa_data.pipeline import build
    from ltxa_data.reporting.verify import verify_build
    from ltxa_data.storage import read_frame

    from .conftest import copy_build

    recipe = copy_build(built, tmp_path, targets={"crop": "face"})
    ran = {r.stage: r.ran for r in build(recipe, progress=False)}
    assert ran["targets"] > 0 and ran["identify"] == 0
    targets = read_frame(recipe.manifests_dir, "targets", ok_only=False)
    face = targets.filter(pl.col("crop_mode") == "face")
    ok = face.filter(pl.col("status") == "ok")
    assert len(ok) > 0 and ok["face_track"].null_count() == 0
    skipped = face.filter(pl.col("status") == "skipped")
    assert skipped.height > 0, "the corpus's listener, still and dub clips skip windows: their reasons are checked"
    assert skipped["skipped_by"].null_count() == 0 and skipped["error"].null_count() == 0
    expected = {"face": ("sampled frames",), "window": ("window", "shorter than"),
                "active_speaker": ("with the voice", "out of sync"), "face_identity": ("dominant face",)}
    wrong = [(by, r) for by, r in zip(skipped["skipped_by"], skipped["error"], strict=True)
             if not any(w in r for w in expected[by])]
    assert not wrong, wrong
    assert verify_build(recipe) == []
    shards = read_frame(recipe.manifests_dir, "shards", ok_only=True)
    assert all(any(m.endswith(".face_mask_latent.npy") for m in ms) for ms in shards["members"].to_list())


def test_a_yunet_detector_needs_its_model_file_before_work_starts(tmp_path: Path) -> None:
    from ltxa_data.backends import backend_problems
    from ltxa_data.recipe import parse_recipe

    def problems(**face: object) -> list[str]:
        recipe = parse_recipe({"name": "y", "input": {"paths": ["."]}, "output": {"dir": "out"},
                               "targets": {"crop": "face", "face": face}}, base_dir=tmp_path)
        return backend_problems(recipe)

    assert problems() == [], "dlib's models and the Haar cascade install with their packages"
    assert any("yunet_model is not set" in p for p in problems(detector="yunet"))
    assert any("yunet.onnx does not exist" in p for p in problems(detector="yunet", yunet_model="yunet.onnx"))
    (tmp_path / "yunet.txt").write_text("x")
    assert any("not an .onnx file" in p for p in problems(detector="yunet", yunet_model="yunet.txt"))
