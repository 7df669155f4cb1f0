"""What a target's references share with it (`pairs.match`): its speaker (`identity`), or its value of an attribute
with a speaker in the chosen relation (`pairs.reference_speaker`: same, different, any), always from the target's
split; and the splits that make this possible (`analysis.splits`, by value when matching an attribute)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import NamedTuple

import polars as pl

from ..analysis.splits import assign_splits
from ..analysis.strata import stratified_splits
from ..recipe import Recipe

RELATION = {"same": "the target's own speaker", "different": "another speaker than the target's",
            "any": "any speaker"}


class Candidate(NamedTuple):
    """A reference window as `choose_references` draws it (id, video, quality), with its speaker and value."""

    reference_id: str
    video_id: str
    quality: float
    identity_id: str
    value: str | None
    split: str | None


class Matcher:
    """The recipe's pairing rule over one build's windows; `values`: the match attribute's rows of `attributes`."""

    def __init__(self, recipe: Recipe, values: pl.DataFrame) -> None:
        self.recipe = recipe
        self.attribute = None if recipe.pairs.match == "identity" else recipe.pairs.match
        self.relation = recipe.reference_speaker
        self.held_out = set(recipe.pairs.splits.held_out_values)
        self.value = {(k, w): v for k, w, v, _ in values.iter_rows() if v is not None}
        self.why = {(k, w): e for k, w, v, e in values.iter_rows() if v is None}

    def splits(self, groups: list[list[str]], hours: dict[str, float], windows: dict[str, list[tuple[str, str]]],
               previous: dict[str, str]) -> dict[str, str]:
        """identity -> split. With an attribute, speakers are placed value by value (their windows' most common
        value, `analysis.strata`), and groups holding a speaker of a held-out value go to test."""
        cfg = self.recipe.pairs
        if self.attribute is None:
            return assign_splits(groups, hours, cfg.seed, cfg.splits, previous)
        strata = {}
        for i, ws in windows.items():
            counts = Counter(self.value[w] for w in ws if w in self.value)
            strata[i] = min(counts, key=lambda v: (-counts[v], v)) if counts else ""
        forced = {i: "test" for g in groups if any(strata.get(i) in self.held_out for i in g) for i in g}
        return stratified_splits(groups, strata, hours, cfg.seed, cfg.splits, previous, forced,
                                 minimum=2 if self.relation == "different" else 1)

    def pool(self, refs: pl.DataFrame, split: dict[str, str]) -> dict[tuple, list[Candidate]]:
        """The reference windows a target may draw from, by identity (identity) or by (value, split)."""
        out: dict[tuple, list[Candidate]] = defaultdict(list)
        for r in refs.iter_rows(named=True):
            value = self.value.get(("reference", r["reference_id"]))
            c = Candidate(r["reference_id"], r["video_id"], r["quality"], r["identity_id"], value,
                          split.get(r["identity_id"]))
            if self.attribute is None:
                out[(c.identity_id,)].append(c)
            elif value is not None and c.split is not None:
                out[(value, c.split)].append(c)
        return out

    def value_of_target(self, target: dict, split: str) -> tuple[str | None, str | None]:
        """(the target's value, why it cannot be paired): no value, or a value held out of its split."""
        if self.attribute is None:
            return None, None
        value = self.value.get(("target", target["target_id"]))
        if value is None:
            why = self.why.get(("target", target["target_id"]), "the attributes table has no row for it")
            return None, f"no {self.attribute} value ({why})"
        if value in self.held_out and split != "test":
            return value, (f"{self.attribute} {value!r} is held out for test (pairs.splits.held_out_values), and "
                           f"the target's speaker is in {split}")
        return value, None

    def candidates(self, pool: dict[tuple, list[Candidate]], target: dict, value: str | None,
                   split: str) -> list[Candidate]:
        """The references that may go with `target`: its identity's, or those of its value and split whose
        speaker stands in the chosen relation (the draw then leaves out the target's own clip)."""
        if self.attribute is None:
            return pool.get((target["identity_id"],), [])
        same = self.relation == "same"
        return [c for c in pool.get((value, split), [])
                if self.relation == "any" or (c.identity_id == target["identity_id"]) == same]

    def shortfall(self, target: dict, value: str | None, split: str, chosen: int,
                  pool: dict[tuple, list[Candidate]], source: str | None, has_copies: bool) -> str:
        """Why a target got fewer references than `pairs.references_per_target`."""
        k = self.recipe.pairs.references_per_target
        if self.attribute is None:
            return (f"identity {target['identity_id']} has {chosen} reference window(s) in other videos"
                    f"{' (not copies of its own)' if has_copies else ''}"
                    f"{f' of other sources than {source!r}' if source else ''}, {k} needed")
        carried = sum(len(cs) for (v, _), cs in pool.items() if v == value)
        here = pool.get((value, split), [])
        speakers = sorted({c.identity_id for c in here})
        fit = self.candidates(pool, target, value, split)
        named = f"{self.attribute} {value!r}"
        if self.relation == "different" and speakers in ([], [target["identity_id"]]):
            return (f"only the target's own speaker carries {named} in split {split} "
                    f"({len(speakers)} speaker(s), {len(here)} reference window(s)): reference_speaker: different "
                    "needs another speaker of that value")
        return (f"{chosen} reference window(s) fit, {k} needed: {carried} reference window(s) carry {named}, "
                f"{len(here)} of them in split {split} ({len(speakers)} speaker(s)), {len(fit)} from "
                f"{RELATION[self.relation]}; the others are in the target's own clip"
                f"{' or its copies' if has_copies else ''}{f' or source {source!r}' if source else ''}")
