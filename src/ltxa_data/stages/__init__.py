"""Pipeline stages, in run order. Each module is one stage, named as the stage is (`--only`, status, the
progress bar); its class names the table it writes. `base` is the interface; `speaker_windows` is the shape
targets and references share."""

from .attributes import AttributesStage
from .base import Partition, Stage, StageResult
from .diarize import DiarizeStage
from .duplicates import DuplicatesStage
from .embed import EmbedStage
from .fingerprints import FingerprintsStage
from .identify import IdentifyStage
from .identity_faces import IdentityFacesStage
from .pairs import PairsStage
from .references import ReferencesStage
from .scan import ScanStage
from .scenes import ScenesStage
from .shard import ShardStage
from .swap_eval import SwapEvalStage
from .targets import TargetsStage

STAGES: tuple[type[Stage], ...] = (
    ScanStage,
    ScenesStage,
    FingerprintsStage,
    DuplicatesStage,
    DiarizeStage,
    EmbedStage,
    IdentifyStage,
    TargetsStage,
    IdentityFacesStage,
    ReferencesStage,
    AttributesStage,
    PairsStage,
    SwapEvalStage,
    ShardStage,
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
TABLE_OF: dict[str, str] = {s.name: s.table for s in STAGES}
"""Each stage's table."""


def unknown_stage(name: str) -> str:
    """Why `name` names no stage: the stage that writes a table of that name, or the stage names."""
    by_table = {t: s for s, t in TABLE_OF.items()}
    if name in by_table:
        return f"{name!r} is a table; the stage that writes it is {by_table[name]!r}"
    return f"no stage {name!r} (stages: {', '.join(STAGE_NAMES)})"


def sample_sections() -> tuple[str, ...]:
    """The recipe sections that decide a sample: those of the shard stage and of every stage it reads from,
    directly or not (`lineage.SAMPLE_SECTIONS` must equal this)."""
    by_table = {s.table: s for s in STAGES}
    todo, seen = [ShardStage.table], set()
    while todo:
        table = todo.pop()
        if table not in seen:
            seen.add(table)
            todo += [r for r in by_table[table].reads if r in by_table]
    return tuple(sorted({sec for table in seen for sec in by_table[table].sections}))


__all__ = ["STAGES", "STAGE_NAMES", "TABLE_OF", "Partition", "Stage", "StageResult", "sample_sections", "unknown_stage"]
