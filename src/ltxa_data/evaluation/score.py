"""Swap-eval cases scored against the seed-swap noise floor.

Per case and measure (`voice`, `face`), each run's output is compared with the identities involved: A (the
target's, reference A's) and B (reference B's). In closeness (voice: cosine similarity; face: minus the
descriptor distance), a swap case's `effect` is

    (B-run to B - A-run to B) + (A-run to A - B-run to A)

how far swapping only the reference moved the outputs toward their own references' identities (> 0: toward
the right people; 0 for a generator that ignores the reference). Its floor, `seed_effect`, is the same
quantity with the B-run replaced by the target's second-seed run (same reference A, another seed): what
changing nothing but the noise does. A summary compares the two over cases with bootstrap intervals that
resample target identities (cases of one identity are not independent), or targets when there are too few
identities (a target's cases share its A run and its seed control). A measure follows the reference when both
the effect and its excess over the floor are above 0 with 95% confidence; fewer than `MIN_CLUSTERS` targets
give no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

MEASURES = ("voice", "face")
MIN_CLUSTERS = 5
"""The bootstrap resamples target identities when there are this many, else targets (and the verdict says it is
provisional); fewer targets than this give no verdict (a 95% interval over 2-3 clusters claims too much)."""
RESAMPLES = 2000
WORST_CASES = 3
"""Swap cases kept for viewing per measure: those whose effect is lowest."""
FOLLOWS, AWAY, MOVES, BLIND, TOO_FEW = (
    "follows the reference", "moves away from the reference", "moves, not consistently toward the reference",
    "no effect beyond the seed noise", "too few cases")
PROVISIONAL = f" (provisional: intervals over targets, fewer than {MIN_CLUSTERS} identities)"


def closeness(measure: str, output: np.ndarray, reference: np.ndarray) -> float:
    """Higher is closer: voice, the cosine similarity; face, minus the descriptor distance."""
    if measure == "voice":
        return float(output @ reference / max(np.linalg.norm(output) * np.linalg.norm(reference), 1e-12))
    return -float(np.linalg.norm(output - reference))


def raw(measure: str, c: float) -> float:
    """A closeness back in the measure's own unit (voice: similarity; face: distance)."""
    return round(c if measure == "voice" else -c, 6)


def case_rows(cases: list[dict], runs: dict[str, dict], references: dict[str, dict[str, np.ndarray]]) -> list[dict]:
    """The `eval` rows: one per case and measure. `runs`: run id -> its `eval_runs` row; `references`: measure
    -> identity -> its mean voice or dominant face."""
    seed_run = {c["target_id"]: c["run_b"] for c in cases if c["kind"] == "seed"}
    rows = []
    for c in cases:
        for measure in MEASURES:
            rows.append(_case_row(c, measure, runs, references[measure], seed_run.get(c["target_id"])))
    return rows


def _output(run: dict | None, measure: str) -> tuple[np.ndarray | None, str | None]:
    """(the run's measured vector, None) or (None, why it has none)."""
    if run is None:
        return None, "not in this eval"
    if run["status"] != "ok":
        return None, f"{run['file'] or run['run_id']}: {run['error']}"
    vec = run[f"{'voice_embedding' if measure == 'voice' else 'face_descriptor'}"]
    if vec is None:
        return None, f"{run['file']}: {run[f'{measure}_error']}"
    return np.asarray(vec, np.float64), None


def _case_row(c: dict, measure: str, runs: dict[str, dict], refs: dict[str, np.ndarray],
              seed_run: str | None) -> dict:
    row = dict(case_id=c["case_id"], measure=measure, kind=c["kind"], split=c["split"], target_id=c["target_id"],
               identity_a=c["identity_a"], identity_b=c["identity_b"], b_in_train=c["b_seen_in_training"],
               run_a=c["run_a"], run_b=c["run_b"], a_to_a=None, a_to_b=None, b_to_a=None, b_to_b=None, change=None,
               effect=None, seed_effect=None, seed_change=None, status="ok", error=None)
    out_a, why_a = _output(runs.get(c["run_a"]), measure)
    out_b, why_b = _output(runs.get(c["run_b"]), measure)
    failed = [f"run {r}: {why}" for r, why in ((c["run_a"], why_a), (c["run_b"], why_b)) if why]
    unknown = [i for i in dict.fromkeys((c["identity_a"], c["identity_b"])) if i not in refs]
    if unknown:
        what = "mean voice" if measure == "voice" else "dominant face (identity_faces)"
        failed.append(f"identity {', '.join(unknown)} has no {what} in the build")
    if failed:
        hard = any(runs.get(r) is None or runs[r]["status"] == "failed" for r in (c["run_a"], c["run_b"]))
        return {**row, "status": "failed" if hard else "skipped", "error": "; ".join(failed)}
    assert out_a is not None and out_b is not None
    ref_a, ref_b = refs[c["identity_a"]], refs[c["identity_b"]]
    near = {k: closeness(measure, o, r) for k, o, r in (("a_to_a", out_a, ref_a), ("a_to_b", out_a, ref_b),
                                                      ("b_to_a", out_b, ref_a), ("b_to_b", out_b, ref_b))}
    row.update({k: raw(measure, v) for k, v in near.items()})
    row["change"] = round(_apart(measure, out_a, out_b), 6)
    if c["kind"] == "seed":
        row["a_to_b"] = row["b_to_b"] = None
        return row
    row["effect"] = round(near["b_to_b"] - near["a_to_b"] + near["a_to_a"] - near["b_to_a"], 6)
    out_s, _ = _output(runs.get(seed_run) if seed_run else None, measure)
    if out_s is not None:
        s_to_a, s_to_b = closeness(measure, out_s, ref_a), closeness(measure, out_s, ref_b)
        row["seed_effect"] = round(s_to_b - near["a_to_b"] + near["a_to_a"] - s_to_a, 6)
        row["seed_change"] = round(_apart(measure, out_a, out_s), 6)
    return row


