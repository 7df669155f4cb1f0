"""The production attribute classifier (speechbrain `EncoderClassifier`, or a folder's `custom_interface.py` class)
with random weights written in the real folder layouts of speechbrain/lang-id-voxlingua107-ecapa and
Jzuluaga/accent-id-commonaccent_ecapa, loaded offline; its refusals; and its checks before any work."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ltxa_data.errors import SystemicError
from ltxa_data.recipe import AttributeConfig, parse_recipe

from .test_speech_backends import _cached_snapshot, offline  # noqa: F401 - `offline` is a fixture

SR = 16000
# The hub repo's hyperparams.yaml (pinned 0253049a), as speechbrain's recipe recipes/VoxLingua107/lang_id/
# hparams/train_ecapa.yaml defines the model it was trained as: 60 mels, ECAPA with 256-d embeddings, an
# x-vector classifier (one 512-unit block) that ends in log-softmax, 107 languages.
VOXLINGUA107_YAML = """\
# ############################################################################
# Model: ECAPA big for Speaker verification
# ############################################################################

# Feature parameters
n_mels: 60
left_frames: 0
right_frames: 0
deltas: False

# Pretrain folder (HuggingFace)
pretrained_path: speechbrain/lang-id-voxlingua107-ecapa

# Output parameters
out_n_neurons: 107

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
    left_frames: !ref <left_frames>
    right_frames: !ref <right_frames>
    deltas: !ref <deltas>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [1024, 1024, 1024, 1024, 3072]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 128
    lin_neurons: 256

classifier: !new:speechbrain.lobes.models.Xvector.Classifier
    input_shape: [null, null, 256]
    activation: !name:torch.nn.LeakyReLU
    lin_blocks: 1
    lin_neurons: 512
    out_neurons: !ref <out_n_neurons>

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

# The hub repo's hyperparams.yaml: its head verbatim; the model as the authors' repository
# (JuanPZuluaga/accent-recog-slt2022, CommonAccent/accent_id/hparams/) defines it: ECAPA on 80 mels with 192-d
# embeddings and the cosine classifier (trained with additive angular margin, scale 30). Its labels are in
# accent_encoder.txt, not label_encoder.txt.
COMMONACCENT_YAML = """\
# ############################################################################
# Model: ECAPA-TDNN for Accent Identification
# ############################################################################

# Pretrain folder (HuggingFace)
pretrained_path: Jzuluaga/accent-id-commonaccent_ecapa

# Feature parameters
n_mels: 80

# Output parameters
n_languages: 16 # Possible languages in the dataset
emb_dim: 192 # dimensionality of the embeddings

# Model params
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

# Embedding Model
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    activation: !name:torch.nn.LeakyReLU
    channels: [1024, 1024, 1024, 1024, 3072]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 128
    lin_neurons: !ref <emb_dim>

# Classifier based on cosine distance
classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: !ref <emb_dim>
    out_neurons: !ref <n_languages>

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/accent_encoder.txt
"""

