"""Splits value by value, for pairs that match on an attribute (`pairs.match`): identity-held-out as always
(`analysis.splits`), and with each split holding its share of every value's speakers.

Each identity has a stratum (its windows' most common value). Per stratum, each split's quota is its share of the
stratum's identities (`by: identities`: counted, largest remainder; `by: hours`: of their target hours). Groups of
identities that share a video are placed whole: those a previous build placed, or that are `forced` (a held-out
value's, to test), keep their split; the others, largest first and then in hash order, go to the split where their
members' strata are furthest below quota. Then a held-out split that holds fewer than `minimum` speakers of a value
gives the groups that put them there to train, until none does: with references from a different speaker of the
same value, a lone speaker of a value in a split can pair with nobody. Forced and previously placed groups never
move.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from ..ids import unit_interval
from ..recipe import SplitsConfig
from .splits import SPLITS


def quotas(amounts: list[float], fractions: SplitsConfig, counted: bool) -> dict[str, float]:
    """Each split's quota of a stratum: `counted`, its share of len(amounts) rounded by largest remainder (ties to
    the earlier split); else its share of sum(amounts)."""
    share = {"train": fractions.train, "val": fractions.val, "test": fractions.test}
    if not counted:
        return {s: share[s] * sum(amounts) for s in SPLITS}
    n = len(amounts)
    count = {s: float(int(n * share[s] + 1e-9)) for s in SPLITS}
    order = sorted(SPLITS, key=lambda s: (-(n * share[s] - count[s]), SPLITS.index(s)))
    for s in order[: n - int(sum(count.values()))]:
        count[s] += 1
    return count


def stratified_splits(groups: list[list[str]], strata: dict[str, str], hours: dict[str, float], seed: int,
                      fractions: SplitsConfig, previous: dict[str, str], forced: dict[str, str],
                      minimum: int = 1) -> dict[str, str]:
    """identity -> split for every identity of `groups` (see the module docstring); `strata`: identity -> value,
    `forced`: identity -> the split its group must take."""
    counted = fractions.by == "identities"

    def amount(i: str) -> float:
        return 1.0 if counted else hours.get(i, 0.0) + 1e-9

    by_stratum: dict[str, list[str]] = defaultdict(list)
    for g in groups:
        for i in g:
            by_stratum[strata.get(i, "")].append(i)
    want = {t: quotas([amount(i) for i in ids], fractions, counted) for t, ids in by_stratum.items()}
    have: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    out: dict[str, str] = {}

    def place(g: list[str], split: str, sign: float = 1.0) -> None:
        for i in g:
            out[i] = split
            have[strata.get(i, "")][split] += sign * amount(i)

    free = []
    for g in groups:
        before = Counter(previous[i] for i in g if i in previous)
        fixed = sorted({forced[i] for i in g if i in forced}) or sorted(before, key=lambda s: (-before[s], s))
        if fixed:
            place(g, fixed[0])
        else:
            free.append(g)
    free.sort(key=lambda g: (-len(g), min(unit_interval("split", seed, i) for i in g)))
    for g in free:
        def deficit(s: str, g: list[str] = g) -> tuple[float, int]:
            return sum(want[strata.get(i, "")][s] - have[strata.get(i, "")][s] for i in g), -SPLITS.index(s)
        open_splits = [s for s in SPLITS if any(want[strata.get(i, "")][s] > 0 for i in g)]
        place(g, max(open_splits or ["train"], key=deficit))

    def speakers(t: str, split: str) -> int:
        return sum(1 for i in by_stratum[t] if out[i] == split)

    moved = True
    while moved:
        moved = False
        for g in free:
            split = out[g[0]]
            if split != "train" and any(0 < speakers(strata.get(i, ""), split) < minimum for i in g):
                place(g, split, -1.0)
                place(g, "train")
                moved = True
    return out
