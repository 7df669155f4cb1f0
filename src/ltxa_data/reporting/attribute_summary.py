"""Attributes in `status` and the report: per attribute, the windows with and without a value (and why not); with
`pairs.match` an attribute, per value and split, its speakers, pairs, and the share of references from another
speaker than the target's; the swap-eval cases by kind."""

from __future__ import annotations

from collections import Counter

import polars as pl

from ..gates import rejection
from ..recipe import Recipe
from ..storage import table_path
from .html import esc, fmt, html_table


def window_counts(recipe: Recipe) -> pl.DataFrame | None:
    """Per attribute and window kind: windows, those with a value, and distinct values (None: no table)."""
    path = table_path(recipe.manifests_dir, "attributes")
    if not path.exists() or not recipe.attributes:
        return None
    a = pl.read_parquet(path, columns=["attribute", "window", "value"])
    return a.group_by("attribute", "window").agg(
        pl.len().alias("windows"), pl.col("value").is_not_null().sum().alias("with_value"),
        pl.col("value").n_unique().alias("values")).sort("attribute", "window")


def why_not(recipe: Recipe, top: int = 3) -> dict[str, list[tuple[str, int]]]:
    """Per attribute, the most frequent reasons a window has no value."""
    a = pl.read_parquet(table_path(recipe.manifests_dir, "attributes"), columns=["attribute", "value", "error"])
    out = {}
    for (name,), g in a.filter(pl.col("value").is_null()).group_by("attribute"):
        out[str(name)] = Counter(rejection(e) for e in g["error"].to_list()).most_common(top)
    return out


def values_by_split(recipe: Recipe) -> pl.DataFrame | None:
    """With `pairs.match` an attribute: per value and split, the ok pairs, their target speakers, the speakers their
    references come from, and the share of references from another speaker than the target's."""
    path = table_path(recipe.manifests_dir, "pairs")
    if recipe.pairs.match == "identity" or not path.exists():
        return None
    p = pl.read_parquet(path, columns=["value", "split", "identity_id", "reference_identity_ids", "status"]).filter(
        pl.col("status") == "ok")
    refs = p.explode("reference_identity_ids").with_columns(
        (pl.col("reference_identity_ids") != pl.col("identity_id")).alias("other"))
    speakers = refs.group_by("value", "split").agg(
        pl.col("reference_identity_ids").n_unique().alias("reference_speakers"),
        pl.col("other").mean().alias("other_speaker_share"))
    return p.group_by("value", "split").agg(pl.len().alias("pairs"), pl.col("identity_id").n_unique()
                                           .alias("target_speakers")).join(
        speakers, on=["value", "split"], how="left").sort("value", "split")


def swap_kinds(recipe: Recipe) -> pl.DataFrame | None:
    """Swap-eval cases by kind, split and whether B's value (or voice) was seen in training."""
    path = table_path(recipe.manifests_dir, "swap_eval")
    if not path.exists():
        return None
    cases = pl.read_parquet(path, columns=["kind", "split", "b_in_train", "status"]).filter(pl.col("status") == "ok")
    return cases.group_by("kind", "split", "b_in_train").len().sort("kind", "split", "b_in_train")


def status_lines(recipe: Recipe) -> list[str]:
    """`status`'s lines: windows without a value per attribute (and why), pairs per value and split."""
    counts = window_counts(recipe)
    if counts is None:
        return []
    lines = [""]
    reasons = why_not(recipe)
    for name, cfg in recipe.attributes.items():
        rows = counts.filter(pl.col("attribute") == name)
        each = ", ".join(f"{r['window']}s {r['with_value']}/{r['windows']}" for r in rows.iter_rows(named=True))
        missing = int(rows["windows"].sum() - rows["with_value"].sum())
        lines.append(f"attribute {name} ({cfg.source}): windows with a value: {each}; {missing} without one")
        lines += [f"{'':<18}{n:>5} x {reason}" for reason, n in reasons.get(name, [])]
    table = values_by_split(recipe)
    if table is not None and table.height:
        lines.append(f"pairs by {recipe.pairs.match} (reference_speaker {recipe.reference_speaker}):")
        lines += [f"{'':<4}{r['value']!s:<24}{r['split']!s:<7}{r['pairs']:>6} pairs, {r['target_speakers']} target "
                  f"speaker(s), references from {r['reference_speakers']} speaker(s), "
                  f"{r['other_speaker_share']:.0%} from another speaker" for r in table.iter_rows(named=True)]
    return lines


def report_html(recipe: Recipe) -> str:
    """The report's attributes section."""
    counts = window_counts(recipe)
    if counts is None:
        return "<p>No attributes in this recipe: pairs match on identity.</p>"
    reasons = why_not(recipe)
    out = html_table(["attribute", "source", "window", "windows", "with a value", "values"],
                     [(r["attribute"], recipe.attributes[r["attribute"]].source, r["window"], r["windows"],
                       r["with_value"], r["values"]) for r in counts.iter_rows(named=True)], "small")
    for name, rs in reasons.items():
        out += f"<p>{esc(name)}: windows without a value: " + "; ".join(f"{n} x {esc(r)}" for r, n in rs) + "</p>"
    table = values_by_split(recipe)
    if table is not None:
        out += (f"<p>Pairs match on <b>{esc(recipe.pairs.match)}</b>; references come from "
                f"{esc(recipe.reference_speaker)} speakers (pairs.reference_speaker). Values held out for test: "
                f"{esc(', '.join(recipe.pairs.splits.held_out_values) or 'none')}.</p>")
        out += html_table(["value", "split", "pairs", "target speakers", "reference speakers",
                           "references from another speaker"],
                          [(r["value"], r["split"], r["pairs"], r["target_speakers"], r["reference_speakers"],
                            fmt(100 * (r["other_speaker_share"] or 0), 0) + " %") for r in table.iter_rows(named=True)],
                          "small")
    return out
