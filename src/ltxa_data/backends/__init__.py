"""Model backends, one small interface per stage, chosen by name in the recipe and loaded lazily.

A backend that cannot load raises `SystemicError` with what to do; none silently no-ops.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SystemicError
from ..recipe import Recipe, setting
from .base import Diarizer, SpeakerEmbedder
from .face_detector import FaceDetector

if TYPE_CHECKING:
    from .active_speaker import ActiveSpeakerScorer
    from .face_detector import DlibFaceAnalyzer
    from .ltx_vae import LtxVaeEncoders
    from .speech_quality import SpeechQualityScorer
    from .speechbrain_classifier import SpeechbrainClassifier
    from .text_detector import TextDetector


UNFIT_FOR_REAL_FOOTAGE: dict[tuple[str, str], str] = {
    ("targets.face.detector", "haar"): "OpenCV's Haar cascade finds drawn faces: on 7 real photographs it found 62% "
    "of the faces, dlib's HOG 86% (benchmarks/faces_real.py); use dlib_hog",
}
"""Choices the recipe reference marks as unfit for real footage (field, value): why. No shipped recipe for real
footage makes one (a test loads them all)."""


def unfit_choices(recipe: Recipe) -> list[str]:
    """The recipe's choices that are unfit for real footage, each with why (`UNFIT_FOR_REAL_FOOTAGE`)."""
    return [f"{field}: {value}: {why}" for (field, value), why in UNFIT_FOR_REAL_FOOTAGE.items()
            if setting(recipe, field) == value]


# Production backends that later versions add; a recipe naming one is refused with this reason.
PLANNED: dict[tuple[str, str], str] = {}


def backend_problems(recipe: Recipe) -> list[str]:
    """Why the recipe's backends cannot run, checked before any work starts (no model is loaded):
    backends this version lacks, model folders that are missing or incomplete, a hub id that is neither cached
    nor reachable (no token, gated, no network, `HF_HUB_OFFLINE`), for every attribute's classifier too."""
    from .model_source import hub_problem, hub_token, model_source

    chosen = [("diarize", recipe.diarize.backend), ("embed", recipe.embed.backend), ("encode", recipe.encode.backend)]
    problems = [PLANNED[c] for c in chosen if c in PLANNED]
    try:
        if recipe.diarize.backend == "pyannote":
            from .pyannote_diarizer import SETTING, check_pipeline_folder

            cfg = recipe.diarize.pyannote
            source = model_source(cfg.model, recipe.base_dir, SETTING)
            if source.offline:
                check_pipeline_folder(source)
            problems += filter(None, [hub_problem(source, hub_token(source, cfg.token_env))])
    except SystemicError as e:
        problems.append(str(e))
    try:
        if recipe.embed.backend == "speechbrain_ecapa":
            from .speechbrain_embedder import FOLDER_FILES, SETTING

            ecapa = recipe.embed.speechbrain_ecapa
            source = model_source(ecapa.model, recipe.base_dir, SETTING)
            if source.offline:
                source.require(FOLDER_FILES)
            problems += filter(None, [hub_problem(source, hub_token(source, ecapa.token_env, required=False))])
    except SystemicError as e:
        problems.append(str(e))
    if recipe.encode.backend == "ltx":
        problems += _encoder_problems(recipe)
    if recipe.targets.face.required:
        problems += _face_problems(recipe)
    return problems + _quality_problems(recipe) + _attribute_problems(recipe)


def _attribute_problems(recipe: Recipe) -> list[str]:
    """The classifier of every attribute that has one (`attributes.<name>.model`) can load (nothing is loaded)."""
    problems = []
    for name, cfg in recipe.attributes.items():
        if cfg.backend == "speechbrain_classifier":
            from .speechbrain_classifier import classifier_problems

            problems += classifier_problems(cfg, recipe.base_dir, f"attributes.{name}.model")
    return problems