# A small model whose own interface turns scores into probabilities, as the IEMOCAP emotion model's
# custom_interface.py does (its `output_mlp` in a `model` ModuleList, a `softmax` hparam).
CUSTOM_YAML = """\
pretrained_path: example/emotion
n_mels: 40
out_n_neurons: 4

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [32, 32, 32, 32, 96]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 16
    lin_neurons: 64

output_mlp: !new:speechbrain.nnet.linear.Linear
    input_size: 64
    n_neurons: !ref <out_n_neurons>
    bias: False

model: !new:torch.nn.ModuleList
    - [!ref <output_mlp>]

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <output_mlp>

softmax: !new:speechbrain.nnet.activations.Softmax

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        model: !ref <model>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        model: !ref <pretrained_path>/model.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

CUSTOM_INTERFACE = '''\
import torch
from speechbrain.inference.classifiers import EncoderClassifier


class EmotionClassifier(EncoderClassifier):
    """classify_batch's out_prob is the yaml's softmax of the scores: probabilities."""

    def classify_batch(self, wavs, wav_lens=None):
        out_prob = self.hparams.softmax(self.mods.classifier(self.encode_batch(wavs, wav_lens)).squeeze(1))
        score, index = torch.max(out_prob, dim=-1)
        return out_prob, score, index, self.hparams.label_encoder.decode_torch(index)
'''

LAYOUTS = {  # yaml, the line holding the class count, labels
    "voxlingua107": (VOXLINGUA107_YAML, "out_n_neurons: 107",
                     ["ab: Abkhazian", "de: German", "en: English", "fr: French", "ja: Japanese"]),
    "commonaccent": (COMMONACCENT_YAML, "n_languages: 16", ["african", "australia", "england", "scotland", "us"]),
    "custom": (CUSTOM_YAML, "out_n_neurons: 4", ["neu", "ang", "hap", "sad"]),
}


def write_random_classifier(out_dir: Path, layout: str, shrink: bool = True, seed: int = 0) -> Path:
    """A random-weight model folder in `layout`'s real on-disk layout: its hyperparams.yaml (class count set to
    its labels; ECAPA's channels shrunk 16x with `shrink`), every file its pretrainer loads, written by torch.save
    of the modules that yaml builds, and its labels in speechbrain's label-encoder format."""
    from hyperpyyaml import load_hyperpyyaml

    text, count_line, labels = LAYOUTS[layout]
    text = text.replace(count_line, f"{count_line.split(':')[0]}: {len(labels)}")
    if shrink:
        text = text.replace("channels: [1024, 1024, 1024, 1024, 3072]", "channels: [64, 64, 64, 64, 192]")
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    (out / "hyperparams.yaml").write_text(text, encoding="utf-8")
    if layout == "custom":
        (out / "custom_interface.py").write_text(CUSTOM_INTERFACE, encoding="utf-8")
    torch.manual_seed(seed)
    hp = load_hyperpyyaml(text, overrides={"pretrained_path": str(out)})
    pretrainer = hp["pretrainer"]
    for name, obj in pretrainer.loadables.items():
        if name == "label_encoder":
            obj.update_from_iterable(labels)
            obj.save(pretrainer.paths[name])  # "'label' => index" lines, then the starting index
            continue
        with torch.no_grad():  # trained-looking batch-norm statistics, so eval mode is not the identity
            for m in obj.modules():
                if isinstance(m, torch.nn.BatchNorm1d):
                    m.running_mean.normal_(0.0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        torch.save(obj.state_dict(), pretrainer.paths[name])
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("classifiers")
    return {layout: write_random_classifier(root / layout, layout) for layout in LAYOUTS}


def _cfg(model: Path | str, **kw: object) -> AttributeConfig:
    return AttributeConfig(backend="speechbrain_classifier", model=str(model), device="cpu", **kw)


def _waves(lengths: tuple[int, ...] = (56000, 77440, 56000, 40000, 77440, 56000)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(n) * 0.1).astype(np.float32) for n in lengths]


SETTING = "attributes.accent.model"


@pytest.mark.parametrize("layout", ["voxlingua107", "commonaccent", "custom"])
def test_real_layouts_load_offline_and_give_a_probability_per_wave(models: dict[str, Path], layout: str,
                                                                   offline: None) -> None:  # noqa: F811
    from ltxa_data.backends.speechbrain_classifier import SpeechbrainClassifier

    interface = "EmotionClassifier" if layout == "custom" else None
    clf = SpeechbrainClassifier(_cfg(models[layout], batch_size=2, interface=interface), Path("."), SETTING)
    assert clf.labels == LAYOUTS[layout][2]
    assert type(clf.model).__name__ == (interface or "EncoderClassifier")
    waves = _waves()
    batched = clf.classify(waves)
    assert len(batched) == len(waves)
    assert all(label in clf.labels and 0.0 <= p <= 1.0 for label, p in batched)
    alone = [clf.classify([w])[0] for w in waves]
    assert [label for label, _ in batched] == [label for label, _ in alone]
    np.testing.assert_allclose([p for _, p in batched], [p for _, p in alone], atol=1e-4)
    assert clf.classify(waves) == batched, "deterministic"

    # The probability is what the model's out_prob means: log-softmax (x-vector classifier), cosine of an
    # additive-angular-margin model (scale 30), or already a softmax (the custom interface).
    with torch.inference_mode():
        out_prob = clf.model.classify_batch(torch.from_numpy(waves[0])[None])[0].reshape(1, -1)[0]
    expected = {"voxlingua107": out_prob.exp(), "commonaccent": torch.softmax(30 * out_prob, -1),
                "custom": out_prob}[layout]
    assert float(expected.sum()) == pytest.approx(1.0, abs=1e-5)
    assert batched[0] == (clf.labels[int(expected.argmax())], pytest.approx(float(expected.max()), abs=1e-5))


