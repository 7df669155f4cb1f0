"""`ltxa-data eval`: measure the generated file of every run, score the cases, and keep the results.

    output.dir/evals/<name>/eval_runs.parquet   one row per run: the file, its voice and face (schemas.EVAL_RUNS)
    output.dir/evals/<name>/eval.parquet        one row per case and measure (schemas.EVAL)
    output.dir/evals/<name>/summary.parquet     per measure and group: effect, seed floor, intervals, verdict
    output.dir/evals/<name>/eval.json           the generated folder, counts, seconds per run

A missing, unreadable, silent or faceless file is a row with its reason, never a stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..errors import SystemicError
from ..recipe import Recipe
from ..schemas import to_table
from ..storage import write_json_atomic, write_table_atomic
from .cases import EVALS_DIR, eval_plan, generated_file
from .measure import RunMeasurer, identity_faces, identity_voices
from .score import case_rows, summarize


@dataclass(frozen=True)
class EvalResult:
    folder: Path
    runs: pl.DataFrame
    cases: pl.DataFrame
    summary: pl.DataFrame
    seconds_per_run: float


def eval_dir(recipe: Recipe, name: str) -> Path:
    """Where the results of the eval called `name` live."""
    return recipe.output_dir / EVALS_DIR / name


def evaluate(recipe: Recipe, generated: Path, name: str | None = None, trainer_step: int | None = None,
             progress: bool = True) -> EvalResult:
    """Score the files in `generated` (one per run, see `cases.generated_file`) and write the results."""
    if not generated.is_dir():
        raise SystemicError(f"eval: {generated} is not a folder of generated files")
    plan = eval_plan(recipe)
    name = name or generated.resolve().name
    measurer = RunMeasurer(recipe)
    rows = []
    t0 = time.perf_counter()
    for i, run in enumerate(plan.runs):
        path = generated_file(generated, run, i, trainer_step)
        row = dict(run_id=run["run_id"], file=str(path) if path else None, reference_id=run["reference_id"],
                   reference_identity=run["reference_identity"], seed=run["seed"], duration_s=None,
                   voice_embedding=None, voice_error=None, face_ratio=None, face_descriptor=None, face_error=None,
                   status="ok", error=None)
        if path is None:
            expected = (f"step_{trainer_step:06d}_{i + 1}.mp4" if trainer_step is not None else
                        f"{run['run_id']}.mp4")
            row.update(status="failed", error=f"no generated file {generated / expected}")
        else:
            try:
                row.update(measurer.measure(path))
            except (SystemicError, MemoryError, KeyboardInterrupt):
                raise
            except Exception as e:  # a generated file the decoder or a model cannot take is that run's row
                row.update(status="failed", error=f"unreadable: {type(e).__name__}: {e}")
            if row["status"] == "ok" and row["voice_error"] and row["face_error"]:
                row.update(status="skipped", error=f"no voice ({row['voice_error']}) and no face "
                                                   f"({row['face_error']})")
        rows.append(row)
        if progress:
            print(f"\reval: {i + 1}/{len(plan.runs)} runs measured", end="", flush=True)
    if progress:
        print()
    seconds = (time.perf_counter() - t0) / max(len(plan.runs), 1)
    runs = to_table("eval_runs", rows)
    by_id = {r["run_id"]: r for r in runs.to_pylist()}
    refs = {"voice": identity_voices(recipe), "face": identity_faces(recipe)}
    cases = to_table("eval", case_rows(plan.cases, by_id, refs))
    summary = summarize(pl.from_arrow(cases))  # type: ignore[arg-type]
    folder = eval_dir(recipe, name)
    write_table_atomic(folder / "eval_runs.parquet", runs)
    write_table_atomic(folder / "eval.parquet", cases)
    write_table_atomic(folder / "summary.parquet", summary.to_arrow())
    runs_df = pl.from_arrow(runs)
    assert isinstance(runs_df, pl.DataFrame)
    write_json_atomic(folder / "eval.json", {
        "build": recipe.name, "name": name, "generated": str(generated.resolve()), "trainer_step": trainer_step,
        "runs": len(plan.runs), "runs_measured": int((runs_df["status"] == "ok").sum()), "cases": len(plan.cases),
        "seconds_per_run": round(seconds, 3)})
    cases_df = pl.from_arrow(cases)
    assert isinstance(cases_df, pl.DataFrame)
    return EvalResult(folder, runs_df, cases_df, summary, seconds)


def format_summary(result: EvalResult) -> str:
    """The summary as the command prints it."""
    runs, cases = result.runs, result.cases
    ok_runs = int((runs["status"] == "ok").sum())
    lines = [f"runs: {ok_runs} of {runs.height} generated files read ({result.seconds_per_run:.2f} s per run)"]
    for measure in ("voice", "face"):
        mine = cases.filter(pl.col("measure") == measure)
        n_ok = int((mine["status"] == "ok").sum())
        lines.append(f"{measure}: {n_ok} of {mine.height} cases scored")
    lines.append(f"{'measure':<7} {'group':<14} {'cases':>5} {'effect [95% CI]':>24} {'seed floor [95% CI]':>24} "
                 f"{'accuracy':>8}  verdict")
    for r in result.summary.iter_rows(named=True):
        group = "all" if r["group"] == "all" else f"{r['group']}={r['value']}"

        def ci(m: float | None, lo: float | None, hi: float | None) -> str:
            return "-" if m is None else f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
        effect = ci(r["effect"], r["effect_lo"], r["effect_hi"])
        floor = ci(r["seed_effect"], r["seed_lo"], r["seed_hi"])
        lines.append(f"{r['measure']:<7} {group:<14} {r['scored']:>5} {effect:>24} {floor:>24} {acc:>8}  "
                     f"{r['verdict']}")
    failed = runs.filter(pl.col("status") != "ok")
    for r in failed.head(5).iter_rows(named=True):
        lines.append(f"run {r['run_id']}: {r['error']}")
    if failed.height > 5:
        lines.append(f"... and {failed.height - 5} more runs not read (eval_runs.parquet has them all)")
    lines.append(f"results: {result.folder}")
    return "\n".join(lines)
