"""The swap eval: its export (what a generator needs), and the scorer proved on simulated generators built from the
test build's own clips (an oracle, a reference-blind one, a half-right one), bad generated files included.

ltx-trainer's validation section is checked against its config models, re-declared here from the public
Lightricks/LTX-2 repository (packages/ltx-trainer/src/ltx_trainer/config.py, commit 400fd31):
`ConfigBaseModel` (l. 27-28, extra="forbid"), `ReferenceConditionConfig` (l. 112-126), `ValidationSample`
(l. 180-194: prompt, conditions, video_dims, seed), `ValidationConfig` (l. 435-570: samples, video_dims, frame_rate,
generate_audio); validation_runner.py l. 287 names sample i's file `step_{step:06d}_{i + 1}.mp4`.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import yaml
from pydantic import BaseModel, ConfigDict

from ltxa_data.cli import main
from ltxa_data.errors import SystemicError
from ltxa_data.evaluation.cases import eval_plan, export_swap_eval, trainer_sample_name
from ltxa_data.evaluation.evaluate import evaluate
from ltxa_data.evaluation.score import AWAY, BLIND, FOLLOWS, MOVES, PROVISIONAL, TOO_FEW, case_rows, summarize
from ltxa_data.evaluation.simulate import simulate
from ltxa_data.media import encode_video, encode_wav, mux_target, read_audio
from ltxa_data.recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, Recipe
from ltxa_data.reporting.report import write_report
from ltxa_data.shard_format import iter_shard

from .conftest import copy_build


class _Upstream(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReferenceCondition(_Upstream):
    type: Literal["reference"] = "reference"
    video: str | None = None
    audio: str | None = None
    downscale_factor: int = 1
    temporal_scale_factor: int = 1
    include_in_output: bool = False


class ValidationSample(_Upstream):
    prompt: str
    conditions: list[ReferenceCondition] = []
    video_dims: tuple[int, int, int] | None = None
    seed: int | None = None


class ValidationConfig(_Upstream):
    samples: list[ValidationSample] = []
    video_dims: tuple[int, int, int] = (960, 544, 89)
    frame_rate: float = 24.0
    generate_audio: bool = True


@pytest.fixture(scope="module")
def evaluated(built: Recipe, tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, Path]:
    """A copy of the test build with the three simulated generators' outputs and their evals."""
    root = tmp_path_factory.mktemp("eval")
    recipe = copy_build(built, root, report={"enabled": True})
    for kind in ("oracle", "blind", "half"):
        simulate(recipe, kind, root / "generated" / kind)
        evaluate(recipe, root / "generated" / kind, progress=False)
    return recipe, root


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_has_every_run_a_generator_needs(built: Recipe, tmp_path: Path) -> None:
    out = tmp_path / "cases"
    (out / "references").mkdir(parents=True)
    (out / "references" / "stale.wav").write_bytes(b"old")
    plan = export_swap_eval(built, out)
    runs, cases = _jsonl(out / "runs.jsonl"), _jsonl(out / "cases.jsonl")
    table = pl.read_parquet(built.manifests_dir / "swap_eval.parquet").filter(pl.col("status") == "ok")
    assert len(cases) == table.height > 0 and runs == plan.runs
    by_id = {r["run_id"]: r for r in runs}
    assert len(by_id) == len(runs)
    for c in cases:
        a, b = by_id[c["run_a"]], by_id[c["run_b"]]
        if c["kind"] == "swap":  # only the reference changes, to another identity's
            assert a["seed"] == b["seed"] and a["reference_id"] != b["reference_id"]
            assert a["reference_identity"] == c["identity_a"] != c["identity_b"] == b["reference_identity"]
            assert isinstance(c["b_seen_in_training"], bool)
        else:  # only the seed changes
            assert a["reference_id"] == b["reference_id"] and a["seed"] != b["seed"]
        assert a["caption"] == b["caption"] == c["caption"] == built.export.caption
    # A target's A run serves its swaps and its seed control: fewer generations than two per case.
    assert len(runs) < 2 * len(cases)
    assert not (out / "references" / "stale.wav").exists()
    wavs = {f.stem: f.read_bytes() for f in (out / "references").glob("*.wav")}
    assert set(wavs) == {r["reference_id"] for r in runs}
    for data in wavs.values():
        audio, sr = sf.read(io.BytesIO(data), always_2d=True)
        assert sr == AUDIO_SAMPLE_RATE and audio.shape == (round(3.5 * AUDIO_SAMPLE_RATE), 2)
    # The references the shards carry are byte for byte the exported ones.
    compared = 0
    for tar in sorted(built.shards_dir.glob("*/*.tar")):
        for _key, _, files in iter_shard(tar):
            members = {ext: data for ext, data in files.values()}
            meta = json.loads(members["json"])
            for i, ref in enumerate(meta["references"]):
                if ref["reference_id"] in wavs:
                    assert members[f"ref{i}.wav"] == wavs[ref["reference_id"]], ref["reference_id"]
                    compared += 1
    assert compared > 0
    # ltx-trainer's validation section: one sample per run, in runs.jsonl's order, 121 frames at 25 fps.
    config = ValidationConfig(**yaml.safe_load((out / "validation.yaml").read_text())["validation"])
    assert [s.seed for s in config.samples] == [r["seed"] for r in runs]
    assert [Path(s.conditions[0].audio) for s in config.samples] == [
        (out / r["reference_audio"]).resolve() for r in runs]
    assert all(Path(s.conditions[0].audio).is_file() and s.prompt == built.export.caption for s in config.samples)
    size = built.targets.size
    assert config.video_dims == (size, size, TARGET_FRAMES) and config.frame_rate == TARGET_FPS
    assert TARGET_FRAMES % 8 == 1 and size % 32 == 0 and config.generate_audio