def test_scores_become_probabilities_whatever_their_kind() -> None:
    from ltxa_data.backends.speechbrain_classifier import scores_to_probabilities

    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(scores_to_probabilities(torch.log_softmax(logits, -1)), probs)
    torch.testing.assert_close(scores_to_probabilities(probs), probs)
    torch.testing.assert_close(scores_to_probabilities(logits), probs)
    cosine = torch.tensor([[0.9, 0.1, -0.3]])
    torch.testing.assert_close(scores_to_probabilities(cosine, 30.0), torch.softmax(30 * cosine, -1))


def test_missing_folders_and_files_are_refused_naming_the_setting(models: dict[str, Path], tmp_path: Path,
                                                                  offline: None) -> None:  # noqa: F811
    from ltxa_data.backends.speechbrain_classifier import SpeechbrainClassifier, classifier_problems

    with pytest.raises(SystemicError, match=f"{SETTING}: there is no model folder {tmp_path}/nowhere"):
        SpeechbrainClassifier(_cfg(tmp_path / "nowhere"), tmp_path, SETTING)
    broken = tmp_path / "accent"
    shutil.copytree(models["commonaccent"], broken)
    (broken / "accent_encoder.txt").unlink()
    (broken / "classifier.ckpt").unlink()
    message = f"{SETTING}: the model folder {broken} is incomplete; missing accent_encoder.txt, classifier.ckpt"
    with pytest.raises(SystemicError, match=re.escape(message)):
        SpeechbrainClassifier(_cfg(broken), tmp_path, SETTING)
    assert classifier_problems(_cfg(broken), tmp_path, SETTING) == [message]
    assert classifier_problems(_cfg(models["commonaccent"]), tmp_path, SETTING) == []


