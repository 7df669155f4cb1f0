"""The swap-eval cases as generation runs: what `ltxa-data export swap-eval` writes and `ltxa-data eval` reads.

A case compares two generations that differ in one thing: a `swap` case the reference (A, the target's own
identity's, against B, another identity's) at one seed, a `seed` case the seed at reference A. A generator
sees only the caption, the seed and the reference, so the run (reference A, seed A) serves all of a target's
cases: four runs make its three cases (two swaps and the seed control), a third fewer than two per case.

    OUT/runs.jsonl       one line per generation: run_id, output, caption, seed, reference_audio, ...
    OUT/cases.jsonl      one line per case: case_id, kind, split, seeds, identities, b_seen_in_training, runs
    OUT/references/<reference_id>.wav   each reference as the shards carry it (16 kHz stereo, its planned gain)
    OUT/validation.yaml  ltx-trainer's `validation:` section that generates every run, in runs.jsonl's order
    OUT/export.json      the build, the counts, and how the trainer's sample files map to runs
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import yaml

from ..errors import SystemicError
from ..media import encode_wav
from ..recipe import AUDIO_SAMPLE_RATE, TARGET_FPS, TARGET_FRAMES, Recipe
from ..stages.shard import reference_audio
from ..storage import read_frame, table_path, write_bytes_atomic, write_json_atomic

RUNS_FILE, CASES_FILE, VALIDATION_FILE = "runs.jsonl", "cases.jsonl", "validation.yaml"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")
EVALS_DIR = "evals"
"""Under output.dir: one folder per eval (`ltxa-data eval --name`)."""


@dataclass(frozen=True)
class EvalPlan:
    """The runs to generate (in order) and the cases that compare them."""

    runs: list[dict]
    cases: list[dict]


def trainer_sample_name(step: int, index: int) -> str:
    """The file ltx-trainer's validation writes for sample `index` (0-based) at `step`."""
    return f"step_{step:06d}_{index + 1}.mp4"


def eval_plan(recipe: Recipe) -> EvalPlan:
    """The build's swap-eval cases (`swap_eval` table) as runs and cases. Run ids name the target and the
    role: `<target>-A` (reference A, seed A), `<target>-A-seed2` (reference A, the seed control's second
    seed), `<target>-B-heldout` / `<target>-B-train` (reference B, seed A)."""
    m = recipe.manifests_dir
    if not table_path(m, "swap_eval").exists():
        raise SystemicError(f"build {recipe.name!r} has no swap_eval table in {m}: run `ltxa-data build` first")
    cases = read_frame(m, "swap_eval", ok_only=True).sort("case_id")
    if cases.height == 0:
        raise SystemicError(f"build {recipe.name!r} has no swap-eval cases (swap_eval holds none that is ok: it "
                            "needs held-out targets with references, in val or test)")
    identity_of = dict(read_frame(m, "references", ok_only=True).select("reference_id", "identity_id").iter_rows())
    runs: dict[str, dict] = {}

    def run(run_id: str, case: dict, reference_id: str, seed: int) -> str:
        new = dict(run_id=run_id, output=f"{run_id}.mp4", caption=recipe.export.caption, seed=seed,
                   reference_audio=f"references/{reference_id}.wav", reference_id=reference_id,
                   reference_identity=identity_of.get(reference_id), target_id=case["target_id"],
                   split=case["split"], width=recipe.targets.size, height=recipe.targets.size,
                   frames=TARGET_FRAMES, fps=TARGET_FPS)
        if runs.setdefault(run_id, new) != new:
            raise SystemicError(f"swap_eval: run {run_id} is asked for with two different references or seeds")
        return run_id

    out = []
    for c in cases.iter_rows(named=True):
        t = c["target_id"]
        run_a = run(f"{t}-A", c, c["reference_a_id"], c["seed_a"])
        if c["kind"] == "seed":
            run_b = run(f"{t}-A-seed2", c, c["reference_a_id"], c["seed_b"])
        else:
            run_b = run(f"{t}-B-{'train' if c['b_in_train'] else 'heldout'}", c, c["reference_b_id"], c["seed_b"])
        out.append(dict(case_id=c["case_id"], kind=c["kind"], split=c["split"], target_id=t,
                        caption=recipe.export.caption, identity_a=c["identity_id"], identity_b=c["identity_b"],
                        b_seen_in_training=c["b_in_train"] if c["kind"] == "swap" else None, seed_a=c["seed_a"],
                        seed_b=c["seed_b"], reference_a=c["reference_a_id"], reference_b=c["reference_b_id"],
                        run_a=run_a, run_b=run_b))
    return EvalPlan(sorted(runs.values(), key=lambda r: r["run_id"]), out)


