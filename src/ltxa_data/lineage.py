"""Lineage: what a build's samples came from, so that any sample can be audited.

`build_lineage(recipe)` is computed once per build (the pairs stage's `finalize`, in the driver) and
recorded on every pairs row and in every sample's json (`lineage`):

- `models`: every model the recipe's stages use, one entry per weight file: `role` (diarizer, embedder,
  face_detector, face_landmarks, face_descriptor, active_speaker, ltx_vae, ...), `backend` (the recipe's
  choice), `name`, `path`, `package` and `version` (the distribution that ships the file, or the library
  that runs a model from a folder), `sha256` of the file. Files are hashed once per path, size and mtime
  (`storage.cached_file_sha256`, cached in `OUT/.cache`). A model folder gives one entry per file. A model
  without weights (the mouth-motion active-speaker score) has no path and no sha256; a hub model that is
  not in the local hub cache has no sha256 either.
- `toolkit_version`: `ltxa_data.__version__`.
- `recipe_hash`: `recipe_hash(recipe)`, the completion markers' hash (`Recipe.section_hash`) of the
  sections of every stage a sample depends on (scheduling-only fields such as `executor` and
  `encode.batch_size` are not among them).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Any

from . import __version__
from .backends.face_detector import DLIB_FILES, HAAR_CASCADE
from .backends.model_source import model_source
from .backends.pyannote_diarizer import SETTING
from .backends.speechbrain_embedder import SETTING as ECAPA
from .errors import SystemicError
from .recipe import Recipe
from .schemas import MODEL_FIELDS
from .storage import cached_file_sha256

SAMPLE_SECTIONS = ("attributes", "diarize", "duplicates", "embed", "encode", "identify", "input", "pairs",
                   "references", "scan", "scenes", "shard", "targets")
"""The recipe sections that decide a sample: those of the shard stage and of every stage it reads from,
directly or not (not swap_eval, report, export, executor). `stages.sample_sections()` derives them from the
stages' declarations, and a test keeps the two equal (the stages import this module, so it cannot ask them)."""


def recipe_hash(recipe: Recipe) -> str:
    """A stable hash of the recipe's sections that decide the samples (`SAMPLE_SECTIONS`)."""
    return recipe.section_hash(*SAMPLE_SECTIONS)


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


OPENCV_DISTS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")


def _dist_of(module: str, *known: str) -> str:
    """The installed distribution that provides a top-level module (dlib comes as dlib or dlib-bin): the first of
    the `known` ones installed, else the one the metadata of every installed package names (a 0.5 s scan)."""
    installed = [d for d in known if package_version(d) is not None]
    return installed[0] if installed else next(iter(_distributions().get(module, [])), known[0])


def _package_dir(module: str) -> Path:
    """A package's folder, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemicError(f"lineage: package {module} is not installed, but the recipe uses its model")
    return Path(next(iter(spec.submodule_search_locations)))


class _Models:
    """Collects model entries, hashing each file once through the build's sha256 cache."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.cache = recipe.output_dir / ".cache"
        self.entries: list[dict[str, Any]] = []

    def file(self, role: str, backend: str, path: Path, package: str, name: str | None = None) -> None:
        if not path.is_file():
            raise SystemicError(f"lineage: the {role} model file {path} ({backend}) does not exist")
        self.entries.append(dict(role=role, backend=backend, name=name or path.name, path=str(path.resolve()),
                                 package=package, version=package_version(package),
                                 sha256=cached_file_sha256(path, self.cache)))

    def folder(self, role: str, backend: str, folder: Path, package: str, prefix: str = "") -> None:
        files = sorted(f for f in folder.rglob("*") if f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(folder).parts))
        if not files:
            raise SystemicError(f"lineage: the {role} model folder {folder} ({backend}) holds no file")
        for f in files:
            self.file(role, backend, f, package, prefix + f.relative_to(folder).as_posix())

    def weightless(self, role: str, backend: str, name: str, package: str) -> None:
        self.entries.append(dict(role=role, backend=backend, name=name, path=None, package=package,
                                 version=package_version(package), sha256=None))

    def source(self, role: str, backend: str, ref: str, setting: str, package: str) -> None:
        """A model the recipe names by folder or hub id (pyannote, speechbrain)."""

        src = model_source(ref, self.recipe.base_dir, setting)
        if src.local_dir is not None:
            self.folder(role, backend, src.local_dir, package)
            return
        snapshot = _hub_snapshot(str(src.hub_id))
        if snapshot is None:  # not downloaded yet: the hub id is all there is to record
            self.weightless(role, backend, f"hub:{src.hub_id} (not in the local hub cache)", package)
        else:
            self.folder(role, backend, snapshot, package, prefix=f"hub:{src.hub_id}@{snapshot.name}/")


