"""identify: group voices across videos into identities (a global stage over the voices table)."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..clustering import agglomerative_labels
from ..ids import short_hash
from ..storage import frame_hash
from .base import Partition, Stage, StageResult


class IdentifyStage(Stage):
    name = "identities"
    reads = ("videos", "voices")
    sections = ("identify",)

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        voices = tables["voices"].filter(pl.col("status") == "ok").sort("voice_id")
        labels = tables["videos"].filter(pl.col("status") == "ok").select("video_id", "label").unique("video_id")
        voices = voices.join(labels, on="video_id", how="left")
        return [Partition(0, {"voices": voices}, frame_hash(voices))]

    def process(self, partition: Partition) -> StageResult:
        voices = partition.data["voices"]
        if voices.height == 0:
            return StageResult([])
        emb = np.asarray(voices.get_column("embedding").to_list(), np.float32)
        ids = assign_identities(
            voice_ids=voices.get_column("voice_id").to_list(),
            video_ids=voices.get_column("video_id").to_list(),
            labels=voices.get_column("label").to_list(),
            speech_s=voices.get_column("speech_s").to_list(),
            embeddings=emb,
            threshold=self.recipe.identify.similarity_threshold,
        )
        rows = []
        for i, v in enumerate(voices.iter_rows(named=True)):
            identity, label = ids[i]
            rows.append(dict(voice_id=v["voice_id"], video_id=v["video_id"], speaker=v["speaker"],
                             identity_id=identity, confidence=None, label=label, status="ok", error=None))
        centroids: dict[str, np.ndarray] = {}
        for identity in {r["identity_id"] for r in rows}:
            idx = [i for i, r in enumerate(rows) if r["identity_id"] == identity]
            c = emb[idx].mean(axis=0)
            centroids[identity] = c / max(float(np.linalg.norm(c)), 1e-12)
        for i, r in enumerate(rows):
            r["confidence"] = round(float(emb[i] @ centroids[r["identity_id"]]), 6)
        return StageResult(rows)


def assign_identities(
    voice_ids: list[str],
    video_ids: list[str],
    labels: list[str | None],
    speech_s: list[float],
    embeddings: np.ndarray,
    threshold: float,
) -> list[tuple[str, str | None]]:
    """(identity id, deciding label) per voice.

    A path label names its video's main speaker (most speech). Other voices join the labelled
    identity whose centroid they are most similar to (above `threshold`), or else are grouped by
    average-linkage clustering. Clustered identities are named after their smallest voice id.
    """
    n = len(voice_ids)
    result: list[tuple[str, str | None] | None] = [None] * n
    main: dict[str, int] = {}
    for i in range(n):
        if labels[i] and (video_ids[i] not in main or speech_s[i] > speech_s[main[video_ids[i]]]):
            main[video_ids[i]] = i
    for i in main.values():
        result[i] = (f"label-{labels[i]}", labels[i])
    free = [i for i in range(n) if result[i] is None]
    if main and free:
        names = sorted({result[i][0] for i in main.values()})  # type: ignore[index]
        cents = []
        for name in names:
            idx = [i for i in main.values() if result[i][0] == name]  # type: ignore[index]
            c = embeddings[idx].mean(axis=0)
            cents.append(c / max(float(np.linalg.norm(c)), 1e-12))
        sims = embeddings[free] @ np.stack(cents).T
        for j, i in enumerate(free):
            k = int(np.argmax(sims[j]))
            if sims[j, k] >= threshold:
                result[i] = (names[k], None)
        free = [i for i in range(n) if result[i] is None]
    if free:
        labels_ = agglomerative_labels(embeddings[free], threshold)
        for c in np.unique(labels_):
            members = [free[j] for j in np.flatnonzero(labels_ == c)]
            name = f"id-{short_hash(min(voice_ids[i] for i in members))}"
            for i in members:
                result[i] = (name, None)
    return result  # type: ignore[return-value]
