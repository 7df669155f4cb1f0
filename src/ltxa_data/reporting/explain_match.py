"""`explain`'s account of why a sample's references match its target when `pairs.match` names an attribute: the
value of the target and of each reference with where it came from (a labels file's rows, the path regex, a
classifier's probability), the speaker relation, the split, and how many windows could have been drawn."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from ..recipe import Recipe
from ..stages.matching import RELATION
from ..storage import read_frame, table_path


class Page(Protocol):
    def section(self, title: str, subject: str = "") -> None: ...
    def kv(self, label: str, value: Any, indent: int = 2) -> None: ...
    def line(self, text: str, indent: int = 2) -> None: ...
    def check(self, subject: str, what: str, value: Any, op: str, threshold: Any, passed: bool,
              setting: str, indent: int = 2) -> None: ...


def _values(m: Path, name: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    if not table_path(m, "attributes").exists():
        return {}
    ids = [w for _, w in keys]
    rows = pl.scan_parquet(table_path(m, "attributes")).filter(
        (pl.col("attribute") == name) & pl.col("window_id").is_in(ids)).collect()
    return {(r["window"], r["window_id"]): r for r in rows.iter_rows(named=True)}


def _said(row: dict | None) -> str:
    if row is None:
        return "no attributes row"
    if row["value"] is None:
        return f"none: {row['error']}"
    p = f", probability {row['confidence']:.3f}" if row["confidence"] is not None else ""
    return f"{row['value']!r} (from {row['source']}{p})"


def match_section(page: Page, recipe: Recipe, pair: dict, target: dict, refs: list[dict],
                  rel: Callable[[str], str]) -> None:
    """The 'why these references match' section of one pair (with `pairs.match` an attribute)."""
    name, relation = recipe.pairs.match, recipe.reference_speaker
    m = recipe.manifests_dir
    page.section("Why they match", f"{name} {pair['value']!r}")
    page.line(f"rule: references carry the target's {name} (attributes.{name}: {recipe.attributes[name].source}), "
              f"come from {RELATION[relation]} (pairs.reference_speaker {relation}), from another clip, and from "
              f"the target's split; then drawn as for identities (quality bands, pairs.quality_weight)")
    values = _values(m, name, [("target", target["target_id"]), *(("reference", r["reference_id"]) for r in refs)])
    page.kv("target's value", _said(values.get(("target", target["target_id"]))))
    subject = "match"
    for i, r in enumerate(refs):
        row = values.get(("reference", r["reference_id"]))
        page.line(f"reference {i}: {r['reference_id']} (speaker {r['identity_id']}, {rel(r['video_id'])})")
        page.kv("value", _said(row), indent=4)
        page.check(subject, f"reference {i} {name}", row["value"] if row else None, "==", pair["value"],
                   row is not None and row["value"] == pair["value"], f"pairs.match {name}", indent=4)
        same = r["identity_id"] == pair["identity_id"]
        ok = relation == "any" or same == (relation == "same")
        page.check(subject, f"reference {i} speaker", r["identity_id"], "same as" if relation == "same" else
                   "other than" if relation == "different" else "any", pair["identity_id"], ok,
                   "pairs.reference_speaker", indent=4)
    held = recipe.pairs.splits.held_out_values
    if pair["value"] in held:
        page.check(subject, "held-out value's split", pair["split"], "==", "test", pair["split"] == "test",
                   "pairs.splits.held_out_values")
    pairs = read_frame(m, "pairs", ok_only=True).select("identity_id", "split").unique()
    split = dict(pairs.iter_rows())
    windows = read_frame(m, "attributes", ok_only=True).filter(
        (pl.col("attribute") == name) & (pl.col("window") == "reference") & (pl.col("value") == pair["value"]))
    here = windows.filter(pl.col("identity_id").map_elements(lambda i: split.get(i) == pair["split"],
                                                             return_dtype=pl.Boolean))
    speakers = here["identity_id"].unique().to_list()
    page.line(f"reference windows with {name} {pair['value']!r}: {windows.height} from "
              f"{windows['identity_id'].n_unique()} speaker(s); {here.height} of them in split {pair['split']}, from "
              f"{len(speakers)} speaker(s) ({len([s for s in speakers if s != pair['identity_id']])} other than the "
              "target's)")
