"""The SyncNet active-speaker backend on random-weight checkpoints in syncnet_v2.model's layout: strict binding
and loud refusals, the MFCC of python_speech_features, the crop of syncnet_python, the offset's sign, and one
121-frame window scored end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ltxa_data.backends.active_speaker import SyncClip, SyncResult
from ltxa_data.backends.syncnet import SyncNetModel, SyncNetScorer, check_syncnet_model, face_crops, mfcc
from ltxa_data.errors import SystemicError

from .fixtures.random_syncnet import random_syncnet_state, save_state, write_random_syncnet


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_syncnet(tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model")


@pytest.fixture(scope="module")
def scorer(ckpt: Path) -> SyncNetScorer:
    return SyncNetScorer(ckpt)


def test_binds_strictly_to_the_release_layout(ckpt: Path, scorer: SyncNetScorer, tmp_path: Path) -> None:
    saved = torch.load(ckpt, weights_only=True)
    model = scorer.net.state_dict()
    assert set(model) - set(saved) == {k for k in model if k.endswith(".num_batches_tracked")}
    assert all(torch.equal(model[k], v) for k, v in saved.items())
    assert not scorer.net.training
    check_syncnet_model(ckpt)
    # The zip serialization of newer torch binds too.
    check_syncnet_model(write_random_syncnet(tmp_path / "zip.model", legacy=False))


@pytest.mark.parametrize(("edit", "named"), [
    (lambda s: s.pop("netcnnlip.18.weight"), "netcnnlip.18.weight"),
    (lambda s: s.__setitem__("netcnnlip.21.weight", torch.zeros(3)), "netcnnlip.21.weight"),
    (lambda s: s.__setitem__("netfclip.3.weight", torch.zeros(512, 512)), "netfclip.3.weight (512, 512)"),
])
def test_refuses_checkpoints_that_do_not_fit(edit, named: str, tmp_path: Path) -> None:
    state = random_syncnet_state()
    edit(state)
    path = save_state(state, tmp_path / "bad.model")
    with pytest.raises(SystemicError, match=re.escape(named)):
        check_syncnet_model(path)
    with pytest.raises(SystemicError, match=re.escape("targets.active_speaker.model")):
        SyncNetScorer(path)


def test_refuses_missing_and_non_checkpoint_files(tmp_path: Path) -> None:
    with pytest.raises(SystemicError, match="does not exist"):
        SyncNetScorer(tmp_path / "syncnet_v2.model")
    (tmp_path / "text.model").write_text("not a checkpoint\n")
    with pytest.raises(SystemicError, match="is not a torch checkpoint"):
        check_syncnet_model(tmp_path / "text.model")
    torch.save([torch.zeros(3)], tmp_path / "list.model")
    with pytest.raises(SystemicError, match="not a dict of parameter tensors"):
        check_syncnet_model(tmp_path / "list.model")


def _reference_first_frame(x: np.ndarray) -> np.ndarray:
    """python_speech_features.mfcc's first frame, spelled out with plain sums."""
    y = np.concatenate([x[:1], x[1:400] - 0.97 * x[:399]])
    n, k = np.arange(400), np.arange(257)[:, None]
    power = ((y * np.cos(2 * np.pi * k * n / 512)).sum(1) ** 2 + (y * np.sin(2 * np.pi * k * n / 512)).sum(1) ** 2)
    power /= 512
    mels = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 28)
    edge = np.floor(513 * 700 * (10 ** (mels / 2595) - 1) / 16000)
    bands = np.zeros(26)
    for j in range(26):
        for i in range(int(edge[j]), int(edge[j + 1])):
            bands[j] += power[i] * (i - edge[j]) / (edge[j + 1] - edge[j])
        for i in range(int(edge[j + 1]), int(edge[j + 2])):
            bands[j] += power[i] * (edge[j + 2] - i) / (edge[j + 2] - edge[j + 1])
    logs = np.log(bands)
    cep = np.array([np.sqrt((1 if m == 0 else 2) / 26) * sum(logs[i] * np.cos(np.pi * m * (2 * i + 1) / 52)
                                                             for i in range(26)) for m in range(13)])
    cep *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
    cep[0] = np.log(power.sum())
    return cep


