"""Pipeline stages, in run order. Each module is one stage; `base` is the interface."""

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
    FingerprintsStage,
    DuplicatesStage,
    ScenesStage,
    DiarizeStage,
    EmbedStage,
    IdentifyStage,
    TargetsStage,
    IdentityFacesStage,
    ReferencesStage,
    PairsStage,
    SwapEvalStage,
    ShardStage,
)

__all__ = ["STAGES", "Partition", "Stage", "StageResult"]