def _summary(recipe: Recipe, name: str) -> pl.DataFrame:
    return pl.read_parquet(recipe.output_dir / "evals" / name / "summary.parquet")


def _overall(summary: pl.DataFrame, measure: str) -> dict:
    return summary.filter((pl.col("measure") == measure) & (pl.col("group") == "all")).row(0, named=True)


def test_the_scorer_tells_oracle_blind_and_half_right_generators_apart(evaluated: tuple[Recipe, Path]) -> None:
    recipe, _ = evaluated
    for measure in ("voice", "face"):
        oracle, blind, half = (_overall(_summary(recipe, k), measure) for k in ("oracle", "blind", "half"))
        assert oracle["scored"] == blind["scored"] == half["scored"] == oracle["cases"] >= 4, measure
        # The oracle follows the reference, far beyond the seed floor, in every case.
        assert oracle["verdict"].startswith(FOLLOWS) and oracle["accuracy"] == 1.0 and oracle["beyond_floor"] == 1.0
        assert oracle["difference_lo"] > 0 and oracle["effect_lo"] > 3 * max(abs(oracle["seed_lo"]),
                                                                             abs(oracle["seed_hi"]))
        # The blind generator's outputs do not move with the reference at all.
        assert blind["verdict"].startswith(BLIND) and blind["effect"] == 0 and blind["accuracy"] == 0.5
        assert blind["beyond_floor"] == 0 and blind["change_ratio"] == 0
        # Half-right lands in between.
        assert blind["effect"] < half["effect"] < oracle["effect"], measure
        assert 0.5 < half["accuracy"] < 1.0 and 0 < half["beyond_floor"] < 1
    cases = pl.read_parquet(recipe.output_dir / "evals" / "blind" / "eval.parquet")
    assert cases.height == 2 * len(eval_plan(recipe).cases) and set(cases["status"]) == {"ok"}
    swaps = cases.filter(pl.col("kind") == "swap")
    assert swaps["seed_effect"].null_count() == 0 and (swaps["change"] == 0).all()


def test_effects_point_toward_the_right_people_for_both_measures() -> None:
    """Hand-made outputs: voices as unit vectors (cosine), faces as points (distance: lower is closer)."""
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    runs = {"A": {"status": "ok", "voice_embedding": a, "face_descriptor": a},
            "B": {"status": "ok", "voice_embedding": b, "face_descriptor": b},
            "S": {"status": "ok", "voice_embedding": a, "face_descriptor": a}}
    cases = [dict(case_id="t-swap", kind="swap", split="val", target_id="t", identity_a="ia", identity_b="ib",
                  b_seen_in_training=False, run_a="A", run_b="B"),
             dict(case_id="t-seed", kind="seed", split="val", target_id="t", identity_a="ia", identity_b="ia",
                  b_seen_in_training=None, run_a="A", run_b="S")]
    refs = {m: {"ia": a, "ib": b} for m in ("voice", "face")}
    rows = {(r["case_id"], r["measure"]): r for r in case_rows(cases, runs, refs)}
    voice, face = rows["t-swap", "voice"], rows["t-swap", "face"]
    assert voice["effect"] == pytest.approx(2.0) and voice["seed_effect"] == pytest.approx(0.0)
    assert face["effect"] == pytest.approx(2 * np.sqrt(2)) and face["b_to_b"] == 0 and face["a_to_b"] == pytest.approx(
        np.sqrt(2))
    assert rows["t-seed", "face"]["change"] == 0 and rows["t-seed", "voice"]["effect"] is None
    # Swapped the wrong way round, the effect is negative.
    wrong = case_rows(cases, {**runs, "A": runs["B"], "B": runs["A"]}, refs)
    assert all(r["effect"] < 0 for r in wrong if r["kind"] == "swap")
    # Too few cases give no verdict.
    assert set(summarize(pl.DataFrame(case_rows(cases, runs, refs)))["verdict"]) == {TOO_FEW}


