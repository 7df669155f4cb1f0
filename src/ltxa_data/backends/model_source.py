"""Where a production model comes from (a local folder, offline, or a hub id), which device it runs
on, and the environment the speech libraries need. Shared by the pyannote and speechbrain backends."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import SystemicError

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


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
    """Resolve a recipe's model reference: an existing folder (relative to the recipe) is used
    offline; `owner/name` is a hub id; anything else that looks like a path must exist."""
    path = Path(ref).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        return ModelSource(setting, local_dir=path.resolve())
    looks_like_path = ref.startswith(("/", ".", "~")) or ref.count("/") != 1 or path.exists()
    if looks_like_path or not _HUB_ID.fullmatch(ref):
        raise SystemicError(f"{setting}: {ref!r} is neither a model folder ({path} does not exist or is not a "
                            "folder) nor a hub id of the form owner/name")
    return ModelSource(setting, hub_id=ref)


def hub_token(source: ModelSource, token_env: str | None) -> str | None:
    """The hub token for a hub id from the environment variable `token_env`; an error says what to do
    when it is missing. Local folders need none."""
    if source.offline or token_env is None:
        return None
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise SystemicError(f"{source.setting}: loading {source.hub_id!r} from the Hugging Face hub needs a token in "
                            f"${token_env} (accept the model's terms on huggingface.co first), or point "
                            f"{source.setting} at a local folder to run offline")
    return token


def prepare_speech_env(source: ModelSource) -> None:
    """Set the environment before pyannote, speechbrain or huggingface_hub are imported: telemetry
    off always, hub off for local folders; check torchaudio imports and say how to fix it if not."""
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"  # pyannote.audio 4 reports usage unless told not to
    if source.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        import sys

        if "huggingface_hub" in sys.modules:  # imported before us: its constants are already read
            import huggingface_hub.constants as hub_constants

            hub_constants.HF_HUB_OFFLINE = True
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError) as e:
        if "cuda" in str(e).lower():
            raise SystemicError(
                f"torchaudio does not import ({e}): its Linux wheels are CUDA builds. On a machine without "
                "CUDA, delete their native libraries (pyannote and ECAPA use only pure-Python paths): "
                "`rm -f $(python -c 'import torchaudio,os;print(os.path.dirname(torchaudio.__file__))')/lib/*.so`"
                " — scripts/setup.sh does this") from e
        raise SystemicError(f"torchaudio does not import ({e}); install the speech extras: "
                            "pip install -e '.[speech]' -c constraints.txt") from e


def torch_device(choice: str, setting: str) -> str:
    """`auto` is CUDA when present, else CPU; asking for CUDA without one is an error."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemicError(f"{setting}: device 'cuda' was asked for, but torch sees no CUDA device")
    return choice