def _quality_problems(recipe: Recipe) -> list[str]:
    """The learned speech-quality models and the text detector the recipe needs exist (nothing is loaded)."""
    checks = []
    for section in ("references", "targets"):
        cfg = setting(recipe, f"{section}.speech_quality")
        if cfg.backend == "dnsmos":
            from .speech_quality import dnsmos_files

            model = recipe.resolve(cfg.model) if cfg.model else None
            checks.append(lambda model=model, cfg=cfg: dnsmos_files(model, cfg.personalized))
    picture = recipe.targets.picture
    if recipe.targets.face.required and picture.check and picture.text != "off":
        from .text_detector import text_model_file

        checks.append(lambda: text_model_file(recipe.resolve(picture.text_model) if picture.text_model else None))
    problems = []
    for check in checks:
        try:
            check()
        except SystemicError as e:
            problems.append(str(e))
    return sorted(set(problems), key=problems.index)


def _face_problems(recipe: Recipe) -> list[str]:
    """The face models the recipe needs exist: dlib's files (landmarks and descriptors serve every detector),
    a YuNet .onnx, a learned active-speaker checkpoint."""
    from .face_detector import check_yunet_model, dlib_model_files

    problems = []
    checks = [lambda: dlib_model_files(_dlib_folder(recipe))]
    if recipe.targets.face.detector == "yunet":
        checks.append(lambda: check_yunet_model(_yunet_model(recipe)))
    speaker = recipe.targets.active_speaker
    if speaker.check and speaker.backend == "syncnet":
        from .syncnet import check_syncnet_model

        checks.append(lambda: check_syncnet_model(recipe.resolve(str(speaker.model))))
    for check in checks:
        try:
            check()
        except SystemicError as e:
            problems.append(str(e))
    return problems


def _encoder_problems(recipe: Recipe) -> list[str]:
    """ltx-core imports and each checkpoint file is an LTX-2 safetensors with its config (weights unread)."""
    from .ltx_vae import import_ltx_core, read_ltx_config

    problems = []
    try:
        import_ltx_core()
    except SystemicError as e:
        problems.append(str(e))
    for path in (recipe.encode.checkpoint, recipe.encode.audio_checkpoint):
        if path is not None:
            try:
                read_ltx_config(recipe.resolve(path))
            except SystemicError as e:
                problems.append(str(e))
    return problems


def load_encoders(recipe: Recipe) -> LtxVaeEncoders:
    """The recipe's LTX-2 VAE encoders, loaded on its device."""
    import torch

    from .ltx_vae import LtxVaeEncoders

    cfg = recipe.encode
    assert cfg.checkpoint is not None, "the recipe validator requires a checkpoint for encode.backend ltx"
    return LtxVaeEncoders(recipe.resolve(cfg.checkpoint),
                          recipe.resolve(cfg.audio_checkpoint) if cfg.audio_checkpoint else None,
                          cfg.device, getattr(torch, cfg.video_dtype))


def _dlib_folder(recipe: Recipe) -> Path | None:
    folder = recipe.targets.face.dlib_models
    return recipe.resolve(folder) if folder else None


def load_face_detector(recipe: Recipe) -> FaceDetector:
    """The recipe's face detector, loaded."""
    from .face_detector import DlibFaceDetector, HaarFaceDetector, YuNetFaceDetector, dlib_model_files

    cfg = recipe.targets.face
    if cfg.detector == "haar":
        return HaarFaceDetector(cfg.min_neighbors)
    if cfg.detector == "yunet":
        return YuNetFaceDetector(_yunet_model(recipe), cfg.score_threshold)
    model = dlib_model_files(_dlib_folder(recipe))["cnn"] if cfg.detector == "dlib_cnn" else None
    return DlibFaceDetector(cfg.detector.removeprefix("dlib_"), cfg.upsample, model)


def load_face_analyzer(recipe: Recipe) -> DlibFaceAnalyzer:
    """dlib's landmarks and face descriptor, loaded (they serve every detector)."""
    from .face_detector import DlibFaceAnalyzer, dlib_model_files

    return DlibFaceAnalyzer(dlib_model_files(_dlib_folder(recipe)))