def _hub_snapshot(repo_id: str) -> Path | None:
    """The local hub cache's snapshot folder of a repo (its name is the revision), without the network."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def model_lineage(recipe: Recipe) -> list[dict[str, Any]]:
    """Every model the recipe's stages use, one entry per file (fields `schemas.MODEL_FIELDS`)."""
    m = _Models(recipe)
    diarize = recipe.diarize
    if diarize.backend == "silero_vad":
        m.file("diarizer", "silero_vad", _package_dir("silero_vad") / "data" / "silero_vad.jit", "silero-vad")
        if diarize.silero_vad.local_speakers == "cluster":
            m.file("diarizer.local_speakers", "resemblyzer", _package_dir("resemblyzer") / "pretrained.pt",
                   "Resemblyzer")
    else:

        m.source("diarizer", "pyannote", diarize.pyannote.model, SETTING, "pyannote.audio")
    if recipe.embed.backend == "resemblyzer":
        m.file("embedder", "resemblyzer", _package_dir("resemblyzer") / "pretrained.pt", "Resemblyzer")
    else:

        m.source("embedder", "speechbrain_ecapa", recipe.embed.speechbrain_ecapa.model, ECAPA, "speechbrain")
    _face_models(recipe, m)
    if recipe.encode.backend == "ltx":
        enc = recipe.encode
        assert enc.checkpoint is not None
        if enc.audio_checkpoint is None:
            m.file("ltx_vae", "ltx", recipe.resolve(enc.checkpoint), "ltx-core")
        else:
            m.file("ltx_vae.video", "ltx", recipe.resolve(enc.checkpoint), "ltx-core")
            m.file("ltx_vae.audio", "ltx", recipe.resolve(enc.audio_checkpoint), "ltx-core")
    assert all(tuple(e) == MODEL_FIELDS for e in m.entries)
    return m.entries


def _face_models(recipe: Recipe, m: _Models) -> None:
    """The targets stage's models: detector, dlib's landmarks and descriptor, the active-speaker backend."""
    cfg = recipe.targets
    if not cfg.face.required:
        return

    folder = recipe.resolve(cfg.face.dlib_models) if cfg.face.dlib_models else None
    dlib_dist = _dist_of("_dlib_pybind11", "dlib", "dlib-bin")
    # Files from the face_recognition_models package, or from the recipe's folder (run by dlib).
    dlib_files, files_dist = ((folder, dlib_dist) if folder is not None
                              else (_package_dir("face_recognition_models") / "models", "face_recognition_models"))
    detector = cfg.face.detector
    if detector == "dlib_hog":
        # The HOG detector's weights are compiled into dlib's extension module: its hash is theirs.
        spec = importlib.util.find_spec("_dlib_pybind11")
        if spec is None or spec.origin is None:
            raise SystemicError("lineage: dlib is not installed, but targets.face.detector is dlib_hog")
        m.file("face_detector", detector, Path(spec.origin), dlib_dist,
               name="frontal_face_detector (HOG, compiled into dlib's module)")
    elif detector == "dlib_cnn":
        m.file("face_detector", detector, dlib_files / DLIB_FILES["cnn"], files_dist)
    elif detector == "haar":
        m.file("face_detector", detector, _package_dir("cv2") / "data" / HAAR_CASCADE, _dist_of("cv2", *OPENCV_DISTS))
    else:
        assert cfg.face.yunet_model is not None
        m.file("face_detector", detector, recipe.resolve(cfg.face.yunet_model), _dist_of("cv2", *OPENCV_DISTS))
    if cfg.active_speaker.check or cfg.face_identity.check:
        m.file("face_landmarks", "dlib", dlib_files / DLIB_FILES["landmarks"], files_dist)
    if cfg.face_identity.check:
        m.file("face_descriptor", "dlib", dlib_files / DLIB_FILES["descriptor"], files_dist)
    if cfg.active_speaker.check:
        if cfg.active_speaker.backend == "syncnet":
            m.file("active_speaker", "syncnet", recipe.resolve(str(cfg.active_speaker.model)), "ltxa-data")
        else:
            m.weightless("active_speaker", "mouth_motion", "mouth_motion (the dlib landmarks' lip opening against "
                         "the speech envelope; no weights)", "ltxa-data")


def build_lineage(recipe: Recipe) -> dict[str, Any]:
    """The build's lineage: `toolkit_version`, `recipe_hash`, `models`."""
    return {"toolkit_version": __version__, "recipe_hash": recipe_hash(recipe), "models": model_lineage(recipe)}
