"""Simulated generators that prove the scorer: each "generates" every run of a build's swap eval by copying
one of the build's own target clips (its picture with its own audio), chosen by identity and seed.

- `oracle`: the clip shows the reference's identity: the output follows the reference completely.
- `blind`: the clip shows the target's identity whatever the reference (the same file for reference A and B
  at one seed): a model that ignores the reference.
- `half`: follows the reference in a seeded half of the B runs, and is blind in the others.

The seed picks which of the identity's clips, so swapping only the seed changes the clip but not the person:
the floor a real model's seed noise sets, in miniature.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..errors import SystemicError
from ..ids import unit_interval
from ..media import mux_target
from ..recipe import Recipe
from ..shard_format import read_sample
from ..storage import read_frame
from .cases import eval_plan

GENERATORS = ("oracle", "blind", "half")


def shown_identity(kind: str, run: dict, target_identity: str, seed: int = 0) -> str:
    """The identity the simulated `kind` generator shows for `run`."""
    follows = {"oracle": True, "blind": False}.get(kind)
    if follows is None:
        if kind != "half":
            raise ValueError(f"unknown simulated generator {kind!r}: one of {', '.join(GENERATORS)}")
        follows = unit_interval("half-follows", seed, run["target_id"], run["reference_id"]) < 0.5
    return run["reference_identity"] if follows else target_identity


def simulate(recipe: Recipe, kind: str, out: Path, seed: int = 0) -> int:
    """Write `<run_id>.mp4` for every run of the build's swap eval into `out`; returns the files written."""
    plan = eval_plan(recipe)
    m = recipe.manifests_dir
    identity_of = dict(read_frame(m, "pairs", ok_only=True).select("target_id", "identity_id").iter_rows())
    shards = read_frame(m, "shards", ok_only=True).with_columns(
        pl.col("key").replace_strict(identity_of, default=None).alias("identity_id"))
    clips: dict[str, list[dict]] = {}
    for r in shards.sort("key").iter_rows(named=True):
        clips.setdefault(r["identity_id"], []).append(r)
    out.mkdir(parents=True, exist_ok=True)
    for run in plan.runs:
        who = shown_identity(kind, run, identity_of[run["target_id"]], seed)
        options = clips.get(who)
        if not options:
            raise SystemicError(f"simulate: identity {who} has no sample in the shards to show")
        clip = options[int(unit_interval("clip", seed, who, run["seed"]) * len(options))]
        files = read_sample(recipe.shards_dir, clip["shard"], clip["offset"], clip["nbytes"])
        if "mp4" not in files or "wav" not in files:
            raise SystemicError("simulate: the shards carry no media (encode.keep_media: false)")
        mux_target(files["mp4"], files["wav"], out / run["output"])
    return len(plan.runs)
