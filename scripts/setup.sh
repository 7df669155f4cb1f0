#!/usr/bin/env bash
# Installs everything ltxa_data needs on a fresh Debian/Ubuntu machine: system packages (as root,
# or with sudo), then a virtualenv in .venv with exact versions from constraints.txt.
# Idempotent: `make` calls it whenever pyproject.toml, constraints.txt or this file change.
#   --gpu   (`make setup-gpu`) also makes sure torch is a CUDA build and that it sees a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=0
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    *) echo "setup: unknown option $arg (options: --gpu)" >&2; exit 2 ;;
  esac
done

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)   # the sample corpus's voices
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)         # the sample corpus's copies of clips
# Headless Chromium for the build report's browser test (tests/browser.py; LTXA_CHROMIUM names another binary).
# Debian's package plays the report's H.264 and PCM. Nothing else needs it, so where apt has no real package
# (Ubuntu ships a snap stub) setup goes on and that one test skips, saying why.
want_chromium=1
for b in chromium chromium-browser google-chrome "${LTXA_CHROMIUM:-}"; do
  [ -n "$b" ] && command -v "$b" >/dev/null 2>&1 && want_chromium=0
done
if [ ${#need_apt[@]} -gt 0 ] || [ $want_chromium = 1 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    if [ ${#need_apt[@]} -gt 0 ]; then
      echo "setup: please install ${need_apt[*]} (apt-get install ${need_apt[*]}) and rerun" >&2; exit 1
    fi
    echo "setup: no root to install chromium; the report's browser test will skip" >&2; sudo="false"
  fi
  # Chromium alone is optional: never wait on a password for it
  if [ ${#need_apt[@]} -eq 0 ] && [ "$sudo" = sudo ]; then sudo="sudo -n"; fi
  if [ ${#need_apt[@]} -gt 0 ]; then
    $sudo apt-get update -qq
  elif [ "$sudo" != false ] && ! $sudo apt-get update -qq; then
    sudo=false; echo "setup: apt-get update failed; the report's browser test will skip" >&2
  fi
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
  if [ $want_chromium = 1 ] && [ "$sudo" != false ]; then
    echo "setup: installing chromium (the report's browser test)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null \
      || echo "setup: chromium could not be installed; the report's browser test will skip" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "pip>=24"
# torch is pinned in constraints.txt: an unpinned torch pulls several GB of CUDA wheels.
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,speech,encode,ray]"
# The burned-in text detector's ONNX model ships in rapidocr-onnxruntime, which requires opencv-python (a clash
# with opencv-python-headless); only its model file is used, so it installs without its dependencies.
.venv/bin/python -m pip install -q -c constraints.txt --no-deps rapidocr-onnxruntime
if [ $gpu = 1 ]; then
  # PyPI's Linux x86_64 torch wheel is the CUDA build; a local CPU wheel of the same version (a mirror, a
  # wheel cache) would shadow it, so a CPU build is replaced from PyPI itself.
  if [ "$(.venv/bin/python -c 'import torch; print(torch.version.cuda or "")')" = "" ]; then
    torch_pin=$(grep -E '^torch==' constraints.txt)
    echo "setup: replacing the CPU torch with PyPI's CUDA build ($torch_pin; several GB)"
    .venv/bin/python -m pip install -q -c constraints.txt --force-reinstall --no-cache-dir \
      --index-url https://pypi.org/simple "$torch_pin"
  fi
  .venv/bin/python - <<'PY'
import sys, torch
if torch.version.cuda is None:
    sys.exit("setup: torch is still a CPU build; see README, 'Your own videos'")
if not torch.cuda.is_available():
    sys.exit(f"setup: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU: check the NVIDIA driver "
             "(nvidia-smi) and CUDA_VISIBLE_DEVICES")
names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
print(f"setup: torch {torch.__version__}, CUDA {torch.version.cuda}: {names}")
PY
fi
# Every Linux torchaudio wheel is a CUDA build whose native libraries need libc10_cuda.so. With a
# CPU-only torch, delete them: pyannote and ECAPA use only torchaudio's pure-Python code.
.venv/bin/python - <<'PY'
import importlib.util, pathlib, torch
if torch.version.cuda is None:
    spec = importlib.util.find_spec("torchaudio")
    for lib in pathlib.Path(spec.origin).parent.joinpath("lib").glob("*.so"):
        lib.unlink()
PY
touch .venv/.installed
echo "setup: ready (.venv)"