def _swaps(effect: list[float], seed_effect: list[float], change: list[float], identities: int) -> pl.DataFrame:
    n = len(effect)
    return pl.DataFrame(dict(
        case_id=[f"c{i}" for i in range(n)], measure=["voice"] * n, kind=["swap"] * n, split=["test"] * n,
        target_id=[f"t{i}" for i in range(n)], identity_a=[f"i{i % identities}" for i in range(n)],
        b_in_train=[i % 2 == 0 for i in range(n)], effect=effect, seed_effect=seed_effect, change=change,
        seed_change=[0.1] * n, status=["ok"] * n))


def test_verdicts_from_effects_against_the_floor() -> None:
    rng = np.random.default_rng(0)
    noise = (rng.normal(0, 0.02, 12)).tolist()
    verdict = {}
    for name, effect, change in (("toward", [0.3 + x for x in noise], [0.5] * 12),
                                 ("away", [-0.3 + x for x in noise], [0.5] * 12),
                                 ("moves", [x * 10 for x in noise], [0.5] * 12),
                                 ("blind", [0.0] * 12, [0.0] * 12)):
        summary = summarize(_swaps(effect, noise[::-1], change, identities=6))
        verdict[name] = summary.filter((pl.col("measure") == "voice") & (pl.col("group") == "all"))["verdict"].item()
    assert verdict == {"toward": FOLLOWS, "away": AWAY, "moves": MOVES, "blind": BLIND}
    # Intervals over targets when identities are few: a provisional verdict; under 5 targets, none.
    few = summarize(_swaps([0.3 + x for x in noise], noise, [0.5] * 12, identities=2))
    assert few.filter(pl.col("group") == "all")["verdict"][0] == FOLLOWS + PROVISIONAL
    assert summarize(_swaps([0.3] * 4, [0.0] * 4, [0.5] * 4, identities=4))["verdict"][0] == TOO_FEW
    nan = summarize(_swaps([float("nan")] + [0.3] * 4, [0.0] * 5, [0.5] * 5, identities=5))
    assert nan["cases"][0] == 5 and nan["scored"][0] == 4 and nan["verdict"][0] == TOO_FEW


