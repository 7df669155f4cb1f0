"""`ltxa-data status`: per stage, partitions done/total, rows by status, most frequent rejections (by the gate
that rejected them, `gates.rejection`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from ..disk import space_lines
from ..gates import rejection
from ..recipe import Recipe
from ..removals import Removals
from ..stages import STAGES
from ..state import StageState, status_counts
from ..storage import table_path
from .attribute_summary import status_lines


@dataclass
class StageStatus:
    stage: str
    table: str
    partitions_done: int = 0
    partitions_total: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    reasons: list[tuple[str, int]] = field(default_factory=list)
    built: bool = False


def stage_statuses(recipe: Recipe, top: int = 5) -> list[StageStatus]:
    """Where each stage stands, from its plan, its completion markers and its table."""
    out = []
    for stage_cls in STAGES:
        st = StageStatus(stage_cls.name, stage_cls.table)
        progress = StageState(recipe, stage_cls.table).progress()
        if progress is not None:
            st.partitions_done, st.partitions_total = progress
        tp = table_path(recipe.manifests_dir, stage_cls.table)
        if tp.exists():
            st.built = True
            gated = "gates" in pq.read_schema(tp).names
            t = pq.read_table(tp, columns=["status", "error", *(["gates"] if gated else [])])
            st.counts = status_counts(t)
            errors, gates = t.column("error").to_pylist(), t.column("gates").to_pylist() if gated else None
            reasons = Counter(rejection(e, gates[i] if gates else None) for i, e in enumerate(errors) if e)
            st.reasons = reasons.most_common(top)
        out.append(st)
    return out


def format_status(recipe: Recipe, statuses: list[StageStatus]) -> str:
    lines = [f"build '{recipe.name}': manifests in {recipe.manifests_dir}", ""]
    lines.append(f"{'stage':<16}{'table':<16}{'partitions':>12}{'ok':>9}{'skipped':>9}{'failed':>9}")
    for st in statuses:
        parts = f"{st.partitions_done}/{st.partitions_total}" if st.partitions_total is not None else "-"
        c = st.counts
        lines.append(f"{st.stage:<16}{st.table:<16}{parts:>12}{c.get('ok', 0):>9}{c.get('skipped', 0):>9}"
                     f"{c.get('failed', 0):>9}")
        for reason, n in st.reasons:
            lines.append(f"{'':<18}{n:>5} x {reason}")
    return "\n".join(lines + status_lines(recipe) + hygiene_lines(recipe) + [""] + space_lines(recipe))


def hygiene_lines(recipe: Recipe) -> list[str]:
    """Groups of copies and take-downs, for the status."""
    import polars as pl


    lines = [""]
    tp = table_path(recipe.manifests_dir, "duplicates")
    if tp.exists():
        dup = pl.read_parquet(tp, columns=["video_id", "group_id", "status"]).filter(pl.col("status") == "ok")
        lines.append(f"copies: {dup['group_id'].n_unique()} group(s) of {dup.height} videos (duplicates.targets "
                     f"{recipe.duplicates.targets})")
    removals = Removals.load(recipe).table
    if removals.height:
        hows = ", ".join(f"{n} {h}" for h, n in removals.group_by("how").len().sort("how").iter_rows())
        lines.append(f"take-downs: {removals['removal_id'].n_unique()} request(s), {removals.height} video(s) removed "
                     f"({hows}); manifests/removals.parquet")
    return lines if len(lines) > 1 else []
