"""Production diarization: a pyannote.audio pipeline (`pyannote/speaker-diarization-community-1`, or
the 3.1 layout), from the hub with a token or from a local folder fully offline.

Waveforms are passed in memory. Overlapped speech comes from the pipeline's own (overlapping)
diarization and is marked per turn, so downstream stages use only single-speaker speech.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import SystemicError
from ..recipe import PyannoteConfig
from .base import Turn, turns_from_tracks
from .model_source import (
    ModelSource,
    hub_access,
    hub_token,
    load_error,
    model_source,
    prepare_speech_env,
    torch_device,
)

SETTING = "diarize.pyannote.model"
# What each model entry of the pipeline's config needs inside its local subfolder.
_MODEL_FILES = {
    "segmentation": ("pytorch_model.bin",),
    "embedding": ("pytorch_model.bin",),
    "plda": ("xvec_transform.npz", "plda.npz"),
}


def check_pipeline_folder(source: ModelSource) -> None:
    """Raise naming what is missing when a local pipeline folder cannot load offline: config.yaml,
    a model entry that points at the hub, or a subfolder's files."""
    source.require(["config.yaml"])
    assert source.local_dir is not None
    config_path = source.local_dir / "config.yaml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        params = config["pipeline"]["params"]
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise SystemicError(f"{SETTING}: {config_path} is not a pyannote pipeline config ({e})") from e
    missing = []
    for key, files in _MODEL_FILES.items():
        ref = params.get(key)
        if ref is None:
            if key == "plda":  # pyannote.audio 4 always loads one; its default is a gated hub repo
                missing.append("a `plda: $model/plda` entry in config.yaml (pyannote.audio 4 always loads a "
                               "PLDA; the 3.1 layout needs one added) with plda/xvec_transform.npz and plda/plda.npz")
            continue
        if not isinstance(ref, str):
            continue  # an inline dict: pyannote validates it
        if ref.startswith("$model/"):
            sub = ref.removeprefix("$model/").split("@")[0]
            missing += [f"{sub}/{f}" for f in files if not (source.local_dir / sub / f).is_file()]
        elif not Path(ref).exists():
            missing.append(f"{key}: config.yaml names {ref!r}, which is on the hub; download it into a "
                           f"subfolder and write `{key}: $model/<subfolder>` to load offline")
    if missing:
        raise SystemicError(f"{SETTING}: the pipeline folder {source.local_dir} cannot load offline; missing "
                            + "; ".join(missing))


class PyannoteDiarizer:
    """A loaded pyannote.audio speaker-diarization pipeline on the recipe's device."""

    def __init__(self, cfg: PyannoteConfig, base_dir: Path) -> None:
        source = model_source(cfg.model, base_dir, SETTING)
        if source.offline:
            check_pipeline_folder(source)
        token = hub_token(source, cfg.token_env)
        prepare_speech_env()
        try:
            import torch
            from pyannote.audio import Pipeline
        except ImportError as e:
            raise SystemicError(f"pyannote.audio does not import ({e}); install the speech extras: "
                                "pip install -e '.[speech]' -c constraints.txt") from e
        self._torch = torch
        try:
            with hub_access(source):
                pipeline = Pipeline.from_pretrained(str(source.local_dir or source.hub_id), token=token)
        except Exception as e:  # hub, checkpoint and config faults all surface here
            raise load_error(SETTING, cfg.model, e) from e
        if pipeline is None:  # pyannote returns None when the hub refuses the download
            raise SystemicError(f"{SETTING}: the hub refused {cfg.model!r}; accept its terms on huggingface.co "
                                f"with the account of the token in ${cfg.token_env}")
        self.device = torch_device(cfg.device, "diarize.pyannote.device")
        pipeline.to(torch.device(self.device))
        pipeline.segmentation_batch_size = cfg.segmentation_batch_size
        pipeline.embedding_batch_size = cfg.embedding_batch_size
        if cfg.segmentation_step is not None:
            inference = getattr(pipeline, "_segmentation", None)
            if inference is None or not hasattr(inference, "step"):
                raise SystemicError("diarize.pyannote.segmentation_step: this pyannote.audio version has no "
                                    "segmentation inference to set it on; leave it unset")
            inference.step = cfg.segmentation_step * inference.duration
        self.pipeline = pipeline
        self.hints: dict[str, Any] = {k: v for k, v in (("min_speakers", cfg.min_speakers),
                                                          ("max_speakers", cfg.max_speakers)) if v is not None}

    def __call__(self, audio: np.ndarray, sample_rate: int) -> list[Turn]:
        waveform = self._torch.from_numpy(np.ascontiguousarray(audio, np.float32))[None]
        with self._torch.inference_mode():
            out = self.pipeline({"waveform": waveform, "sample_rate": sample_rate}, **self.hints)
        # pyannote.audio 4 returns DiarizeOutput; 3.x returned the Annotation itself.
        annotation = getattr(out, "speaker_diarization", out)
        tracks = [(str(label), float(seg.start), float(seg.end))
                  for seg, _, label in annotation.itertracks(yield_label=True)]
        return turns_from_tracks(tracks, len(audio) / sample_rate)
