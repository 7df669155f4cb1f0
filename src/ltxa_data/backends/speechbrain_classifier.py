"""Production attribute classifiers (`attributes.<name>.backend: speechbrain_classifier`): a speechbrain
`EncoderClassifier` (VoxLingua107 language ID, CommonAccent accent ID) or the class of a folder's
`custom_interface.py` (the IEMOCAP emotion model), from the hub or a local folder fully offline.

`classify_batch`'s `out_prob` is not a probability in every model; it becomes one as follows:
- speechbrain/lang-id-voxlingua107-ecapa: `Xvector.Classifier`, whose last layer is `Softmax(apply_log=True)`
  (trained with NLL): log-posteriors, exponentiated.
- Jzuluaga/accent-id-commonaccent_ecapa: `ECAPA_TDNN.Classifier`: cosine similarities in [-1, 1] (trained with
  additive angular margin, scale 30): softmax(scale * cosine), the posterior the training loss models.
- speechbrain/emotion-recognition-wav2vec2-IEMOCAP: its interface applies the yaml's `Softmax()` (apply_log
  False), whatever its docstring says: probabilities, kept.
Other models: rows that are log-probabilities are exponentiated, rows that are probabilities kept, other
scores (logits) softmaxed (`scores_to_probabilities`).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SystemicError
from ..recipe import AttributeConfig
from .model_source import ModelSource, hub_access, hub_token, load_error, model_source, prepare_speech_env, torch_device

SAMPLE_RATE = 16000
INTERFACE_FILE = "custom_interface.py"
AAM_SCALE = 30.0  # additive angular margin's scale in speechbrain's ECAPA recipes (CommonLanguage, CommonAccent)
_SPEECH_EXTRAS = "install the speech extras: pip install -e '.[speech]' -c constraints.txt"


def _plain_yaml(folder: Path, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The folder's hyperparams.yaml with every HyperPyYAML tag (`!new:`, ...) read as its plain value, nothing
    built; with `overrides`, its `!ref` references resolved first (as speechbrain resolves them)."""
    import yaml

    text = (folder / "hyperparams.yaml").read_text(encoding="utf-8")
    if overrides is not None:
        from hyperpyyaml import resolve_references

        text = resolve_references(text, overrides).getvalue()

    class Loader(yaml.SafeLoader):
        pass

    def untagged(loader: yaml.SafeLoader, _suffix: str, node: Any) -> Any:
        construct = {yaml.MappingNode: loader.construct_mapping, yaml.SequenceNode: loader.construct_sequence}
        return construct[type(node)](node, deep=True) if type(node) in construct else loader.construct_scalar(node)

    Loader.add_multi_constructor("!", untagged)
    return yaml.load(text, Loader) or {}


def _overrides(folder: Path) -> dict[str, str]:
    """`pretrained_path` (the hub id in the hub's yaml) pointed at the folder, when the yaml has one."""
    return {"pretrained_path": str(folder)} if "pretrained_path" in _plain_yaml(folder) else {}


def pretrainer_files(folder: Path) -> dict[str, Path]:
    """The file each of the pretrainer's loadables loads, as speechbrain resolves it for this folder."""
    pretrainer = _plain_yaml(folder, _overrides(folder)).get("pretrainer")
    if not isinstance(pretrainer, dict):
        raise ValueError("it has no `pretrainer` (speechbrain.utils.parameter_transfer.Pretrainer)")
    paths = pretrainer.get("paths") or {}
    # A loadable without a path is fetched as <source>/<name>.ckpt (Pretrainer.collect_files).
    files = {name: Path(str(paths.get(name) or folder / f"{name}.ckpt")) for name in pretrainer.get("loadables") or {}}
    return {name: Path(os.path.normpath(p if p.is_absolute() else Path.cwd() / p)) for name, p in files.items()}


