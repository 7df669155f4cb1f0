"""Production speaker embeddings: speechbrain ECAPA-TDNN (`speechbrain/spkrec-ecapa-voxceleb`), from
the hub or from a local folder fully offline; batched, on the recipe's device, L2-normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SystemicError
from ..recipe import SpeechbrainConfig
from .model_source import hub_access, hub_token, load_error, model_source, prepare_speech_env, torch_device

SETTING = "embed.speechbrain_ecapa.model"
# Everything the hub repo's hyperparams.yaml makes the pretrainer load.
FOLDER_FILES = ("hyperparams.yaml", "embedding_model.ckpt", "mean_var_norm_emb.ckpt", "classifier.ckpt",
                "label_encoder.txt")
SAMPLE_RATE = 16000


class SpeechbrainEmbedder:
    """One L2-normalised ECAPA embedding per window, batched with windows of the same length."""

    sample_rate = SAMPLE_RATE

    def __init__(self, cfg: SpeechbrainConfig, base_dir: Path) -> None:
        source = model_source(cfg.model, base_dir, SETTING)
        if source.offline:
            source.require(FOLDER_FILES)
        prepare_speech_env()
        token = hub_token(source, cfg.token_env, required=False)  # the model is public
        try:
            import torch
            from speechbrain.inference.speaker import EncoderClassifier
            from speechbrain.utils.fetching import FetchConfig
        except ImportError as e:
            raise SystemicError(f"speechbrain does not import ({e}); install the speech extras: "
                                "pip install -e '.[speech]' -c constraints.txt") from e
        self._torch = torch
        self.device = torch_device(cfg.device, "embed.speechbrain_ecapa.device")
        where = str(source.local_dir or source.hub_id)
        try:
            with hub_access(source):
                if source.offline:
                    # savedir=None reads the folder in place; pretrained_path in the hub's yaml is the hub id.
                    self.encoder = EncoderClassifier.from_hparams(
                        source=where, savedir=None, overrides={"pretrained_path": where},
                        fetch_config=FetchConfig(allow_network=False), run_opts={"device": self.device})
                else:
                    # FetchConfig.token is typed bool, but huggingface_hub takes the token itself.
                    self.encoder = EncoderClassifier.from_hparams(
                        source=where, fetch_config=FetchConfig(token=token or False),  # type: ignore[arg-type]
                        run_opts={"device": self.device})
        except Exception as e:
            raise load_error(SETTING, cfg.model, e) from e
        if self.encoder is None:
            raise SystemicError(f"{SETTING}: could not load {cfg.model!r}")
        if source.local_dir is not None:
            outside = {name: path for name, path in self.encoder.hparams.pretrainer.paths.items()
                       if not Path(path).resolve().is_relative_to(source.local_dir)}
            if outside:
                raise SystemicError(f"{SETTING}: {source.local_dir}/hyperparams.yaml loads files from outside the "
                                    f"folder: {outside}")
        self._check_bound()
        self.encoder.eval()
        self.batch_size = cfg.batch_size
        self.dim = int(self.encoder.mods.embedding_model.fc.conv.out_channels)

    def _check_bound(self) -> None:
        """speechbrain loads weights with strict=False and only logs mismatches; refuse them instead."""
        path = self.encoder.hparams.pretrainer.paths["embedding_model"]
        saved = self._torch.load(path, map_location="cpu", weights_only=True)
        model = self.encoder.mods.embedding_model.state_dict()
        missing, unexpected = sorted(set(model) - set(saved)), sorted(set(saved) - set(model))
        if missing or unexpected:
            raise SystemicError(f"{SETTING}: {path} does not fit the ECAPA model of its hyperparams.yaml: "
                                f"{len(missing)} missing keys {missing[:8]}, {len(unexpected)} unexpected keys "
                                f"{unexpected[:8]}")

    def embed(self, windows: list[np.ndarray], sample_rate: int) -> np.ndarray:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"ECAPA needs {SAMPLE_RATE} Hz audio, got {sample_rate}")
        torch = self._torch
        out = np.zeros((len(windows), self.dim), np.float32)
        # A batch holds windows of one length only: ECAPA's convolutions reflect-pad at the edges, so
        # zero-padding a shorter window would change its embedding.
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            if len(w) == 0:
                raise ValueError("cannot embed an empty window")
            by_length.setdefault(len(w), []).append(i)
        for length in sorted(by_length):
            group = by_length[length]
            for lo in range(0, len(group), self.batch_size):
                idx = group[lo : lo + self.batch_size]
                batch = torch.from_numpy(np.stack([np.asarray(windows[i], np.float32) for i in idx]))
                with torch.inference_mode():
                    emb = self.encoder.encode_batch(batch, torch.ones(len(idx)))[:, 0, :].float().cpu().numpy()
                out[idx] = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return out
