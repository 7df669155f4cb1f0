"""Shared fixtures: a small generated corpus and one build of it that most tests inspect."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from ltxa_data.corpus.generate import generate_corpus
from ltxa_data.pipeline import build
from ltxa_data.recipe import CorpusConfig, Recipe, load_recipe

from .fixtures.random_ltx import write_random_ltx_checkpoint

REPO = Path(__file__).resolve().parents[1]
needs_ray = pytest.mark.skipif(shutil.which("ray", path=str(Path(sys.executable).parent)) is None,
                               reason="needs the ray extra")
RAY_ENV = {"PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
"""Environment of an offline Ray build: workers unpickle the test doubles from `tests`; no usage report, no Ray
token file written to the home folder."""

SMALL_CORPUS = CorpusConfig(seed=1, speakers=4, clips_per_speaker=3, two_speaker_clips=1, scene_cut_clips=1,
                            short_clips=1, copy_clips=2)


DEMO_RECIPE = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "demo.yaml").read_text())
"""The demo recipe: its picture and speech-quality thresholds suit the generated corpus's drawn faces and espeak
voices (the defaults are set for real footage)."""


DEMO_QUALITY: dict[str, Any] = {
    "targets": {k: DEMO_RECIPE["targets"][k] for k in ("picture", "speech_quality")},
    "references": {"speech_quality": DEMO_RECIPE["references"]["speech_quality"]}}
"""The demo's material-quality sections (its floors suit drawn faces and espeak voices), by recipe section."""
NO_QUALITY: dict[str, Any] = {"targets": {"picture": {"check": False}, "speech_quality": {"backend": "snr"}},
                              "references": {"speech_quality": {"backend": "snr"}}}
"""Material-quality gates off: the learned speech score and the text search cost a second or more per window,
and tests of resume, executors or take-downs are not about material."""


def recipe_dict(corpus: Path, quality: bool = False, **sections: dict[str, Any]) -> dict[str, Any]:
    """A test recipe: small partitions so that every stage runs several of them on 2 workers; with `quality`,
    the demo's material-quality thresholds (`DEMO_QUALITY`), else none (`NO_QUALITY`)."""
    gates = DEMO_QUALITY if quality else NO_QUALITY
    data: dict[str, Any] = {
        "targets": dict(gates["targets"]),
        "references": dict(gates["references"]),
        "name": "test",
        "input": {"paths": [str(corpus)]},
        "output": {"dir": "out"},
        "executor": {"workers": 2},
        "scan": {"files_per_partition": 8},
        "diarize": {"videos_per_partition": 6},
        "embed": {"videos_per_partition": 6},
        "identify": {"similarity_threshold": 0.85},
        "pairs": {"splits": {"train": 0.5, "val": 0.25, "test": 0.25, "by": "hours"}},
        "shard": {"samples_per_shard": 4},
        "report": {"enabled": False},  # the `built` fixture's build writes one; test_report.py checks it
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


def write_recipe(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "recipe.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "clips"
    generate_corpus(out, SMALL_CORPUS)
    return out


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Recipe:
    """The small corpus built once, end to end, material-quality gates on. Treat as read-only; copy it to
    change it."""
    recipe = load_recipe(write_recipe(tmp_path_factory.mktemp("build"),
                                      recipe_dict(corpus, quality=True, report={"enabled": True})))
    build(recipe, progress=False)
    return recipe


def copy_build(recipe: Recipe, dest: Path, **sections: dict[str, Any]) -> Recipe:
    """A copy of a finished build (the `built` fixture's: quality gates on) in `dest`, with recipe sections
    changed."""
    corpus = Path(recipe.input.paths[0])
    shutil.copytree(recipe.output_dir, dest / "out")
    return load_recipe(write_recipe(dest, recipe_dict(corpus, quality=True, **sections)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` skip on machines without CUDA (CI has none)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


SIZE = 64
"""Target size of the latent build (`encoded`): latents [128, 16, 2, 2], encoded in seconds on a CPU."""


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_ltx_checkpoint(tmp_path_factory.mktemp("ltx") / "ltx-2.3-random.safetensors")


@pytest.fixture(scope="session")
def conditions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The caption's conditions as LTX-2.3 writes them (bf16 embeds, int64 mask), at a reduced width."""
    path = tmp_path_factory.mktemp("cond") / "caption.pt"
    torch.save({"video_prompt_embeds": torch.randn(1024, 64).bfloat16(),
                "audio_prompt_embeds": torch.randn(1024, 32).bfloat16(),
                "prompt_attention_mask": torch.ones(1024, dtype=torch.int64)}, path)
    return path


@pytest.fixture(scope="session")
def encoded(built: Recipe, checkpoint: Path, conditions: Path, tmp_path_factory: pytest.TempPathFactory) -> Recipe:
    from ltxa_data.pipeline import build

    recipe = copy_build(built, tmp_path_factory.mktemp("encoded"), targets={"size": SIZE},
                        encode={"backend": "ltx", "checkpoint": str(checkpoint), "device": "cpu", "batch_size": 3},
                        export={"conditions": str(conditions)})
    build(recipe, progress=False)
    return recipe
