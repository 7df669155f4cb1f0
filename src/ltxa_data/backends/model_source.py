"""Where a production model comes from (a local folder, offline, or a hub id), which device it runs
on, and the environment the speech libraries need. Shared by the pyannote and speechbrain backends."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SystemicError

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
GUIDE_FOLDERS = {"pyannote/speaker-diarization-community-1": "pyannote-community-1",
                 "speechbrain/spkrec-ecapa-voxceleb": "ecapa"}
"""The folders under models/ the README's guide downloads these hub repositories to."""


@dataclass(frozen=True)
class ModelSource:
    """A model reference from the recipe, resolved: exactly one of `local_dir` and `hub_id` is set."""

    setting: str
    local_dir: Path | None = None
    hub_id: str | None = None

    @property
    def offline(self) -> bool:
        return self.local_dir is not None

    def require(self, files: Iterable[str]) -> None:
        """Raise naming every file of `files` (relative paths) missing from the local folder."""
        assert self.local_dir is not None
        missing = [f for f in files if not (self.local_dir / f).is_file()]
        if missing:
            raise SystemicError(f"{self.setting}: the model folder {self.local_dir} is incomplete; missing "
                                + ", ".join(missing))


def model_source(ref: str, base_dir: Path, setting: str) -> ModelSource:
    """Resolve a recipe's model reference: an existing folder (relative to the recipe's folder) is used
    offline; `owner/name` is a hub id unless its `owner` is a folder next to the recipe, or the reference
    names a folder from the working directory (then it is a local folder that is missing, and the error says
    how to name the one that exists); anything else must exist."""
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        return ModelSource(setting, local_dir=path.resolve())
    meant_local = (base_dir / ref.split("/")[0]).is_dir() or (Path.cwd() / ref).is_dir()
    looks_like_path = ref.startswith(("/", ".", "~")) or ref.count("/") != 1 or path.exists() or meant_local
    if looks_like_path or not _HUB_ID.fullmatch(ref):
        raise SystemicError(f"{setting}: there is no model folder {path}" + _relative_hint(ref, base_dir)
                            + ("" if looks_like_path else " (nor is it a hub id of the form owner/name)"))
    return ModelSource(setting, hub_id=ref)


def _relative_hint(ref: str, base_dir: Path) -> str:
    """For a relative reference: how it resolved, and the reference that names the folder the user most
    likely meant (the same path from the working directory)."""
    if Path(ref).expanduser().is_absolute():
        return ""
    hint = f" (relative model paths resolve against the recipe's folder, {base_dir})"
    meant = Path.cwd() / ref
    if meant.is_dir():
        rel = os.path.relpath(meant.resolve(), base_dir.resolve())
        hint += f"; the folder {meant.resolve()} exists: write {rel!r} or its absolute path"
    return hint


def hub_problem(source: ModelSource, token: str | None, timeout_s: float = 20.0) -> str | None:
    """Why a hub id cannot be loaded now, without downloading it, or None: a repository already in the
    local hub cache loads offline; otherwise the hub must answer for it (a gated repository whose terms
    the token's account has not accepted, a missing repository, no network, `HF_HUB_OFFLINE` set)."""
    if source.offline:
        return None
    from huggingface_hub import snapshot_download

    repo = str(source.hub_id)
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    try:
        snapshot_download(repo, local_files_only=True, cache_dir=cache_dir)
        return None
    except OSError:
        pass  # not cached
    name = GUIDE_FOLDERS.get(repo, repo.split("/")[1])
    fix = (f"download it where the hub is reachable (hf download {repo} --local-dir models/{name}), copy the "
           f"folder to this machine and point {source.setting} at it")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return f"{source.setting}: {repo!r} is not in the local hub cache and HF_HUB_OFFLINE is set: {fix}"
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    from huggingface_hub import auth_check
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    pool = ThreadPoolExecutor(1)
    try:
        pool.submit(auth_check, repo, token=token or False).result(timeout=timeout_s)
        return None
    except GatedRepoError:
        return (f"{source.setting}: {repo!r} is gated and the token's account may not read it: accept its "
                f"terms at https://huggingface.co/{repo} (logged in as that account), or {fix}")
    except RepositoryNotFoundError:
        return f"{source.setting}: the hub has no repository {repo!r} readable with this token"
    except FutureTimeout:
        return f"{source.setting}: the Hugging Face hub did not answer for {repo!r} in {timeout_s:.0f} s: {fix}"
    except Exception as e:  # no network, a proxy, DNS: whatever the HTTP client raises
        return f"{source.setting}: the Hugging Face hub cannot be reached for {repo!r} ({type(e).__name__}: {e}): {fix}"
    finally:
        pool.shutdown(wait=False)


def hub_token(source: ModelSource, token_env: str | None, required: bool = True) -> str | None:
    """The hub token for a hub id: `$token_env`, else the token `hf auth login` cached. A missing
    required token is an error saying what to do. Local folders need none."""
    if source.offline or token_env is None:
        return None
    token = os.environ.get(token_env, "").strip()
    if not token:
        try:
            from huggingface_hub import get_token

            token = (get_token() or "").strip()
        except ImportError:
            token = ""
    if not token and required:
        raise SystemicError(f"{source.setting}: loading {source.hub_id!r} from the Hugging Face hub needs a token in "
                            f"${token_env} (accept the model's terms on huggingface.co first), or point "
                            f"{source.setting} at a local folder to run offline")
    return token or None


def prepare_speech_env() -> None:
    """Before pyannote or speechbrain are imported: telemetry off; torchaudio must import (say how
    to fix it when it does not)."""
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"  # pyannote.audio 4 reports usage unless told not to
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError) as e:
        if "cuda" in str(e).lower():
            import importlib.util

            spec = importlib.util.find_spec("torchaudio")  # finds the files without running the module
            libs = Path(spec.origin).parent / "lib" if spec and spec.origin else "<site-packages>/torchaudio/lib"
            raise SystemicError(
                f"torchaudio does not import ({e}): its Linux wheels are CUDA builds. On a machine without "
                f"CUDA, delete their native libraries (pyannote and ECAPA use only pure-Python paths): "
                f"rm -f {libs}/*.so  (scripts/setup.sh does this)") from e
        raise SystemicError(f"torchaudio does not import ({e}); install the speech extras: "
                            "pip install -e '.[speech]' -c constraints.txt") from e


@contextmanager
def hub_access(source: ModelSource) -> Iterator[None]:
    """While loading from a local folder, the hub is off (a stray lookup fails at once instead of
    reaching the network); afterwards the process's setting is restored, so another model of the
    same process can still come from the hub."""
    if not source.offline:
        yield
        return
    import huggingface_hub.constants as hub_constants

    before_env, before_const = os.environ.get("HF_HUB_OFFLINE"), hub_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = before_const
        if before_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before_env


def load_error(setting: str, ref: str, e: BaseException) -> SystemicError:
    """A model that failed to load, with the chain of causes (the outer message is often generic)."""
    chain, cause = [f"{type(e).__name__}: {e}"], e.__cause__ or e.__context__
    while cause is not None and len(chain) < 4:
        chain.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__ or cause.__context__
    return SystemicError(f"{setting}: could not load {ref!r}: " + " <- ".join(chain))


def torch_device(choice: str, setting: str) -> str:
    """`auto` is CUDA when present, else CPU; asking for CUDA without one is an error."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemicError(f"{setting}: device 'cuda' was asked for, but torch sees no CUDA device")
    return choice