def load_active_speaker(recipe: Recipe) -> ActiveSpeakerScorer:
    """The recipe's active-speaker backend, loaded."""
    cfg = recipe.targets.active_speaker
    if cfg.backend == "syncnet":
        from .syncnet import SyncNetScorer

        return SyncNetScorer(recipe.resolve(str(cfg.model)), cfg.device)
    from .active_speaker import MouthMotionScorer

    return MouthMotionScorer(cfg.min_activity)


def load_speech_quality(recipe: Recipe, section: str) -> SpeechQualityScorer | None:
    """The learned speech-quality scorer of a section (`references` or `targets`), loaded; None for `snr`."""
    cfg = setting(recipe, f"{section}.speech_quality")
    if cfg.backend == "snr":
        return None
    from .speech_quality import Dnsmos

    return Dnsmos(recipe.resolve(cfg.model) if cfg.model else None, cfg.personalized, cfg.threads)


def load_text_detector(recipe: Recipe) -> TextDetector | None:
    """The burned-in text detector of the picture gates, loaded; None when they or it are off."""
    cfg = recipe.targets.picture
    if not (recipe.targets.face.required and cfg.check) or cfg.text == "off":
        return None
    from .text_detector import PpOcrTextDetector

    return PpOcrTextDetector(recipe.resolve(cfg.text_model) if cfg.text_model else None)


def _yunet_model(recipe: Recipe) -> Path:
    """The YuNet model path the recipe names, resolved; an error when it names none."""
    if recipe.targets.face.yunet_model is None:
        raise SystemicError("targets.face.detector is yunet but targets.face.yunet_model is not set")
    return recipe.resolve(recipe.targets.face.yunet_model)


def load_attribute_classifier(recipe: Recipe, name: str) -> SpeechbrainClassifier:
    """The classifier of attribute `name` (`attributes.<name>`), loaded."""
    if name not in recipe.attributes:
        raise ValueError(f"the recipe has no attribute {name!r} ({', '.join(recipe.attributes) or 'none'})")
    cfg = recipe.attributes[name]
    if cfg.backend != "speechbrain_classifier":
        raise ValueError(f"attributes.{name} has no classifier backend (its values come from {cfg.source})")
    from .speechbrain_classifier import SpeechbrainClassifier

    return SpeechbrainClassifier(cfg, recipe.base_dir, f"attributes.{name}.model")


def load_embedder(recipe: Recipe) -> SpeakerEmbedder:
    """The recipe's speaker embedder, loaded."""
    if recipe.embed.backend == "resemblyzer":
        from .resemblyzer_embedder import ResemblyzerEmbedder

        return ResemblyzerEmbedder()
    if recipe.embed.backend == "speechbrain_ecapa":
        from .speechbrain_embedder import SpeechbrainEmbedder

        return SpeechbrainEmbedder(recipe.embed.speechbrain_ecapa, recipe.base_dir)
    raise ValueError(PLANNED.get(("embed", recipe.embed.backend), f"unknown embed backend {recipe.embed.backend}"))


def load_diarizer(recipe: Recipe) -> Diarizer:
    """The recipe's diarizer, loaded."""
    if recipe.diarize.backend == "silero_vad":
        from .silero_diarizer import SileroVadDiarizer

        cfg = recipe.diarize.silero_vad
        embedder = None
        if cfg.local_speakers == "cluster":
            from .resemblyzer_embedder import ResemblyzerEmbedder

            embedder = ResemblyzerEmbedder()
        return SileroVadDiarizer(cfg, embedder)
    if recipe.diarize.backend == "pyannote":
        from .pyannote_diarizer import PyannoteDiarizer

        return PyannoteDiarizer(recipe.diarize.pyannote, recipe.base_dir)
    raise ValueError(PLANNED.get(("diarize", recipe.diarize.backend),
                                 f"unknown diarize backend {recipe.diarize.backend}"))