def _apart(measure: str, a: np.ndarray, b: np.ndarray) -> float:
    return 1.0 - closeness(measure, a, b) if measure == "voice" else -closeness(measure, a, b)


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float


def interval_text(mean: float | None, lo: float | None, hi: float | None) -> str:
    """A summary's mean with its interval, as printed and reported: `+0.561 [+0.518, +0.604]`, `-` without one."""
    return "-" if mean is None else f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def bootstrap(values: np.ndarray, clusters: np.ndarray, rng: np.random.Generator,
              resamples: int = RESAMPLES) -> Interval:
    """The mean of `values` with a 95% percentile interval, resampling whole clusters of values."""
    keys, idx = np.unique(clusters, return_inverse=True)
    sums = np.bincount(idx, weights=values, minlength=len(keys))
    counts = np.bincount(idx, minlength=len(keys)).astype(np.float64)
    pick = rng.integers(0, len(keys), size=(resamples, len(keys)))
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Interval(float(values.mean()), float(lo), float(hi))


def _accuracy(effects: np.ndarray) -> float:
    """Share of cases whose effect points the right way (a tie counts a half): a two-alternative choice."""
    return float(np.mean(np.where(np.abs(effects) < 1e-9, 0.5, effects > 0)))


def summarize(rows: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Per measure, over all swap cases, per split and per B voice seen / unseen in training: the effect and
    its seed floor with intervals, their difference, the two-choice accuracy, and a verdict."""
    out = []
    swaps = rows.filter((pl.col("kind") == "swap") & (pl.col("status") == "ok") & pl.col("effect").is_finite()
                        & pl.col("seed_effect").is_finite() & pl.col("change").is_finite()
                        & pl.col("seed_change").is_finite())
    groups = [("all", "all", pl.lit(True))]
    groups += [("split", s, pl.col("split") == s) for s in sorted(set(rows["split"].drop_nulls()))]
    groups += [("b_voice", name, pl.col("b_in_train") == seen) for name, seen in (("seen", True), ("unseen", False))]
    for measure in MEASURES:
        scored = rows.filter((pl.col("measure") == measure) & (pl.col("kind") == "swap"))
        for group, value, where in groups:
            mine = swaps.filter((pl.col("measure") == measure) & where)
            asked = scored.filter(where).height
            out.append(_summary_row(measure, group, value, mine, asked, np.random.default_rng(seed)))
    return pl.DataFrame(out)


def _summary_row(measure: str, group: str, value: str, mine: pl.DataFrame, asked: int,
                 rng: np.random.Generator) -> dict:
    n = mine.height
    identities = mine["identity_a"].n_unique() if n else 0
    unit = "identity" if identities >= MIN_CLUSTERS else "target"
    clusters = mine[f"{unit}_id" if unit == "target" else "identity_a"].to_numpy()
    row: dict = dict(measure=measure, group=group, value=value, cases=asked, scored=n, identities=identities,
                     unit=unit)
    keys = ("effect", "effect_lo", "effect_hi", "seed_effect", "seed_lo", "seed_hi", "difference", "difference_lo",
            "difference_hi", "standardized", "accuracy", "seed_accuracy", "beyond_floor", "change_ratio")
    row.update(dict.fromkeys(keys))
    if (mine["target_id"].n_unique() if n else 0) < MIN_CLUSTERS:
        return {**row, "verdict": TOO_FEW}
    effect, floor = mine["effect"].to_numpy(), mine["seed_effect"].to_numpy()
    change, seed_change = mine["change"].to_numpy(), mine["seed_change"].to_numpy()
    e, s, d = (bootstrap(v, clusters, rng) for v in (effect, floor, effect - floor))
    moved = bootstrap(change - seed_change, clusters, rng)
    sd = float(floor.std(ddof=1)) if n > 1 else 0.0
    row.update(effect=e.mean, effect_lo=e.lo, effect_hi=e.hi, seed_effect=s.mean, seed_lo=s.lo, seed_hi=s.hi,
               difference=d.mean, difference_lo=d.lo, difference_hi=d.hi,
               standardized=d.mean / sd if sd > 1e-12 else None, accuracy=_accuracy(effect),
               seed_accuracy=_accuracy(floor), beyond_floor=float(np.mean(effect > np.percentile(np.abs(floor), 95))),
               change_ratio=float(change.mean() / seed_change.mean()) if seed_change.mean() > 1e-12 else None)
    row = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    if e.lo > 0 and d.lo > 0:
        verdict = FOLLOWS
    elif e.hi < 0 and d.hi < 0:
        verdict = AWAY
    else:
        verdict = MOVES if moved.lo > 0 else BLIND
    return {**row, "verdict": verdict + (PROVISIONAL if unit == "target" else "")}


def worst_cases(rows: pl.DataFrame, n: int = WORST_CASES) -> pl.DataFrame:
    """Per measure, the `n` scored swap cases with the lowest effect (ties by case id)."""
    scored = rows.filter((pl.col("kind") == "swap") & (pl.col("status") == "ok") & pl.col("effect").is_finite())
    return pl.concat([scored.filter(pl.col("measure") == m).sort("effect", "case_id").head(n) for m in MEASURES])