def export_swap_eval(recipe: Recipe, out: Path) -> EvalPlan:
    """Write everything a generator needs for the build's swap eval (see the module docstring); returns the
    plan. Files are written atomically, and the wavs of an earlier export that this one does not name are
    removed, so a rerun repairs an interrupted export."""
    plan = eval_plan(recipe)
    wanted = sorted({r["reference_id"] for r in plan.runs})
    rows = reference_sources(recipe, wanted)
    if rows.height != len(wanted):
        missing = sorted(set(wanted) - set(rows["reference_id"]))
        raise SystemicError(f"export swap-eval: references {missing[:3]} of the cases are not in the references "
                            "table: run `ltxa-data build` again")
    for r in rows.iter_rows(named=True):
        audio, _ = reference_audio(r)
        write_bytes_atomic(out / "references" / f"{r['reference_id']}.wav", encode_wav(audio, AUDIO_SAMPLE_RATE))
    for f in (out / "references").glob("*.wav"):
        if f.stem not in wanted:
            f.unlink()
    write_bytes_atomic(out / RUNS_FILE, "".join(json.dumps(r) + "\n" for r in plan.runs).encode())
    write_bytes_atomic(out / CASES_FILE, "".join(json.dumps(c) + "\n" for c in plan.cases).encode())
    write_bytes_atomic(out / VALIDATION_FILE, validation_yaml(plan, out.resolve(), recipe.targets.size).encode())
    write_json_atomic(out / "export.json", {
        "build": recipe.name, "format": "swap-eval", "runs": len(plan.runs), "cases": len(plan.cases),
        "references": len(wanted), "runs_file": RUNS_FILE, "cases_file": CASES_FILE,
        "trainer_samples": f"validation sample i (0-based, runs.jsonl order) -> samples/{trainer_sample_name(0, 0)}"
                           " at step 0, step_<step:06d>_<i+1>.mp4 in general"})
    return plan


def reference_sources(recipe: Recipe, reference_ids: list[str]) -> pl.DataFrame:
    """The ok references rows of these ids, each with its video's `path`: what `shard.reference_audio` renders."""
    videos = read_frame(recipe.manifests_dir, "videos", ok_only=True).select("video_id", "path").unique("video_id")
    return (read_frame(recipe.manifests_dir, "references", ok_only=True)
            .filter(pl.col("reference_id").is_in(reference_ids)).join(videos, on="video_id", how="left"))


def validation_yaml(plan: EvalPlan, root: Path, size: int) -> str:
    """ltx-trainer's `validation:` section (config.py `ValidationConfig`, `ValidationSample`): one sample per
    run with its caption, seed and reference audio (`type: reference`, absolute paths), 121 frames at 25 fps."""
    samples = [{"prompt": r["caption"], "seed": r["seed"],
                "conditions": [{"type": "reference", "audio": str(root / r["reference_audio"])}]} for r in plan.runs]
    section = {"validation": {"samples": samples, "video_dims": [size, size, TARGET_FRAMES],
                              "frame_rate": float(TARGET_FPS), "generate_audio": True}}
    head = ("# ltx-trainer: these keys go into the training config's `validation:` section, replacing its `samples`\n"
            "# (no other sample before or among them). Sample i writes samples/step_<step:06d>_<i+1>.mp4, and\n"
            "# `ltxa-data eval RECIPE --generated OUTPUT_DIR/samples --trainer-step STEP` reads it as run i of\n"
            "# runs.jsonl.\n")
    return head + yaml.safe_dump(section, sort_keys=False, width=120)


def generated_file(folder: Path, run: dict, index: int, trainer_step: int | None) -> Path | None:
    """The generated file of a run in `folder`: `<run_id>.<mp4|mov|mkv|webm>`, or with `trainer_step` the
    trainer's `step_<step>_<index + 1>.mp4`; None when there is none."""
    if trainer_step is not None:
        path = folder / trainer_sample_name(trainer_step, index)
        return path if path.exists() else None
    for suffix in VIDEO_SUFFIXES:
        path = folder / f"{run['run_id']}{suffix}"
        if path.exists():
            return path
    return None
