"""`verify`'s checks of what pairs share: identity-held-out splits, references from other clips, and with `pairs.match`
an attribute, the shared value, the speaker relation (`pairs.reference_speaker`) and held-out values; and the
swap-eval cases."""

from __future__ import annotations

from collections import defaultdict

import polars as pl

from ..recipe import Recipe


def check_pairs(pairs: pl.DataFrame, targets: pl.DataFrame, references: pl.DataFrame, recipe: Recipe) -> list[str]:
    """No person in two splits (as a target's or a reference's speaker); references from other videos, of the
    target's identity (`match: identity`) or of a speaker in the chosen relation and the target's split."""
    problems = []
    ok = pairs.filter(pl.col("status") == "ok")
    t_ident = dict(zip(targets["target_id"].to_list(), targets["identity_id"].to_list(), strict=True))
    r_info = {r["reference_id"]: r for r in references.select("reference_id", "video_id", "identity_id").to_dicts()}
    splits: dict[str, set[str]] = defaultdict(set)
    relation = recipe.reference_speaker
    for p in ok.iter_rows(named=True):
        splits[p["identity_id"]].add(p["split"])
        if t_ident.get(p["target_id"]) != p["identity_id"]:
            problems.append(f"pair {p['key']}: target identity {t_ident.get(p['target_id'])} != {p['identity_id']}")
        if p["match"] != recipe.pairs.match:
            problems.append(f"pair {p['key']}: matched on {p['match']!r}, the recipe says {recipe.pairs.match!r}")
        if not p["reference_ids"]:
            problems.append(f"pair {p['key']}: no reference")
        listed = list(p["reference_identity_ids"] or [])
        for k, ref_id in enumerate(p["reference_ids"] or []):
            ref = r_info.get(ref_id)
            if ref is None:
                problems.append(f"pair {p['key']}: reference {ref_id} not in the references table")
                continue
            splits[ref["identity_id"]].add(p["split"])
            if ref["video_id"] == p["target_video_id"]:
                problems.append(f"pair {p['key']}: reference {ref_id} comes from the target's own video")
            if k >= len(listed) or listed[k] != ref["identity_id"]:
                problems.append(f"pair {p['key']}: reference {ref_id} is identity {ref['identity_id']}, the pair "
                                f"lists {listed[k] if k < len(listed) else None}")
            same = ref["identity_id"] == p["identity_id"]
            if (relation == "same" and not same) or (relation == "different" and same):
                problems.append(f"pair {p['key']}: reference {ref_id} is identity {ref['identity_id']}, target is "
                                f"{p['identity_id']} (reference_speaker: {relation})")
    problems += [f"identity {i} appears in splits {sorted(s)}" for i, s in sorted(splits.items()) if len(s) > 1]
    return problems


def check_matches(pairs: pl.DataFrame, attributes: pl.DataFrame, references: pl.DataFrame,
                  recipe: Recipe) -> list[str]:
    """With `pairs.match` an attribute: a pair's target and every reference carry its value (in the attributes
    table), and a held-out value (`pairs.splits.held_out_values`) is paired only in test."""
    name = recipe.pairs.match
    if name == "identity":
        return []
    value = {(k, w): v for k, w, v in attributes.filter((pl.col("attribute") == name) & (pl.col("status") == "ok"))
             .select("window", "window_id", "value").iter_rows()}
    held = set(recipe.pairs.splits.held_out_values)
    problems = []
    for p in pairs.filter(pl.col("status") == "ok").iter_rows(named=True):
        where = f"pair {p['key']}"
        if p["value"] is None or value.get(("target", p["target_id"])) != p["value"]:
            problems.append(f"{where}: the target's {name} is {value.get(('target', p['target_id']))!r}, the pair "
                            f"says {p['value']!r}")
        for ref_id in p["reference_ids"] or []:
            if value.get(("reference", ref_id)) != p["value"]:
                problems.append(f"{where}: reference {ref_id} has {name} {value.get(('reference', ref_id))!r}, "
                                f"not the target's {p['value']!r}")
        if p["value"] in held and p["split"] != "test":
            problems.append(f"{where}: {name} {p['value']!r} is held out for test, the pair is in {p['split']}")
    return problems


def check_swap_eval(cases: pl.DataFrame, pairs: pl.DataFrame, references: pl.DataFrame, recipe: Recipe,
                    attributes: pl.DataFrame | None = None) -> list[str]:
    """Swap cases change only the reference (to another identity's, or with an attribute to another value's from
    another speaker); seed cases change only the seed; targets are held out; `b_in_train` tells the truth."""
    ok_pairs = pairs.filter(pl.col("status") == "ok")
    split = dict(ok_pairs.select("identity_id", "split").unique().iter_rows())
    by_target = {p["target_id"]: p for p in ok_pairs.iter_rows(named=True)}
    ref_identity = dict(references.select("reference_id", "identity_id").iter_rows())
    by_value = recipe.pairs.match != "identity"
    seen = set(ok_pairs.filter(pl.col("split") == "train")["value"].drop_nulls().to_list())
    values = None if attributes is None else dict(attributes.filter(
        (pl.col("attribute") == recipe.pairs.match) & (pl.col("window") == "reference")).select(
        "window_id", "value").iter_rows())
    problems = []
    for c in cases.filter(pl.col("status") == "ok").iter_rows(named=True):
        where = f"swap_eval {c['case_id']}"
        pair = by_target.get(c["target_id"])
        if c["split"] not in ("val", "test") or split.get(c["identity_id"]) != c["split"]:
            problems.append(f"{where}: target is not held out")
        if pair is None or c["reference_a_id"] not in (pair["reference_ids"] or []):
            problems.append(f"{where}: reference A is not one of the target's references")
        if not by_value and ref_identity.get(c["reference_a_id"]) != c["identity_id"]:
            problems.append(f"{where}: reference A is not the target's identity")
        if ref_identity.get(c["reference_b_id"]) != c["identity_b"]:
            problems.append(f"{where}: reference B is not identity {c['identity_b']}")
        if c["kind"] == "seed" and (c["reference_a_id"] != c["reference_b_id"] or c["seed_a"] == c["seed_b"]):
            problems.append(f"{where}: a seed case must change only the seed")
        if c["kind"] != "swap":
            continue
        if c["identity_b"] == c["identity_id"] or c["seed_a"] != c["seed_b"]:
            problems.append(f"{where}: a swap case must change only the reference, to another speaker's")
        if not by_value and c["b_in_train"] != (split.get(c["identity_b"]) == "train"):
            problems.append(f"{where}: b_in_train says {c['b_in_train']}, identity B is in "
                            f"{split.get(c['identity_b'])}")
        if by_value and split.get(c["identity_b"]) == "train":
            problems.append(f"{where}: reference B's speaker {c['identity_b']} is in train")
        if by_value and values is not None and values.get(c["reference_b_id"]) != c["value_b"]:
            problems.append(f"{where}: reference B's {recipe.pairs.match} is {values.get(c['reference_b_id'])!r}, "
                            f"the case says {c['value_b']!r}")
        if by_value and (pair is None or c["value_a"] != pair["value"] or c["value_b"] in (None, c["value_a"])
                         or c["b_in_train"] != (c["value_b"] in seen)):
            problems.append(f"{where}: a swap case must swap {recipe.pairs.match} {c['value_a']!r} for another value "
                            f"(B: {c['value_b']!r}, b_in_train {c['b_in_train']})")
    return problems
