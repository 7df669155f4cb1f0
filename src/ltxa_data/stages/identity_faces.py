"""identity_faces: per voice identity, the face its targets show and how well they agree.

The identities table is written before any face is seen, so the voice-face agreement of an identity is
its own table, read from the targets the face-identity check described (`targets.finalize` gates them).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..gates import failure
from ..storage import frame_hash
from .base import Partition, Stage, StageResult


class IdentityFacesStage(Stage):
    name = "identity_faces"
    table = "identity_faces"
    reads = ("targets",)
    in_driver = True
    sections = ("targets",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        described = tables["targets"].filter(pl.col("face_agrees").is_not_null()).select(
            "target_id", "video_id", "identity_id", "face_descriptor", "face_distance", "face_agrees")
        data = {"targets": described.sort("target_id")}
        return [Partition("all", data, frame_hash(*data.values()))]

    def process(self, partition: Partition) -> StageResult:
        rows = []
        targets = partition.data["targets"]
        for (identity,), group in targets.group_by(["identity_id"], maintain_order=True):
            agree = group.filter(pl.col("face_agrees"))
            row = dict(identity_id=identity, targets=group.height, videos=group["video_id"].n_unique(),
                       agreeing=agree.height, agreement=round(agree.height / group.height, 4),
                       max_agreeing_distance=agree["face_distance"].max() if agree.height else None,
                       dominant_face=None, status="ok", error=None)
            if agree.height:
                mean = np.array(agree["face_descriptor"].to_list(), np.float64).mean(axis=0)
                row["dominant_face"] = [round(float(v), 5) for v in mean]
            else:
                row = {**row, "status": "skipped", "error": failure(
                    identity, f"no dominant face among its {group.height} described targets")}
            rows.append(row)
        return StageResult(sorted(rows, key=lambda r: r["identity_id"]))