def test_bad_generated_files_are_rows_with_their_reasons(evaluated: tuple[Recipe, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    recipe, root = evaluated
    plan = eval_plan(recipe)
    folder = tmp_path / "bad"
    folder.mkdir()
    one_per_target = list({r["target_id"]: r["run_id"] for r in plan.runs}.values())
    assert len(one_per_target) >= 4
    assert len(one_per_target) >= 5
    missing, garbage, silent, faceless, audio_only = one_per_target[:5]  # no case compares two of them
    targets = {r["target_id"] for r in plan.runs if r["run_id"] in one_per_target[:5]}
    present = [r for r in plan.runs if r["target_id"] in targets]  # the other runs are missing: rows too
    for r in present:
        shutil.copyfile(root / "generated" / "oracle" / r["output"], folder / r["output"])
    (folder / f"{missing}.mp4").unlink()
    (folder / f"{garbage}.mp4").write_bytes(b"\x00not a video" * 100)
    video = (folder / f"{silent}.mp4").read_bytes()
    mux_target(_video_only(folder / f"{silent}.mp4"), encode_wav(np.zeros((2, 77440), np.float32), AUDIO_SAMPLE_RATE),
               folder / f"{silent}.mp4")
    voice = encode_wav(read_audio(folder / f"{faceless}.mp4", AUDIO_SAMPLE_RATE, channels=2), AUDIO_SAMPLE_RATE)
    blank = encode_video(np.full((TARGET_FRAMES, 64, 64, 3), 90, np.uint8), TARGET_FPS)
    mux_target(blank, voice, folder / f"{faceless}.mp4")
    (folder / f"{audio_only}.mp4").unlink()  # another container, audio only: a wav named .mkv
    (folder / f"{audio_only}.mkv").write_bytes(voice)
    assert video
    assert main(["eval", str(root / "recipe.yaml"), "--generated", str(folder), "--no-report", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"runs: {len(present) - 2} of {len(plan.runs)} generated files read" in printed
    runs = pl.read_parquet(recipe.output_dir / "evals" / "bad" / "eval_runs.parquet")
    why = {r["run_id"]: r for r in runs.iter_rows(named=True)}
    assert why[missing]["status"] == "failed" and f"no generated file {folder / missing}.mp4" in why[missing]["error"]
    assert why[garbage]["status"] == "failed" and why[garbage]["error"].startswith("unreadable")
    assert why[silent]["status"] == "ok" and why[silent]["voice_error"].startswith("silent")
    assert why[silent]["face_descriptor"] is not None
    assert why[faceless]["status"] == "ok" and why[faceless]["face_error"].startswith("no face")
    assert why[faceless]["voice_embedding"] is not None
    assert why[audio_only]["file"] == str(folder / f"{audio_only}.mkv")
    assert why[audio_only]["voice_embedding"] is not None and why[audio_only]["face_error"] == "no video stream"
    cases = pl.read_parquet(recipe.output_dir / "evals" / "bad" / "eval.parquet")
    for run, measure, status in ((missing, "voice", "failed"), (garbage, "face", "failed"),
                                 (silent, "voice", "skipped"), (faceless, "face", "skipped"),
                                 (audio_only, "face", "skipped")):
        hit = cases.filter(((pl.col("run_a") == run) | (pl.col("run_b") == run)) & (pl.col("measure") == measure))
        assert hit.height and set(hit["status"]) == {status} and hit["error"].str.contains(run).all(), (run, measure)
    assert f"{measure}: " in printed and "of" in printed
    scored = cases.filter(pl.col("status") == "ok").height
    assert 0 < scored < cases.height


def _video_only(path: Path) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(str(path)) as src, av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return buf.getvalue()


def test_trainer_validation_samples_are_read_by_step(evaluated: tuple[Recipe, Path], tmp_path: Path) -> None:
    recipe, root = evaluated
    samples = tmp_path / "samples"
    samples.mkdir()
    runs = eval_plan(recipe).runs
    for i in (0, 2, len(runs) - 1):  # sample i of validation.yaml is run i of runs.jsonl
        shutil.copyfile(root / "generated" / "blind" / runs[i]["output"], samples / trainer_sample_name(1500, i))
    result = evaluate(recipe, samples, name="trainer-1500", trainer_step=1500, progress=False)
    by_name = pl.read_parquet(recipe.output_dir / "evals" / "blind" / "eval_runs.parquet").drop("file")
    read = result.runs.filter(pl.col("status") == "ok")
    assert read["run_id"].to_list() == [runs[i]["run_id"] for i in (0, 2, len(runs) - 1)]
    assert read.drop("file").equals(by_name.filter(pl.col("run_id").is_in(read["run_id"].to_list())))
    assert result.runs.filter(pl.col("run_id") == runs[1]["run_id"])["error"].item() == (
        f"no generated file {samples / trainer_sample_name(1500, 1)}")
    assert result.folder.name == "trainer-1500" and "holds 3 samples of step 1500" in result.warnings[0]
    with pytest.raises(SystemicError, match="plain folder name"):
        evaluate(recipe, samples, name="../elsewhere", progress=False)
    with pytest.raises(SystemicError, match="not a folder"):
        evaluate(recipe, tmp_path / "nowhere", progress=False)


def test_the_report_shows_each_eval(evaluated: tuple[Recipe, Path]) -> None:
    recipe, _ = evaluated
    index = write_report(recipe)
    page = index.read_text()
    for name in ("oracle", "blind", "half"):
        assert f'id="eval-{name}"' in page and (index.parent / "plots" / f"eval-{name}.png").is_file()
    assert page.count(FOLLOWS) >= 2 and BLIND in page
    shown = list((index.parent / "media" / "eval" / "oracle").iterdir())
    assert any(p.suffix == ".mp4" for p in shown) and any(p.suffix == ".wav" for p in shown)
    # The eval keeps its worst cases' files, so the report plays them after the generated folder is gone.
    kept = {p.name for p in (recipe.output_dir / "evals" / "oracle" / "media").iterdir()}
    assert {p.name for p in shown} <= kept
    sources = re.findall(r'src="(media/eval/[^"]+)"', page)
    assert sources and all((index.parent / src).is_file() for src in sources)
    assert "the generated file is gone" not in page
