"""identify: group voices across videos into identities (a global stage over the voices table).

Rules: two local speakers of one video are never one identity (cannot-link); voices with the
same prior label always are and voices with different labels never are (must-link); identity ids
survive incremental runs (a new cluster takes the id of the previous identity most of its voices
had); each identity records the run that created it.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from ..analysis.clustering import GraphConfig, group_embeddings, normalized
from ..analysis.labels import main_speaker_labels, prior_labels
from ..ids import short_hash
from ..storage import frame_hash, read_frame, table_path
from .base import Partition, Stage, StageResult


class IdentifyStage(Stage):
    name = "identify"
    table = "identities"
    reads = ("videos", "voices")
    in_driver = True
    sections = ("identify",)
    version = "3"

    def plan(self, tables: dict[str, pl.DataFrame]) -> list[Partition]:
        voices = tables["voices"].filter(pl.col("status") == "ok").sort("voice_id").select(
            "voice_id", "video_id", "speaker", "embedding", "speech_s")
        videos = tables["videos"].filter(pl.col("status") == "ok").unique("video_id", keep="first")
        labels = prior_labels(self.recipe, videos)
        label_col = [labels.get(v) for v in voices["video_id"]]
        voices = voices.with_columns(pl.Series("video_label", label_col, dtype=pl.String))
        # The previous run's identities keep ids stable; they are not an input of this run's
        # marker (or every run would invalidate the next one), only a naming aid when it runs.
        prev = (read_frame(self.recipe.manifests_dir, "identities", ok_only=True)
                if table_path(self.recipe.manifests_dir, "identities").exists() else None)
        data = {"voices": voices, "previous": prev}
        return [Partition("all", data, frame_hash(voices))]

    def process(self, partition: Partition) -> StageResult:
        voices: pl.DataFrame = partition.data["voices"]
        if voices.height == 0:
            return StageResult([])
        cfg = self.recipe.identify
        emb = normalized(np.asarray(voices["embedding"].to_list(), np.float32))
        labels = main_speaker_labels(voices)
        graph = GraphConfig(k=cfg.neighbors, max_component=cfg.max_component)
        groups = voices["video_id"].to_list()
        clusters = group_embeddings(emb, cfg.similarity_threshold, groups=groups, labels=labels, cfg=graph)
        alone = (group_embeddings(emb, cfg.similarity_threshold, groups=groups, cfg=graph)
                 if any(labels) else None)
        names, created = stable_names(clusters, voices["voice_id"].to_list(), labels, partition.data["previous"])
        confidence = centroid_similarity(emb, clusters)
        rows = []
        for i, v in enumerate(voices.iter_rows(named=True)):
            rows.append(dict(
                voice_id=v["voice_id"], video_id=v["video_id"], speaker=v["speaker"],
                identity_id=names[clusters[i]], confidence=round(float(confidence[i]), 6), label=labels[i],
                created_run=created[clusters[i]],
                clustered_alone=None if alone is None else f"c{alone[i]}",
                status="ok", error=None))
        return StageResult(rows)


def centroid_similarity(emb: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Cosine of each row to the mean of its cluster."""
    k = int(clusters.max()) + 1
    sums = np.zeros((k, emb.shape[1]), np.float64)
    np.add.at(sums, clusters, emb)
    cents = normalized(sums)
    return np.einsum("ij,ij->i", emb, cents[clusters])


def stable_names(
    clusters: np.ndarray, voice_ids: list[str], labels: list[str | None], previous: pl.DataFrame | None
) -> tuple[dict[int, str], dict[int, int]]:
    """(cluster -> identity id, cluster -> run that created it).

    A labelled cluster is `label-<label>`. Otherwise clusters and previous identities are matched
    greedily by the number of voices they share (most first); an unmatched cluster gets a new id
    `id-<hash of its smallest voice id>` and the next run number.
    """
    prev_id: dict[str, str] = {}
    prev_run: dict[str, int] = {}
    if previous is not None and previous.height:
        prev_id = dict(zip(previous["voice_id"], previous["identity_id"], strict=True))
        prev_run = dict(zip(previous["identity_id"], previous["created_run"], strict=True))
    this_run = max(prev_run.values(), default=0) + 1
    members: dict[int, list[int]] = {}
    for i, c in enumerate(clusters):
        members.setdefault(int(c), []).append(i)
    names: dict[int, str] = {}
    for c, rows in members.items():
        labs = {labels[i] for i in rows if labels[i]}
        if labs:
            names[c] = f"label-{min(labs)}"
    overlap = Counter((int(clusters[i]), prev_id[v]) for i, v in enumerate(voice_ids) if v in prev_id)
    taken = set(names.values())
    for (c, old), _n in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if c not in names and old not in taken and not old.startswith("label-"):
            names[c] = old
            taken.add(old)
    for c in sorted(members):
        if c not in names:
            base = f"id-{short_hash(min(voice_ids[i] for i in members[c]))}"
            name, k = base, 1
            while name in taken or name in prev_run:
                name, k = f"{base}-{k}", k + 1
            names[c] = name
            taken.add(name)
    created = {c: prev_run.get(names[c], this_run) for c in members}
    return names, created

