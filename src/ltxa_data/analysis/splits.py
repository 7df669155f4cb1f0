"""Identity-held-out splits that also hold out source videos.

Identities that share a video (the two speakers of a dialog) form one group and always land in
the same split, so no source video feeds two splits. A group's split is, in order:
1. the split its identities had in the previous build (by most hours, when a new video joins
   groups of different splits), so splits are stable as identities and videos are added;
2. for a new group, with `by: identities`, a hash of (seed, the group's first identity by hash),
   placed on the cumulative fractions (independent of every other group);
3. for a new group, with `by: hours`, the split furthest below its share of hours, groups taken
   in hash order (deterministic; balances hours even when a few identities hold many).

With strata (`pairs.match` an attribute: each group's main value), new groups are placed stratum by stratum: with
`by: identities` each split gets its share of the stratum's groups (largest remainder, in hash order); with `by: hours`,
the greedy fill runs inside each stratum. Either way, a held-out split that would get fewer than `minimum` groups of a
stratum gives its new ones to train (a reference from a different speaker of the same value needs two there).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..ids import unit_interval
from ..recipe import SplitsConfig

SPLITS = ("train", "val", "test")


def split_of(identity_id: str, seed: int, fractions: SplitsConfig) -> str:
    """The split of an identity by hash alone: (seed, identity) placed on the cumulative fractions."""
    u = unit_interval("split", seed, identity_id)
    if u < fractions.train:
        return "train"
    if u < fractions.train + fractions.val:
        return "val"
    return "test"


def identity_groups(video_identities: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Groups of identities linked by shared videos, from (video_id, identity_id) pairs; each
    group sorted, groups sorted by their first member."""
    parent: dict[str, str] = {}

    def root(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first_of_video: dict[str, str] = {}
    for video, identity in video_identities:
        parent.setdefault(identity, identity)
        if video in first_of_video:
            a, b = root(first_of_video[video]), root(identity)
            if a != b:
                parent[max(a, b)] = min(a, b)
        else:
            first_of_video[video] = identity
    groups: dict[str, list[str]] = defaultdict(list)
    for identity in parent:
        groups[root(identity)].append(identity)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def assign_splits(
    groups: list[list[str]],
    hours: dict[str, float],
    seed: int,
    fractions: SplitsConfig,
    previous: dict[str, str] | None = None,
    strata: dict[str, str] | None = None,
    minimum: int = 1,
) -> dict[str, str]:
    """identity -> split for every identity of `groups` (see the module docstring); `strata`: group's first
    identity -> its stratum."""
    if strata is not None:
        out: dict[str, str] = {}
        by_stratum: dict[str, list[list[str]]] = defaultdict(list)
        for g in groups:
            by_stratum[strata.get(g[0], "")].append(g)
        for members in by_stratum.values():
            if fractions.by == "hours":
                placed = assign_splits(members, hours, seed, fractions, previous)
                for split in ("val", "test"):  # too few of the stratum to pair among themselves
                    new = [g for g in members if placed[g[0]] == split and not any(i in (previous or {}) for i in g)]
                    if 0 < len([g for g in members if placed[g[0]] == split]) < minimum:
                        placed.update({i: "train" for g in new for i in g})
                out.update(placed)
            else:
                out.update(_by_quota(members, seed, fractions, previous or {}, minimum))
        return out
    previous = previous or {}
    out = {}
    new_groups = []
    for group in groups:
        before: dict[str, float] = defaultdict(float)
        for identity in group:
            if identity in previous:
                before[previous[identity]] += hours.get(identity, 0.0) + 1e-9
        if before:
            split = max(sorted(before), key=lambda s: before[s])
            out.update(dict.fromkeys(group, split))
        else:
            new_groups.append(group)
    def position(identity: str) -> float:
        return unit_interval("split", seed, identity)

    # A group is placed by its member with the lowest hash, which does not depend on member order.
    anchored = sorted(((min(g, key=position), g) for g in new_groups), key=lambda a: position(a[0]))
    if fractions.by == "identities":
        for anchor, group in anchored:
            out.update(dict.fromkeys(group, split_of(anchor, seed, fractions)))
        return out
    share = {"train": fractions.train, "val": fractions.val, "test": fractions.test}
    have: dict[str, float] = defaultdict(float)
    for identity, split in out.items():
        have[split] += hours.get(identity, 0.0)
    total = sum(hours.get(i, 0.0) for g in groups for i in g)
    for _, group in anchored:
        # The split with the largest deficit against its share of all hours; ties to the earlier split.
        split = max(SPLITS, key=lambda s: (share[s] * total - have[s], -SPLITS.index(s)) if share[s] > 0
                    else (-float("inf"), 0))
        out.update(dict.fromkeys(group, split))
        have[split] += sum(hours.get(i, 0.0) for i in group)
    return out


def quota(n: int, fractions: SplitsConfig, minimum: int = 1) -> dict[str, int]:
    """Of `n` groups, how many each split gets: its share, rounded by largest remainder (ties to the earlier
    split); a held-out split under `minimum` gives its groups to train."""
    share = {"train": fractions.train, "val": fractions.val, "test": fractions.test}
    count = {s: int(n * share[s] + 1e-9) for s in SPLITS}
    order = sorted(SPLITS, key=lambda s: (-(n * share[s] - count[s]), SPLITS.index(s)))
    for s in order[: n - sum(count.values())]:
        count[s] += 1
    for s in ("val", "test"):
        if 0 < count[s] < minimum:
            count["train"], count[s] = count["train"] + count[s], 0
    return count


def _by_quota(groups: list[list[str]], seed: int, fractions: SplitsConfig, previous: dict[str, str],
              minimum: int) -> dict[str, str]:
    """One stratum's groups: those with a previous split keep it; new ones, in hash order, fill each split's
    quota (`quota`), the split furthest below it first once the quotas are met."""
    out: dict[str, str] = {}
    want = quota(len(groups), fractions, minimum)
    have: dict[str, int] = defaultdict(int)
    new = []
    for g in groups:
        before = sorted({previous[i] for i in g if i in previous})
        if before:
            out.update(dict.fromkeys(g, before[0]))
            have[before[0]] += 1
        else:
            new.append(g)
    for g in sorted(new, key=lambda g: min(unit_interval("split", seed, i) for i in g)):
        split = max(SPLITS, key=lambda s: (want[s] - have[s], -SPLITS.index(s)) if want[s] else (-len(groups), 0))
        out.update(dict.fromkeys(g, split))
        have[split] += 1
    return out
