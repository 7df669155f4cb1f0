"""The README's "Your own videos" guide, followed the closest honest way without the downloads or a GPU: its
recipe (recipes/my_videos.yaml, which the README shows verbatim) and its commands, run from a repository root
whose models/ holds random-weight models in the real folder layouts at the paths the guide's `hf download`
commands fill."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from ltxa_data.cli import main
from ltxa_data.recipe import load_recipe
from ltxa_data.storage import read_frame

from .conftest import DEMO_QUALITY
from .fixtures.random_ecapa import write_random_ecapa
from .fixtures.random_gemma import TINY_TEXT, use_tiny_gemma, write_random_gemma
from .fixtures.random_ltx import write_random_ltx_checkpoint
from .fixtures.random_pyannote import write_random_pipeline

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "my_videos.yaml"


def _guide() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Your own videos", 1)[1].split("### Sizing", 1)[0]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def _downloads(guide: str) -> dict[str, Path]:
    """What each `hf download` of the guide writes: its `--local-dir`, or the file there when it names one."""
    out = {}
    for line in "".join(_blocks(guide, "bash")).splitlines():
        words = shlex.split(line)
        if len(words) > 2 and words[0].endswith("hf") and words[1] == "download":
            local = Path(words[words.index("--local-dir") + 1])
            files = [w for w in words[3:words.index("--local-dir")] if not w.startswith("-")]
            out[words[2]] = local / files[0] if files else local
    return out


def test_the_guide_shows_the_shipped_recipe_and_downloads_to_the_folders_it_names() -> None:
    guide = _guide()
    assert RECIPE.read_text() in _blocks(guide, "yaml"), "the README's recipe is recipes/my_videos.yaml verbatim"
    downloads = _downloads(guide)
    assert set(downloads) == {"pyannote/speaker-diarization-community-1", "speechbrain/spkrec-ecapa-voxceleb",
                              "Lightricks/LTX-2.3", "google/gemma-3-12b-it-qat-q4_0-unquantized"}
    recipe = load_recipe(RECIPE)
    named = {recipe.resolve(p) for p in (recipe.diarize.pyannote.model, recipe.embed.speechbrain_ecapa.model,
                                         recipe.encode.checkpoint, recipe.export.text_encoder)}
    assert named == {ROOT / p for p in downloads.values()}, "each model the recipe names is one the guide fetches"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


@pytest.mark.slow
def test_the_guide_builds_verifies_reports_and_exports_with_the_production_backends(
        corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The guide's commands in order, from a root laid out as the guide leaves it. What differs, and why: the
    latents at 64 px on the CPU (no GPU), the demo's material-quality floors (drawn faces, espeak voices),
    smaller partitions and faster pyannote steps; the recipe is otherwise the shipped one."""
    root = tmp_path / "repo"
    downloads = _downloads(_guide())
    write_random_pipeline(root / downloads["pyannote/speaker-diarization-community-1"], single_speaker=True)
    write_random_ecapa(root / downloads["speechbrain/spkrec-ecapa-voxceleb"])
    checkpoint = root / downloads["Lightricks/LTX-2.3"]
    checkpoint.parent.mkdir(parents=True)
    write_random_ltx_checkpoint(checkpoint, text_gemma=(TINY_TEXT["hidden_size"], TINY_TEXT["num_hidden_layers"]))
    write_random_gemma(root / downloads["google/gemma-3-12b-it-qat-q4_0-unquantized"])
    use_tiny_gemma(monkeypatch)
    for speaker in ("spk0", "spk1"):
        shutil.copytree(corpus / speaker, root / "videos" / speaker)

    data = _merge(yaml.safe_load(RECIPE.read_text()), {
        "executor": {"workers": 2, "threads_per_worker": 1},
        "scan": {"files_per_partition": 4, "min_short_side": 128},
        "diarize": {"videos_per_partition": 3, "pyannote": {"segmentation_step": 0.5}},
        "embed": {"videos_per_partition": 3, "speechbrain_ecapa": {"batch_size": 8}},
        "targets": {"size": 64, **DEMO_QUALITY["targets"]},
        "references": DEMO_QUALITY["references"],
        "encode": {"device": "cpu", "batch_size": 2},
        "export": {"text_encoder_device": "cpu"},
    })
    (root / "recipes").mkdir()
    (root / "recipes" / "my_videos.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.chdir(root)

    commands = [shlex.split(line) for line in _blocks(_guide(), "bash")[-1].splitlines() if "ltxa-data" in line]
    assert [c[1] for c in commands] == ["build", "status", "verify", "report", "export"]
    for argv in commands:
        args = argv[1:] + (["--no-progress"] if argv[1] == "build" else [])
        assert main(args) == 0, (argv, capsys.readouterr())
    out = capsys.readouterr().out
    assert "all invariants hold" in out

    recipe = load_recipe(root / "recipes" / "my_videos.yaml")
    assert recipe.output_dir == root / "data" / "my_videos"
    pairs = read_frame(recipe.manifests_dir, "pairs", ok_only=True)
    assert pairs.height > 0
    assert (recipe.output_dir / "report" / "index.html").is_file()
    exported = sorted((root / "data" / "my_videos" / "trainer").glob("*/.precomputed/latents/*.pt"))
    assert len(exported) == pairs.height
    conditions = torch.load(next((root / "data/my_videos/trainer").glob("*/.precomputed/conditions/*.pt")),
                            weights_only=True)
    assert set(conditions) == {"video_prompt_embeds", "audio_prompt_embeds", "prompt_attention_mask"}
