"""Clustering of L2-normalised embeddings, shared by local-speaker diarization and identity grouping."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage


def agglomerative_labels(
    embeddings: np.ndarray, similarity_threshold: float, centroid_merge_threshold: float | None = None
) -> np.ndarray:
    """Average-linkage cosine clustering: clusters merge while their mean pairwise similarity is
    above `similarity_threshold`. With `centroid_merge_threshold`, clusters whose mean embeddings
    are at least that similar are then merged too (short windows are noisy, their means are not).
    Returns one label per row, numbered from 0 in order of first appearance.

    Memory is quadratic in the number of rows: fine per video and for small corpora.
    """
    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, np.int64)
    x = np.asarray(embeddings, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    raw = fcluster(linkage(x, method="average", metric="cosine"), t=1.0 - similarity_threshold,
                   criterion="distance")
    labels = _first_appearance(raw)
    if centroid_merge_threshold is not None:
        labels = _merge_close_centroids(x, labels, centroid_merge_threshold)
    return labels


def _first_appearance(raw: np.ndarray) -> np.ndarray:
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(r), len(remap)) for r in raw], np.int64)


def _merge_close_centroids(x: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        if len(ids) < 2:
            return _first_appearance(labels)
        cents = np.stack([x[labels == i].mean(axis=0) for i in ids])
        cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-12)
        sim = cents @ cents.T
        np.fill_diagonal(sim, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < threshold:
            return _first_appearance(labels)
        labels[labels == ids[b]] = ids[a]
