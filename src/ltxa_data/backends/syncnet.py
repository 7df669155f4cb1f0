"""Active speaker by SyncNet (Chung & Zisserman, "Out of time", 2016): the `syncnet_v2.model` release of
joonson/syncnet_python (MIT), reimplemented here with the same parameter names so that its checkpoint binds.

What `SyncNetInstance.evaluate` does, on one target window:
- video: 224x224 BGR face crops (their `crop_video`: a square of 2.8x the face box's half side, from the box
  top down, the outside filled with grey 110), in stacks of 5 frames through the lip tower;
- audio: 13 MFCCs at 100 Hz (python_speech_features' defaults, on int16-scaled 16 kHz audio, `mfcc` below),
  windows of 20 (5 video frames) every 4 through the audio tower;
- the mean Euclidean distance between the lip and the audio embeddings at each offset, the offset of the
  smallest, and the confidence = median - min of those mean distances (their `conf`, the "LSE-C" of lip-sync
  papers; LatentSync keeps clips at >= 3).

Differences, all at the edges: `evaluate` pads the audio embeddings with zeros to compare the first and last
frames at every offset; here the window's real audio margin (`SyncClip.search` frames each side) is used
instead, so every offset averages real distances over the same video stacks. The box track is median-smoothed
over 13 frames as in `crop_video`, but with the edge values repeated rather than zeros.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.fft import dct
from scipy.ndimage import median_filter
from torch import nn

from ..errors import SystemicError
from .active_speaker import AUDIO_RATE, SyncClip, SyncResult, best_offset
from .model_source import torch_device

SETTING = "targets.active_speaker.model"
CROP = 224
STACK = 5  # video frames per lip-tower input
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps
MFCC_WINDOW = STACK * MFCC_PER_FRAME
CROP_SCALE = 0.4  # run_pipeline.py --crop_scale
CROP_FILL = 110  # the grey crop_video pads frames with
BOX_SMOOTH = 13  # crop_video's median filter over the track
INT16_SCALE = 32768.0  # evaluate reads the wav as int16; our audio is float in [-1, 1]
_SHOW = 10  # keys named per kind in a binding error


def _conv_bn_relu(conv: nn.Module, channels: int, bn: type[nn.Module]) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=True)]


class SyncNetModel(nn.Module):
    """SyncNet's two towers, layer for layer as syncnet_python's `S`, whose state_dict keys they share
    (`netcnnaud.*`, `netfcaud.*`, `netcnnlip.*`, `netfclip.*`, same Sequential indices)."""

    def __init__(self, embedding: int = 1024) -> None:
        super().__init__()

        def aud(cin: int, cout: int, kernel: tuple[int, int] = (3, 3), pad: int = 1) -> list[nn.Module]:
            return _conv_bn_relu(nn.Conv2d(cin, cout, kernel, padding=pad), cout, nn.BatchNorm2d)

        def lip(cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1),
                pad: tuple[int, int, int] = (0, 1, 1)) -> list[nn.Module]:
            return _conv_bn_relu(nn.Conv3d(cin, cout, kernel, stride, pad), cout, nn.BatchNorm3d)

        # Input [N, 1, 13, 20] (MFCC x time) -> [N, 512, 1, 1]. The Identity stands for S's 1x1 max-pool,
        # a no-op that still holds an index of the Sequential.
        self.netcnnaud = nn.Sequential(
            *aud(1, 64), nn.Identity(),
            *aud(64, 192), nn.MaxPool2d(3, stride=(1, 2)),
            *aud(192, 384), *aud(384, 256), *aud(256, 256), nn.MaxPool2d(3, stride=2),
            *aud(256, 512, (5, 4), 0))
        self.netfcaud = self._head(embedding)
        # Input [N, 3, 5, 224, 224] (BGR 0..255, 5 frames) -> [N, 512, 1, 1, 1].
        self.netcnnlip = nn.Sequential(
            *lip(3, 96, (5, 7, 7), (1, 2, 2), (0, 0, 0)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *lip(96, 256, (1, 5, 5), (1, 2, 2)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *lip(256, 256, (1, 3, 3)), *lip(256, 256, (1, 3, 3)), *lip(256, 256, (1, 3, 3)),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *lip(256, 512, (1, 6, 6), pad=(0, 0, 0)))
        self.netfclip = self._head(embedding)

    @staticmethod
    def _head(embedding: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding))

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(x).flatten(1))


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > _SHOW else ''})"


def _read_checkpoint(path: Path) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise SystemicError(f"{SETTING}: the SyncNet checkpoint {path} {what}; download syncnet_v2.model "
                            "(joonson/syncnet_python, download_model.sh) and set its path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle, zip or torch error, whichever the bytes trip first
        raise SystemicError(f"{SETTING}: {path} is not a torch checkpoint ({type(e).__name__}: {e}); expected "
                            "syncnet_v2.model, a torch.save'd dict of parameter tensors") from e
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SystemicError(f"{SETTING}: {path} holds a {type(state).__name__}, not a dict of parameter tensors "
                            "like syncnet_v2.model")
    return state


def bind_syncnet(path: Path, model: nn.Module) -> None:
    """Load `path` into `model` strictly: every key of the model present with its shape, no others. Only the
    BatchNorm `num_batches_tracked` counters may be absent (the release predates them; eval ignores them)."""
    state = dict(_read_checkpoint(path))
    expected = model.state_dict()
    optional = {k for k in expected if k.endswith(".num_batches_tracked")}
    missing = sorted(expected.keys() - state.keys() - optional)
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        what = ([f"missing keys {_listing(missing)}"] if missing else []) + (
            [f"unexpected keys {_listing(unexpected)}"] if unexpected else [])
        raise SystemicError(f"{SETTING}: {path} is not a SyncNet (syncnet_v2.model) checkpoint: " + "; ".join(what))
    wrong = [f"{k} {tuple(state[k].shape)} (model wants {tuple(expected[k].shape)})" for k in sorted(state)
             if state[k].shape != expected[k].shape]
    if wrong:
        raise SystemicError(f"{SETTING}: {path}: SyncNet tensors of the wrong shape: {_listing(wrong)}")
    model.load_state_dict({**{k: expected[k] for k in optional}, **state}, strict=True)


def check_syncnet_model(path: Path) -> None:
    """Refuse a path that is not a SyncNet checkpoint fitting `SyncNetModel` (keys and shapes), loudly."""
    with torch.device("meta"):
        model = SyncNetModel()
    bind_syncnet(Path(path), model.to_empty(device="cpu"))


@cache
def _mel_filterbank(nfilt: int = 26, nfft: int = 512, rate: int = AUDIO_RATE) -> np.ndarray:
    """python_speech_features' triangles: mel-spaced edges rounded down to FFT bins. [nfilt, nfft // 2 + 1]"""
    mel = np.linspace(0.0, 2595 * np.log10(1 + rate / 2 / 700.0), nfilt + 2)
    edges = np.floor((nfft + 1) * (700 * (10 ** (mel / 2595.0) - 1)) / rate)
    bins = np.arange(nfft // 2 + 1)
    bank = np.zeros((nfilt, nfft // 2 + 1))
    for j, (lo, mid, hi) in enumerate(zip(edges[:-2], edges[1:-1], edges[2:], strict=True)):
        rise = (bins >= lo) & (bins < mid)
        fall = (bins >= mid) & (bins < hi)
        bank[j, rise] = (bins[rise] - lo) / (mid - lo)
        bank[j, fall] = (hi - bins[fall]) / (hi - mid)
    return bank


def mfcc(signal: np.ndarray, rate: int = AUDIO_RATE) -> np.ndarray:
    """`python_speech_features.mfcc(signal, rate)` (0.6, its defaults), in numpy: [frames, 13].

    25 ms rectangular frames every 10 ms (the last zero-padded), pre-emphasis 0.97, 512-point power spectrum,
    26 mel filters, log, orthonormal DCT-II, 13 coefficients liftered by 22, the first replaced by the log frame
    energy. A signal of n samples gives 1 + ceil((n - 400) / 160) frames (at least 1)."""
    x = np.asarray(signal, np.float64).ravel()
    if x.size == 0:
        raise ValueError("cannot take the MFCC of an empty signal")
    win, hop, nfft = round(0.025 * rate), round(0.010 * rate), 512
    n = 1 if x.size <= win else 1 + int(np.ceil((x.size - win) / hop))
    x = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1], np.zeros((n - 1) * hop + win - x.size)])
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    eps = np.finfo(float).eps
    energy = power.sum(axis=1)
    energy[energy == 0] = eps
    bands = power @ _mel_filterbank(26, nfft, rate).T
    bands[bands == 0] = eps
    cep = dct(np.log(bands), type=2, axis=1, norm="ortho")[:, :13]
    cep *= 1 + 11.0 * np.sin(np.pi * np.arange(13) / 22)
    cep[:, 0] = np.log(energy)
    return cep