def test_problems_are_found_without_loading_a_model(models: dict[str, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from speechbrain.inference import classifiers, interfaces

    from ltxa_data.backends.speechbrain_classifier import classifier_problems

    def no_loading(*args: object, **kw: object) -> None:
        raise AssertionError("classifier_problems loaded a model")

    monkeypatch.setattr(classifiers.EncoderClassifier, "from_hparams", no_loading)
    monkeypatch.setattr(interfaces, "foreign_class", no_loading)
    monkeypatch.setattr(torch, "load", no_loading)
    broken = tmp_path / "lang"
    shutil.copytree(models["voxlingua107"], broken)
    (broken / "embedding_model.ckpt").unlink()
    assert classifier_problems(_cfg(broken), tmp_path, SETTING) == [
        f"{SETTING}: the model folder {broken} is incomplete; missing embedding_model.ckpt"]
    (broken / "hyperparams.yaml").write_text(VOXLINGUA107_YAML.replace("<pretrained_path>/classifier", "/elsewhere/c"))
    assert "loads files from outside the folder: {'classifier': '/elsewhere/c.ckpt'}" in \
        classifier_problems(_cfg(broken), tmp_path, SETTING)[0]


def test_a_custom_interface_needs_its_class_named(models: dict[str, Path], tmp_path: Path,
                                                  offline: None) -> None:  # noqa: F811
    from ltxa_data.backends.speechbrain_classifier import SpeechbrainClassifier, classifier_problems

    folder = models["custom"]
    with pytest.raises(SystemicError, match=f"{SETTING}: {folder} holds custom_interface.py, the code that runs "
                       "this model: set attributes.accent.interface to the class in it to load"):
        SpeechbrainClassifier(_cfg(folder), tmp_path, SETTING)
    with pytest.raises(SystemicError, match=r"could not load .* has no attribute 'Emotion'"):
        SpeechbrainClassifier(_cfg(folder, interface="Emotion"), tmp_path, SETTING)
    assert "has no custom_interface.py" in \
        classifier_problems(_cfg(models["voxlingua107"], interface="EmotionClassifier"), tmp_path, SETTING)[0]
    # The IEMOCAP yaml's wav2vec2_hub names a hub model: offline it must be in the hub cache.
    nested = tmp_path / "emotion"
    shutil.copytree(folder, nested)
    with (nested / "hyperparams.yaml").open("a") as f:
        f.write("wav2vec2_hub: facebook/wav2vec2-base\n")
    (problem,) = classifier_problems(_cfg(nested, interface="EmotionClassifier"), tmp_path, SETTING)
    assert "loads wav2vec2_hub: 'facebook/wav2vec2-base' from the hub, and it is not in the local hub cache" in problem


def test_weights_or_labels_of_another_model_are_refused(models: dict[str, Path], tmp_path: Path,
                                                        offline: None) -> None:  # noqa: F811
    from ltxa_data.backends.speechbrain_classifier import SpeechbrainClassifier

    broken = tmp_path / "lang"
    shutil.copytree(models["voxlingua107"], broken)
    state = torch.load(broken / "classifier.ckpt", weights_only=True)
    state["extra.weight"] = state.pop("out.w.weight")
    torch.save(state, broken / "classifier.ckpt")
    with pytest.raises(SystemicError, match=r"classifier.ckpt does not fit the `classifier` of its hyperparams.yaml: "
                       r"1 missing keys \['out.w.weight'\], 1 unexpected keys \['extra.weight'\]"):
        SpeechbrainClassifier(_cfg(broken), tmp_path, SETTING)
    shutil.copy(models["voxlingua107"] / "classifier.ckpt", broken / "classifier.ckpt")
    (broken / "label_encoder.txt").write_text("'en: English' => 0\n================\n'starting_index' => 0\n")
    with pytest.raises(SystemicError, match="scores 5 classes but its label encoder holds 1 labels"):
        SpeechbrainClassifier(_cfg(broken), tmp_path, SETTING)


def test_recipe_attributes_are_checked_and_loaded(models: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, offline: None) -> None:  # noqa: F811
    from ltxa_data.backends import backend_problems, load_attribute_classifier

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = {"backend": "speechbrain_classifier"}
    data = {"name": "t", "input": {"paths": [str(tmp_path)]}, "output": {"dir": str(tmp_path / "out")},
            "attributes": {"language": {**backend, "model": "voxlingua107", "device": "cpu"},
                           "accent": {**backend, "model": "Jzuluaga/accent-id-commonaccent_ecapa"},
                           "emotion": {"label_regex": "(?P<value>[a-z]+)/"}}}
    recipe = parse_recipe(data, base_dir=models["voxlingua107"].parent)
    problems = backend_problems(recipe)
    assert [p for p in problems if p.startswith("attributes.")] == [
        "attributes.accent.model: 'Jzuluaga/accent-id-commonaccent_ecapa' is not in the local hub cache and "
        "HF_HUB_OFFLINE is set: download it where the hub is reachable (hf download "
        "Jzuluaga/accent-id-commonaccent_ecapa --local-dir models/accent-id-commonaccent_ecapa), copy the folder to "
        "this machine and point attributes.accent.model at it"]
    _cached_snapshot(tmp_path / "hub", "Jzuluaga/accent-id-commonaccent_ecapa")
    assert not [p for p in backend_problems(recipe) if p.startswith("attributes.")], "a cached repository loads"
    clf = load_attribute_classifier(recipe, "language")
    assert clf.labels == LAYOUTS["voxlingua107"][2] and clf.setting == "attributes.language.model"
    with pytest.raises(ValueError, match=r"attributes\.emotion has no classifier backend"):
        load_attribute_classifier(recipe, "emotion")
