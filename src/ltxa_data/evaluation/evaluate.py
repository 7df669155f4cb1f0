"""`ltxa-data eval`: measure the generated file of every run, score the cases, and keep the results.

    output.dir/evals/<name>/eval_runs.parquet   one row per run: the file, its voice and face (schemas.EVAL_RUNS)
    output.dir/evals/<name>/eval.parquet        one row per case and measure (schemas.EVAL)
    output.dir/evals/<name>/summary.parquet     per measure and group: effect, seed floor, intervals, verdict
    output.dir/evals/<name>/media/              the worst cases' generated files and references, for the report
    output.dir/evals/<name>/eval.json           the generated folder, counts, seconds per run (written last)

A missing, unreadable, silent or faceless file is a row with its reason, never a stop.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from ..errors import SystemicError
from ..media import MediaError, encode_wav
from ..recipe import AUDIO_SAMPLE_RATE, Recipe
from ..schemas import to_table
from ..stages.shard import reference_audio
from ..storage import write_bytes_atomic, write_json_atomic, write_table_atomic
from .cases import EVALS_DIR, eval_plan, generated_file, reference_sources, trainer_sample_name
from .measure import RunMeasurer, identity_faces, identity_voices
from .score import case_rows, interval_text, summarize, worst_cases


@dataclass(frozen=True)
class EvalResult:
    folder: Path
    runs: pl.DataFrame
    cases: pl.DataFrame
    summary: pl.DataFrame
    seconds_per_run: float
    warnings: list[str]


def eval_dir(recipe: Recipe, name: str) -> Path:
    """Where the results of the eval called `name` live."""
    return recipe.output_dir / EVALS_DIR / name


def evaluate(recipe: Recipe, generated: Path, name: str | None = None, trainer_step: int | None = None,
             progress: bool = True) -> EvalResult:
    """Score the files in `generated` (one per run, see `cases.generated_file`) and write the results. The files
    of the worst cases (`score.worst_cases`) and their references are copied into the eval's `media/`, so the
    report can play them after the generated folder is gone."""
    generated = generated.resolve()
    if not generated.is_dir():
        raise SystemicError(f"eval: {generated} is not a folder of generated files")
    name = name or (f"step{trainer_step:06d}" if trainer_step is not None else generated.name)
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise SystemicError(f"eval: {name!r} cannot name an eval: give --name a plain folder name")
    plan = eval_plan(recipe)
    warnings = _trainer_warnings(generated, trainer_step, len(plan.runs))
    measurer = RunMeasurer(recipe)
    rows = []
    t0 = time.perf_counter()
    for i, run in enumerate(plan.runs):
        rows.append(_run_row(measurer, generated, run, i, trainer_step))
        if progress:
            print(f"\reval: {i + 1}/{len(plan.runs)} runs measured", end="", flush=True)
    if progress:
        print()
    seconds = (time.perf_counter() - t0) / max(len(plan.runs), 1)
    runs = frame(to_table("eval_runs", rows))
    refs = {"voice": identity_voices(recipe), "face": identity_faces(recipe)}
    cases = frame(to_table("eval", case_rows(plan.cases, {r["run_id"]: r for r in runs.iter_rows(named=True)}, refs)))
    summary = summarize(cases)
    folder = eval_dir(recipe, name)
    (folder / "eval.json").unlink(missing_ok=True)  # written last: its presence marks a finished eval
    write_table_atomic(folder / "eval_runs.parquet", runs.to_arrow())
    write_table_atomic(folder / "eval.parquet", cases.to_arrow())
    write_table_atomic(folder / "summary.parquet", summary.to_arrow())
    _keep_worst_media(recipe, folder / "media", cases, runs)
    write_json_atomic(folder / "eval.json", {
        "build": recipe.name, "name": name, "generated": str(generated), "trainer_step": trainer_step,
        "runs": len(plan.runs), "runs_measured": int((runs["status"] == "ok").sum()), "cases": len(plan.cases),
        "seconds_per_run": round(seconds, 3), "warnings": warnings})
    return EvalResult(folder, runs, cases, summary, seconds, warnings)


def frame(table: pa.Table) -> pl.DataFrame:
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    return df


def _run_row(measurer: RunMeasurer, generated: Path, run: dict, index: int, trainer_step: int | None) -> dict:
    """One run's `eval_runs` row: its file measured, or why it was not."""
    path = generated_file(generated, run, index, trainer_step)
    row = dict(run_id=run["run_id"], file=str(path) if path else None, reference_id=run["reference_id"],
               reference_identity=run["reference_identity"], seed=run["seed"], duration_s=None,
               voice_embedding=None, voice_error=None, face_ratio=None, face_descriptor=None, face_error=None,
               status="ok", error=None)
    if path is None:
        expected = trainer_sample_name(trainer_step, index) if trainer_step is not None else run["output"]
        return {**row, "status": "failed", "error": f"no generated file {generated / expected}"}
    try:
        row.update(measurer.measure(path))
    except (SystemicError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # a generated file the decoder or a model cannot take is that run's row
        return {**row, "status": "failed", "error": f"unreadable: {type(e).__name__}: {e}"}
    if row["voice_error"] and row["face_error"]:
        row.update(status="skipped", error=f"no voice ({row['voice_error']}) and no face ({row['face_error']})")
    return row


def _trainer_warnings(generated: Path, trainer_step: int | None, runs: int) -> list[str]:
    """With --trainer-step, whether the folder holds as many samples of that step as there are runs: sample i is
    run i only when the config's `validation.samples` are exactly validation.yaml's, in its order."""
    if trainer_step is None:
        return []
    found = len(list(generated.glob(f"step_{trainer_step:06d}_*.*")))
    if found == runs:
        return []
    return [f"{generated} holds {found} samples of step {trainer_step}, the export has {runs} runs: sample i is "
            "run i only when validation.samples is exactly the export's validation.yaml (no other samples before "
            "or among them)"]


def _keep_worst_media(recipe: Recipe, media: Path, cases: pl.DataFrame, runs: pl.DataFrame) -> None:
    """Copy the worst cases' generated files and their references' wavs (as the shards carry them) into `media`."""
    shutil.rmtree(media, ignore_errors=True)
    worst = worst_cases(cases)
    wanted = sorted({r for c in worst.iter_rows(named=True) for r in (c["run_a"], c["run_b"])})
    if not wanted:
        return
    media.mkdir(parents=True)
    chosen = runs.filter(pl.col("run_id").is_in(wanted))
    for r in chosen.iter_rows(named=True):
        if r["file"] and Path(r["file"]).is_file():
            shutil.copyfile(r["file"], media / f"{r['run_id']}{Path(r['file']).suffix}")
    for ref in reference_sources(recipe, chosen["reference_id"].to_list()).iter_rows(named=True):
        try:
            audio, _ = reference_audio(ref)
        except (OSError, MediaError):  # the source moved since the build: the report shows the video alone
            continue
        write_bytes_atomic(media / f"{ref['reference_id']}.wav", encode_wav(audio, AUDIO_SAMPLE_RATE))


def format_summary(result: EvalResult) -> str:
    """The summary as the command prints it."""
    runs, cases = result.runs, result.cases
    ok_runs = int((runs["status"] == "ok").sum())
    lines = [f"runs: {ok_runs} of {runs.height} generated files read ({result.seconds_per_run:.2f} s per run); a "
             f"voice measured in {runs['voice_embedding'].is_not_null().sum()}, a single face visible in "
             f"{runs['face_descriptor'].is_not_null().sum()}"]
    for measure in ("voice", "face"):
        mine = cases.filter(pl.col("measure") == measure)
        n_ok = int((mine["status"] == "ok").sum())
        lines.append(f"{measure}: {n_ok} of {mine.height} cases scored")
    lines.append(f"{'measure':<7} {'group':<14} {'cases':>5} {'effect [95% CI]':>24} {'seed floor [95% CI]':>24} "
                 f"{'accuracy':>8}  verdict")
    for r in result.summary.iter_rows(named=True):
        group = "all" if r["group"] == "all" else f"{r['group']}={r['value']}"
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
        effect = interval_text(r["effect"], r["effect_lo"], r["effect_hi"])
        floor = interval_text(r["seed_effect"], r["seed_lo"], r["seed_hi"])
        lines.append(f"{r['measure']:<7} {group:<14} {r['scored']:>5} {effect:>24} {floor:>24} {acc:>8}  "
                     f"{r['verdict']}")
    failed = runs.filter(pl.col("status") != "ok")
    for r in failed.head(5).iter_rows(named=True):
        lines.append(f"run {r['run_id']}: {r['error']}")
    if failed.height > 5:
        lines.append(f"... and {failed.height - 5} more runs not read (eval_runs.parquet has them all)")
    lines += [f"warning: {w}" for w in result.warnings]
    lines.append(f"results: {result.folder}")
    return "\n".join(lines)