def _folder_problems(source: ModelSource, cfg: AttributeConfig) -> list[str]:
    """What keeps a local folder from loading: hyperparams.yaml, the pretrainer's files (inside the folder),
    `custom_interface.py` and `interface` together, a hub model the yaml itself names (must be cached)."""
    folder, setting = source.local_dir, source.setting
    assert folder is not None
    interface_setting = setting.rsplit(".", 1)[0] + ".interface"
    if not (folder / "hyperparams.yaml").is_file():
        return [f"{setting}: the model folder {folder} is incomplete; missing hyperparams.yaml"]
    problems, custom = [], (folder / INTERFACE_FILE).is_file()
    if custom and not cfg.interface:
        problems.append(f"{setting}: {folder} holds {INTERFACE_FILE}, the code that runs this model: set "
                        f"{interface_setting} to the class in it to load")
    elif cfg.interface and not custom:
        problems.append(f"{interface_setting} is {cfg.interface!r}, but {folder} has no {INTERFACE_FILE}")
    try:
        files, top = pretrainer_files(folder), _plain_yaml(folder)
    except ImportError as e:
        return [*problems, f"{setting}: speechbrain does not import ({e}); {_SPEECH_EXTRAS}"]
    except Exception as e:  # whatever YAML or HyperPyYAML raise on a malformed file
        return [*problems, f"{setting}: {folder}/hyperparams.yaml cannot be read: {type(e).__name__}: {e}"]
    if outside := {name: str(p) for name, p in files.items() if not p.is_relative_to(folder)}:
        problems.append(f"{setting}: {folder}/hyperparams.yaml loads files from outside the folder: {outside}")
    try:
        source.require(sorted({str(p.relative_to(folder)) for p in files.values() if p.is_relative_to(folder)}))
    except SystemicError as e:
        problems.append(str(e))
    # A `<x>_hub` model the yaml names (IEMOCAP's `wav2vec2_hub: facebook/wav2vec2-base`) loads with the hub off.
    from huggingface_hub import snapshot_download

    for key, ref in top.items():
        if not (str(key).endswith("_hub") and isinstance(ref, str)) or Path(ref).exists():
            continue
        try:
            snapshot_download(ref, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE") or None)
        except Exception:  # not cached (or not a repository id)
            problems.append(f"{setting}: {folder}/hyperparams.yaml loads {key}: {ref!r} from the hub, and it is not "
                            f"in the local hub cache: download it (hf download {ref} --local-dir <folder>) and set "
                            f"{key} in that hyperparams.yaml to the folder")
    return problems


def classifier_problems(cfg: AttributeConfig, base_dir: Path, setting: str) -> list[str]:
    """Why the classifier `setting` names cannot load, without loading it: a local folder must hold every file
    its pretrainer loads (and `interface` with `custom_interface.py`); a hub id must be cached or reachable."""
    from .model_source import hub_problem

    try:
        source = model_source(str(cfg.model), base_dir, setting)
        if source.offline:
            return _folder_problems(source, cfg)
        return list(filter(None, [hub_problem(source, hub_token(source, cfg.token_env, required=False))]))
    except SystemicError as e:
        return [str(e)]


def scores_to_probabilities(scores: Any, cosine_scale: float | None = None) -> Any:
    """Rows of `out_prob` (a [batch, classes] tensor) as probabilities: softmax(scale * cosine) for a
    cosine classifier; else log-probabilities exponentiated, probabilities kept, anything else softmaxed."""
    import torch

    scores, tol = scores.float(), 1e-3
    if cosine_scale is not None:
        return torch.softmax(scores * cosine_scale, dim=-1)
    if bool((scores <= tol).all()) and bool((scores.logsumexp(dim=-1).abs() < tol).all()):
        return scores.exp()
    if bool((scores >= -tol).all()) and bool(((scores.sum(dim=-1) - 1).abs() < tol).all()):
        return scores.clamp(0.0, 1.0)
    return torch.softmax(scores, dim=-1)


class SpeechbrainClassifier:
    """One (label, probability) per 16 kHz mono window, batched with windows of the same length."""

    sample_rate = SAMPLE_RATE

    def __init__(self, cfg: AttributeConfig, base_dir: Path, setting: str) -> None:
        self.setting, self.batch_size = setting, cfg.batch_size
        source = model_source(str(cfg.model), base_dir, setting)
        if source.offline and (problems := _folder_problems(source, cfg)):
            raise SystemicError("; ".join(problems))
        prepare_speech_env()
        token = hub_token(source, cfg.token_env, required=False)
        try:
            import torch
            from speechbrain.inference.classifiers import EncoderClassifier
            from speechbrain.inference.interfaces import foreign_class
            from speechbrain.lobes.models.ECAPA_TDNN import Classifier as CosineClassifier
            from speechbrain.utils.fetching import FetchConfig
        except ImportError as e:
            raise SystemicError(f"speechbrain does not import ({e}); {_SPEECH_EXTRAS}") from e
        self._torch = torch
        self.device = torch_device(cfg.device, setting.rsplit(".", 1)[0] + ".device")
        where, local = str(source.local_dir or source.hub_id), source.local_dir
        # savedir=None reads the folder in place; pretrained_path in the hub's yaml is the hub id. FetchConfig.token
        # is typed bool, but huggingface_hub takes the token itself.
        kw: dict[str, Any] = ({"savedir": None, "overrides": _overrides(local), "fetch_config":
                               FetchConfig(allow_network=False)} if local else
                              {"fetch_config": FetchConfig(token=token or False)})  # type: ignore[arg-type]
        try:
            with hub_access(source):
                if cfg.interface:
                    self.model = foreign_class(source=where, pymodule_file=INTERFACE_FILE, classname=cfg.interface,
                                               run_opts={"device": self.device}, **kw)
                else:
                    self.model = EncoderClassifier.from_hparams(source=where, run_opts={"device": self.device}, **kw)
        except Exception as e:
            raise load_error(setting, str(cfg.model), e) from e
        pretrainer = self.model.hparams.pretrainer
        if local and (outside := {name: path for name, path in pretrainer.paths.items()
                                  if not Path(os.path.normpath(path)).is_relative_to(local)}):
            raise SystemicError(f"{setting}: {local}/hyperparams.yaml loads files from outside the folder: {outside}")
        self._check_bound(pretrainer)
        self.model.eval()
        encoder = getattr(self.model.hparams, "label_encoder", None)
        ind2lab = dict(getattr(encoder, "ind2lab", None) or {})
        if not ind2lab or sorted(ind2lab) != list(range(len(ind2lab))):
            raise SystemicError(f"{setting}: {cfg.model!r} has no labels numbered from 0 (its yaml's `label_encoder` "
                                f"and the file its pretrainer loads it from): {sorted(ind2lab)[:8]}")
        self.labels: list[str] = [str(ind2lab[i]) for i in range(len(ind2lab))]
        self._cosine_scale = None
        if (type(self.model).classify_batch is EncoderClassifier.classify_batch
                and isinstance(self.model.mods.classifier, CosineClassifier)):
            loss = getattr(self.model.hparams, "compute_cost", None)
            self._cosine_scale = float(getattr(getattr(loss, "loss_fn", loss), "scale", AAM_SCALE))
        encoder.ignore_len()
        encoder.ind2lab = defaultdict(str, ind2lab)  # the probe must not fail on a class the labels lack
        try:
            classes = self._probabilities(torch.zeros(1, SAMPLE_RATE)).shape[-1]  # it runs, and its width
        except Exception as e:
            raise load_error(setting, str(cfg.model), e) from e
        finally:
            encoder.ind2lab = ind2lab
        if classes != len(self.labels):
            raise SystemicError(f"{setting}: {cfg.model!r} scores {classes} classes but its label encoder holds "
                                f"{len(self.labels)} labels: they are not from the same model")

    def _check_bound(self, pretrainer: Any) -> None:
        """speechbrain loads weights with strict=False and only logs mismatches; refuse them instead."""
        from speechbrain.utils.checkpoints import DEFAULT_TRANSFER_HOOKS, get_default_hook, torch_parameter_transfer

        for name, module in pretrainer.loadables.items():
            if name not in pretrainer.paths or get_default_hook(module, DEFAULT_TRANSFER_HOOKS) \
                    is not torch_parameter_transfer:
                continue  # loaded by its own hook (label encoders, normalisation statistics, wav2vec2)
            path, model = pretrainer.paths[name], module.state_dict()
            saved = self._torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = sorted(set(model) - set(saved)), sorted(set(saved) - set(model))
            if missing or unexpected:
                raise SystemicError(f"{self.setting}: {path} does not fit the `{name}` of its hyperparams.yaml: "
                                    f"{len(missing)} missing keys {missing[:8]}, {len(unexpected)} unexpected keys "
                                    f"{unexpected[:8]}")

    def _probabilities(self, batch: Any) -> Any:
        """Class probabilities [batch, classes] of a batch of equal-length windows, on the CPU."""
        torch = self._torch
        with torch.inference_mode():
            out_prob = self.model.classify_batch(batch.to(self.device), torch.ones(len(batch), device=self.device))[0]
        return scores_to_probabilities(out_prob.reshape(len(batch), -1).cpu(), self._cosine_scale)

    def classify(self, waves: list[np.ndarray]) -> list[tuple[str, float]]:
        """The most probable label of each wave (float32 mono 16 kHz) and its probability."""
        # A batch holds windows of one length only (relative lengths all 1): zero-padding a window changes its
        # result (fbank frames and reflect-padded convolutions at its end see the padding: ~0.97 cosine on ECAPA).
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(waves):
            if np.ndim(w) != 1 or len(w) == 0:
                raise ValueError(f"wave {i}: a classifier needs a non-empty 1-D wave, got shape {np.shape(w)}")
            by_length.setdefault(len(w), []).append(i)
        out: list[tuple[str, float]] = [("", 0.0)] * len(waves)
        for group in by_length.values():
            for lo in range(0, len(group), self.batch_size):
                idx = group[lo : lo + self.batch_size]
                batch = self._torch.from_numpy(np.stack([np.asarray(waves[i], np.float32) for i in idx]))
                p, best = self._probabilities(batch).max(dim=-1)
                for i, prob, k in zip(idx, p.tolist(), best.tolist(), strict=True):
                    out[i] = (self.labels[k], min(max(float(prob), 0.0), 1.0))
        return out
