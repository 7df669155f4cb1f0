"""Identity-held-out splits. An identity's split depends only on its id and the seed, so it keeps
its split when other identities are added or removed."""

from __future__ import annotations

from .ids import unit_interval
from .recipe import SplitsConfig

SPLITS = ("train", "val", "test")


def split_of(identity_id: str, seed: int, fractions: SplitsConfig) -> str:
    """The split of an identity: a hash of (seed, identity) placed on the cumulative fractions."""
    u = unit_interval("split", seed, identity_id)
    if u < fractions.train:
        return "train"
    if u < fractions.train + fractions.val:
        return "val"
    return "test"
