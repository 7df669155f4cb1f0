"""Identity-held-out splits that also hold out source videos.

Identities that share a video (the two speakers of a dialog) form one group and always land in
the same split, so no source video feeds two splits. A group's split is, in order:
1. the split its identities had in the previous build (by most hours, when a new video joins
   groups of different splits), so splits are stable as identities and videos are added;
2. for a new group, with `by: identities`, a hash of (seed, the group's first identity by hash),
   placed on the cumulative fractions (independent of every other group);
3. for a new group, with `by: hours`, the split furthest below its share of hours, groups taken
   in hash order (deterministic; balances hours even when a few identities hold many).
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
) -> dict[str, str]:
    """identity -> split for every identity of `groups` (see the module docstring)."""
    previous = previous or {}
    out: dict[str, str] = {}
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
