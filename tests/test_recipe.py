"""Recipes: strict typed parsing, errors that name the key or the path, refusal of unavailable backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ltxa_data.cli import main
from ltxa_data.recipe import RecipeError, load_recipe

from .conftest import recipe_dict, write_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_recipes_parse() -> None:
    for p in sorted((ROOT / "recipes").glob("*.yaml")):
        r = load_recipe(p)
        assert r.name and r.input.paths


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    data = recipe_dict(tmp_path, diarize={"backnd": "silero_vad"})
    with pytest.raises(RecipeError) as e:
        load_recipe(write_recipe(tmp_path, data))
    assert "unknown key 'diarize.backnd'" in str(e.value)
    assert "did you mean 'backend'" in str(e.value)
    assert "recipe.yaml" in str(e.value)


def test_unknown_top_level_section(tmp_path: Path) -> None:
    data = recipe_dict(tmp_path)
    data["shards"] = {"samples_per_shard": 3}
    with pytest.raises(RecipeError, match=r"unknown key 'shards' \(did you mean 'shard'\?\)"):
        load_recipe(write_recipe(tmp_path, data))


def test_bad_values_name_the_key(tmp_path: Path) -> None:
    data = recipe_dict(tmp_path, pairs={"splits": {"train": 0.9, "val": 0.2, "test": 0.1}})
    with pytest.raises(RecipeError, match=r"pairs.splits.*add up to 1"):
        load_recipe(write_recipe(tmp_path, data))
    data = recipe_dict(tmp_path, targets={"size": 500})
    with pytest.raises(RecipeError, match=r"targets.size.*multiple of 32"):
        load_recipe(write_recipe(tmp_path, data))
    data = recipe_dict(tmp_path, input={"label_regex": "spk\\d"})
    with pytest.raises(RecipeError, match=r"label_regex.*named group"):
        load_recipe(write_recipe(tmp_path, data))


def test_not_a_mapping_and_bad_yaml(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(RecipeError, match=r"r.yaml: a recipe is a YAML mapping"):
        load_recipe(p)
    p.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match=r"r.yaml: not valid YAML"):
        load_recipe(p)


def test_missing_input_path_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no such folder"
    p = write_recipe(tmp_path, recipe_dict(missing))
    with pytest.raises(RecipeError, match=f"path does not exist: {missing}"):
        load_recipe(p, check_inputs=True)
    assert main(["build", str(p), "--no-progress"]) == 2
    assert str(missing) in capsys.readouterr().err


def test_relative_paths_resolve_against_the_recipe_folder(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    p = write_recipe(tmp_path / "recipes", {**recipe_dict(Path("../videos")), "output": {"dir": "../out"}})
    r = load_recipe(p, check_inputs=True)
    assert r.resolve(r.input.paths[0]) == tmp_path / "videos"
    assert r.manifests_dir == tmp_path / "out" / "manifests"


def test_production_recipe_is_refused_saying_what_is_missing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    data = yaml.safe_load((ROOT / "recipes" / "talking_heads.yaml").read_text())
    (tmp_path / "videos").mkdir()
    data["input"]["paths"] = [str(tmp_path / "videos")]
    data["output"]["dir"] = str(tmp_path / "out")
    p = write_recipe(tmp_path, data)
    assert main(["build", str(p), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "'pyannote/speaker-diarization-community-1' from the Hugging Face hub needs a token in $HF_TOKEN" in err
    assert "encode.backend ltx: the LTX checkpoint /models/ltx-2.3/ltx-2.3-22b.safetensors does not exist" in err
    assert not (tmp_path / "out" / "manifests" / "videos.parquet").exists(), "refused builds write nothing"


def test_no_shipped_recipe_selects_an_option_unfit_for_real_footage() -> None:
    """Every recipe in recipes/ loads and makes no choice the recipe reference marks as unfit for real footage;
    each such mark is in the reference (the field's description) and is caught when chosen."""
    from ltxa_data.backends import UNFIT_FOR_REAL_FOOTAGE, unfit_choices
    from ltxa_data.recipe import Recipe, load_recipe

    shipped = sorted((ROOT / "recipes").glob("*.yaml"))
    assert {p.name for p in shipped} >= {"demo.yaml", "talking_heads.yaml"}
    for path in shipped:
        assert unfit_choices(load_recipe(path)) == [], path.name
    production = load_recipe(ROOT / "recipes" / "talking_heads.yaml")
    assert production.targets.face.detector == "dlib_hog"
    for (field, value) in UNFIT_FOR_REAL_FOOTAGE:
        *path, name = field.split(".")
        model: type = Recipe
        for part in path:
            model = model.model_fields[part].annotation  # type: ignore[assignment]
        assert f"`{value}`" in model.model_fields[name].description and "unfit for real footage" in \
            model.model_fields[name].description, field
        chosen = production.model_copy(deep=True)
        target = chosen
        for part in path:
            target = getattr(target, part)
        object.__setattr__(target, name, value)
        assert [c.split(":")[0] for c in unfit_choices(chosen)] == [field]


def test_the_reference_documents_every_recipe_key_and_column_and_the_readme_the_two_commands() -> None:
    from ltxa_data.reporting.docs import recipe_reference, render, schema_reference

    reference = (ROOT / "docs" / "reference.md").read_text()
    assert render(reference) == reference, \
        "docs/reference.md is stale: run `python -m ltxa_data.reporting.docs docs/reference.md`"
    assert recipe_reference() in reference and schema_reference().rstrip() in reference
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme and "ltxa-data build" in readme
    assert "docs/reference.md" in readme


def test_unknown_stage_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "videos").mkdir()
    p = write_recipe(tmp_path, recipe_dict(tmp_path / "videos"))
    assert main(["build", str(p), "--only", "scanner", "--no-progress"]) == 2
    assert "no stage 'scanner' (stages: scan, scenes, fingerprints," in capsys.readouterr().err
    assert main(["build", str(p), "--only", "turns", "--no-progress"]) == 2
    assert "'turns' is a table; the stage that writes it is 'diarize'" in capsys.readouterr().err
