"""swap_eval: evaluation cases for "fixed caption, fixed seed, swap only the reference".

For held-out targets (val and test), each `swap` case pairs the target with reference A (its own
identity's reference, as paired) and reference B (another identity's voice), to be generated with
the same caption and the same seed: a model that learned "this voice -> this person" changes the
voice only when the reference changes. B voices come from held-out identities (never seen in
training) and, when `include_train_voices`, from train identities too; `b_in_train` says which.
Each target also gets a `seed` control: the same reference A with two seeds, which measures how
much the output moves without any reference change.

With `pairs.match` an attribute, B is a reference of another value of it, from a held-out speaker other than the
target's: one of a value train pairs carry (`b_in_train`) and one of a value they never carry (held out with
`pairs.splits.held_out_values`), when the build has one.
"""

from __future__ import annotations

import polars as pl

from ..gates import failure
from ..ids import unit_interval
from ..schemas import blank_row
from ..storage import frame_hash
from .base import Partition, Stage, StageResult


class SwapEvalStage(Stage):
    name = "swap_eval"
    table = "swap_eval"
    reads = ("pairs", "references", "attributes")
    in_driver = True
    sections = ("swap_eval",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        pairs = tables["pairs"].filter(pl.col("status") == "ok").select(
            "target_id", "identity_id", "split", "reference_ids", "target_video_id", "reference_video_ids", "value",
            "reference_identity_ids")
        refs = tables["references"].filter(pl.col("status") == "ok").select(
            "reference_id", "video_id", "identity_id", "quality")
        values = tables["attributes"].filter((pl.col("attribute") == self.recipe.pairs.match)
                                             & (pl.col("window") == "reference")
                                             & pl.col("value").is_not_null()).select("window_id", "value")
        refs = refs.join(values.rename({"window_id": "reference_id"}), on="reference_id", how="left")
        data = {"pairs": pairs.sort("target_id"), "references": refs.sort("reference_id")}
        return [Partition("all", data, frame_hash(*data.values()))]

    def process(self, partition: Partition) -> StageResult:
        cfg = self.recipe.swap_eval
        pairs, refs = partition.data["pairs"], partition.data["references"]
        if self.recipe.pairs.match != "identity":
            return StageResult(_value_cases(pairs, refs, cfg.targets_per_identity, cfg.seed) or [_no_case()])
        split_of = dict(pairs.select("identity_id", "split").unique().iter_rows())
        # Per identity, its best reference (highest quality, then id): B voices are the clearest ones.
        best = {r["identity_id"]: r for r in refs.sort("quality", "reference_id", descending=[True, False])
                .unique("identity_id", keep="first", maintain_order=True).iter_rows(named=True)}
        pools = {
            False: sorted(i for i in best if split_of.get(i) in ("val", "test")),
            True: sorted(i for i in best if split_of.get(i) == "train") if cfg.include_train_voices else [],
        }
        rows: list[dict] = []
        held_out = pairs.filter(pl.col("split").is_in(["val", "test"]))
        for identity, targets in sorted(held_out.group_by("identity_id"), key=lambda g: str(g[0][0])):
            order = sorted(targets.iter_rows(named=True),
                           key=lambda t: unit_interval("swap-target", cfg.seed, t["target_id"]))
            chosen = order[: cfg.targets_per_identity]
            for t in chosen:
                seed = int(unit_interval("swap-seed", cfg.seed, t["target_id"]) * 2**31)
                ref_a = t["reference_ids"][0]
                for in_train in (False, True):
                    b_identity = self._pick_b(pools[in_train], t, best, cfg.seed)
                    if b_identity is None:
                        continue
                    rows.append(_case(t, "swap", seed, seed, ref_a,
                                      best[b_identity]["reference_id"], b_identity, in_train))
                rows.append(_case(t, "seed", seed, seed + 1, ref_a, ref_a, str(identity[0]), False))
        return StageResult(rows or [_no_case()])

    @staticmethod
    def _pick_b(pool: list[str], target: dict, best: dict[str, dict], seed: int) -> str | None:
        """Another identity's voice whose reference comes from none of the target's videos."""
        used = {target["target_video_id"], *target["reference_video_ids"]}
        options = [i for i in pool if i != target["identity_id"] and best[i]["video_id"] not in used]
        if not options:
            return None
        return min(options, key=lambda i: unit_interval("swap-b", seed, target["target_id"], i))


def _no_case() -> dict:
    return blank_row("swap_eval", case_id="none", kind="none", status="skipped",
                     error=failure("swap_eval", "no held-out target with a reference"))


def _case(t: dict, kind: str, seed_a: int, seed_b: int, ref_a: str, ref_b: str, identity_b: str,
          in_train: bool, value_b: str | None = None) -> dict:
    return dict(case_id=f"{t['target_id']}-{kind}-{'train' if in_train else 'heldout'}", kind=kind, split=t["split"],
                target_id=t["target_id"], identity_id=t["identity_id"], seed_a=seed_a, seed_b=seed_b,
                reference_a_id=ref_a, reference_b_id=ref_b, identity_b=identity_b, b_in_train=in_train,
                value_a=t["value"], value_b=value_b if kind == "swap" else t["value"], status="ok", error=None)


def _value_cases(pairs: pl.DataFrame, refs: pl.DataFrame, per_identity: int, seed: int) -> list[dict]:
    """Swap cases by attribute value: per held-out speaker, up to `per_identity` targets; B is the best
    reference of another value from a held-out speaker other than the target's, of a value train pairs carry
    (`b_in_train`) and of one they never carry."""
    split_of = dict(pairs.select("identity_id", "split").unique().iter_rows())
    seen = set(pairs.filter(pl.col("split") == "train")["value"].drop_nulls().to_list())
    held = refs.filter(pl.col("value").is_not_null()
                       & pl.col("identity_id").map_elements(lambda i: split_of.get(i) in ("val", "test"),
                                                            return_dtype=pl.Boolean))
    # Per (value, speaker), its best reference: B voices are the clearest ones.
    best = held.sort("quality", "reference_id", descending=[True, False]).unique(
        ["value", "identity_id"], keep="first", maintain_order=True).sort("value", "identity_id").to_dicts()
    rows: list[dict] = []
    held_out = pairs.filter(pl.col("split").is_in(["val", "test"]))
    for _, targets in sorted(held_out.group_by("identity_id"), key=lambda g: str(g[0][0])):
        order = sorted(targets.iter_rows(named=True), key=lambda t: unit_interval("swap-target", seed, t["target_id"]))
        for t in order[:per_identity]:
            value = t["value"]
            s = int(unit_interval("swap-seed", seed, t["target_id"]) * 2**31)
            ref_a = t["reference_ids"][0]
            used = {t["target_video_id"], *t["reference_video_ids"]}
            for in_train in (False, True):
                options = [b for b in best if b["value"] != value and (b["value"] in seen) == in_train
                           and b["identity_id"] != t["identity_id"] and b["video_id"] not in used]
                if options:
                    b = min(options, key=lambda b: unit_interval("swap-b", seed, t["target_id"], b["reference_id"]))
                    rows.append(_case(t, "swap", s, s, ref_a, b["reference_id"], b["identity_id"], in_train,
                                      b["value"]))
            rows.append(_case(t, "seed", s, s + 1, ref_a, ref_a, t["reference_identity_ids"][0], False))
    return rows