def test_mfcc_is_python_speech_features() -> None:
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal(16000) * 3000)
    out = mfcc(x)
    assert out.shape == (99, 13)  # 1 + ceil((16000 - 400) / 160) frames at 100 Hz
    assert mfcc(np.zeros((121 + 12) * 640)).shape == (4 * 133 - 1, 13)
    np.testing.assert_allclose(out[0], _reference_first_frame(x), rtol=1e-9, atol=1e-9)
    psf = pytest.importorskip("python_speech_features")
    np.testing.assert_array_equal(out, psf.mfcc(x.astype(np.int16), 16000))


def test_face_crop_is_syncnet_pythons() -> None:
    frames = np.zeros((13, 300, 300, 3), np.uint8)
    frames[..., 0] = 200  # red
    boxes = np.tile([100.0, 100.0, 100.0, 80.0], (13, 1))  # half side 50: 140 across, 50 above to 90 below
    crops = face_crops(frames, boxes)
    assert crops.shape == (13, 224, 224, 3)
    assert (crops[:, 100, 100] == [0, 0, 200]).all()  # BGR
    # A box at the frame's corner: what lies outside the frame is grey 110.
    crops = face_crops(frames, np.tile([-50.0, -50.0, 100.0, 100.0], (13, 1)))
    assert (crops[:, 10, 10] == 110).all() and (crops[:, 200, 200] == [0, 0, 200]).all()


class _LoudnessNet(torch.nn.Module):
    """Stands in for SyncNet: lip = the 5 frames' brightness, audio = the 5 frames' log energy, each z-scored."""

    @staticmethod
    def _z(v: torch.Tensor) -> torch.Tensor:
        return (v - v.mean(1, keepdim=True)) / (v.std(1, keepdim=True) + 1e-6)

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self._z(x.mean(dim=(1, 3, 4)))

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self._z(x[:, 0, 0].reshape(len(x), 5, 4).mean(-1))


@pytest.mark.parametrize("delay", [3, -2])
def test_offset_is_positive_when_the_sound_comes_after_the_mouth(scorer: SyncNetScorer, delay: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scorer, "net", _LoudnessNet())
    rng = np.random.default_rng(1)
    frames_n, search = 40, 5
    level = rng.uniform(0, 1, frames_n + 2 * search + abs(delay))
    frames = np.repeat((level[:frames_n] * 255).astype(np.uint8), 256 * 256 * 3).reshape(frames_n, 256, 256, 3)
    # Audio frame u (window frame u - search) is as loud as the mouth is bright at window frame u - search - delay.
    loud = np.array([level[u - search - delay] if 0 <= u - search - delay < frames_n else rng.uniform(0, 1)
                     for u in range(frames_n + 2 * search)])
    audio = rng.standard_normal((frames_n + 2 * search) * 640) * np.repeat(10 ** (2 * loud - 3), 640)
    boxes = np.tile([78.0, 60.0, 100.0, 100.0], (frames_n, 1))
    res = scorer.score(SyncClip(frames, boxes, np.zeros((frames_n, 68, 2)), audio.astype(np.float32), search))
    assert res.offset == delay
    assert res.score == res.confidence == max(res.scores) > 0


def test_scores_a_121_frame_window(scorer: SyncNetScorer) -> None:
    rng = np.random.default_rng(2)
    frames_n, search = 121, 6
    frames = rng.integers(0, 256, (frames_n, 224, 224, 3), dtype=np.uint8)
    boxes = np.tile([42.0, 42.0, 140.0, 140.0], (frames_n, 1)) + rng.normal(0, 2, (frames_n, 4))
    audio = (rng.standard_normal((frames_n + 2 * search) * 640) * 0.1).astype(np.float32)
    res = scorer.score(SyncClip(frames, boxes, np.zeros((frames_n, 68, 2)), audio, search))
    assert isinstance(res, SyncResult)
    assert len(res.scores) == 2 * search + 1 and abs(res.offset) <= search
    assert np.isfinite([res.score, res.confidence, res.activity, *res.scores]).all()
    assert res.score == pytest.approx(res.scores[res.offset + search]) and res.activity > 0
    assert scorer.name == "syncnet"
    assert isinstance(scorer.net, SyncNetModel)