def face_crops(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """syncnet_python's `crop_video` on RGB frames [F, H, W, 3] and face boxes (x, y, w, h) [F, 4]: BGR uint8
    [F, 224, 224, 3]. Half side s = max(w, h) / 2, median-smoothed over the track; the crop spans 1.4 s either
    side of the box centre across, and from s above it to 1.8 s below (down to the chin and below)."""
    boxes = np.asarray(boxes, np.float64)
    size = median_filter(np.maximum(boxes[:, 2], boxes[:, 3]) / 2, BOX_SMOOTH, mode="nearest")
    cx = median_filter(boxes[:, 0] + boxes[:, 2] / 2, BOX_SMOOTH, mode="nearest")
    cy = median_filter(boxes[:, 1] + boxes[:, 3] / 2, BOX_SMOOTH, mode="nearest")
    out = np.empty((len(frames), CROP, CROP, 3), np.uint8)
    for i, frame in enumerate(frames):
        s = size[i]
        # Floor, as their int() of coordinates in the frame padded by a whole number of pixels.
        top, bottom = int(np.floor(cy[i] - s)), int(np.floor(cy[i] + s * (1 + 2 * CROP_SCALE)))
        left, right = int(np.floor(cx[i] - s * (1 + CROP_SCALE))), int(np.floor(cx[i] + s * (1 + CROP_SCALE)))
        face = np.full((max(bottom - top, 1), max(right - left, 1), 3), CROP_FILL, np.uint8)
        h, w = frame.shape[:2]
        y0, y1, x0, x1 = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
        if y1 > y0 and x1 > x0:
            face[y0 - top:y1 - top, x0 - left:x1 - left] = frame[y0:y1, x0:x1, ::-1]  # RGB -> BGR
        out[i] = cv2.resize(face, (CROP, CROP))  # bilinear, as crop_video
    return out


class SyncNetScorer:
    """SyncNet confidence and offset of one window (see the module docstring), from a local syncnet_v2.model.

    `score`: SyncNet's confidence (median - min of the mean distances over offsets) at the offset of the smallest;
    `scores`: median - mean distance per offset (so the best is the confidence); `activity`: the mean distance of
    the window's lip embeddings from their mean (0 for a still picture; embedding units, like the distances)."""

    name = "syncnet"

    def __init__(self, model: Path, device: str = "cpu", batch_size: int = 20) -> None:
        self.device = torch.device(torch_device(device, "targets.active_speaker.device"))
        self.batch_size = batch_size
        net = SyncNetModel()
        bind_syncnet(Path(model), net)
        self.net = net.to(self.device).eval().requires_grad_(False)

    def embed(self, clip: SyncClip) -> tuple[torch.Tensor, torch.Tensor]:
        """Lip embeddings of the F - 5 stacks starting at frames 0..F-6 (evaluate's range) and audio embeddings of
        the F - 5 + 2 * search windows starting at audio frames -search..F-6+search: [n, 1024], [n + 2s, 1024]."""
        frames, search = len(clip.frames), clip.search
        n = frames - STACK
        if n < 1:
            raise ValueError(f"SyncNet needs at least {STACK + 1} frames, got {frames}")
        samples = (frames + 2 * search) * (AUDIO_RATE // 25)
        audio = np.zeros(samples, np.float64)
        audio[: min(samples, len(clip.audio))] = np.asarray(clip.audio, np.float64)[:samples] * INT16_SCALE
        cep = torch.from_numpy(mfcc(audio).T.astype(np.float32))  # [13, 4 * (F + 2s) - 1]
        aud_in = cep.unfold(1, MFCC_WINDOW, MFCC_PER_FRAME)[:, : n + 2 * search].permute(1, 0, 2)[:, None]
        video = torch.from_numpy(face_crops(clip.frames, clip.boxes)).permute(3, 0, 1, 2)  # [3, F, 224, 224]
        lips, auds = [], []
        with torch.inference_mode():
            for lo in range(0, n, self.batch_size):
                batch = torch.stack([video[:, v:v + STACK] for v in range(lo, min(n, lo + self.batch_size))])
                lips.append(self.net.forward_lip(batch.to(self.device, torch.float32)).float().cpu())
            for lo in range(0, len(aud_in), self.batch_size):
                auds.append(self.net.forward_aud(aud_in[lo:lo + self.batch_size].to(self.device)).float().cpu())
        return torch.cat(lips), torch.cat(auds)

    def score(self, clip: SyncClip) -> SyncResult:
        lip, aud = self.embed(clip)
        n, span = len(lip), 2 * clip.search + 1
        # dist[v, j]: lip stack v against the audio of window frames v + j - search, i.e. offset k = j - search
        # means the sound of mouth frame v is heard at frame v + k. Their calc_pdist pads the audio embeddings
        # with vshift zeros in front, so its column j also pairs video i with audio i + j - vshift, and their
        # `offset = vshift - argmin` is -k: positive when the sound comes first. Ours (SyncResult) is
        # +k = argmin - search: positive when the sound comes after the mouth.
        pairs = torch.arange(n)[:, None] + torch.arange(span)[None, :]
        dist = nn.functional.pairwise_distance(lip[:, None, :], aud[pairs])  # eps=1e-6, as calc_pdist
        mean = dist.mean(dim=0).double().numpy()
        median = float(np.median(mean))
        activity = float((lip - lip.mean(dim=0)).norm(dim=1).mean())
        scores = [median - float(d) for d in mean]  # the best is SyncNet's conf
        best = best_offset(scores, clip.search)
        conf = round(scores[best], 4)
        return SyncResult(conf, best - clip.search, conf, round(activity, 5), [round(v, 4) for v in scores])
