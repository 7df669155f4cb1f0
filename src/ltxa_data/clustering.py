"""Clustering of L2-normalised embeddings, shared by local-speaker diarization and identity grouping."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage


def agglomerative_labels(embeddings: np.ndarray, similarity_threshold: float) -> np.ndarray:
    """Average-linkage cosine clustering; clusters merge while their mean similarity is above the
    threshold. Returns one label per row, numbered from 0 in order of first appearance.

    Memory is quadratic in the number of rows: fine per video and for small corpora.
    """
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, np.int64)
    if n == 1:
        return np.zeros(1, np.int64)
    x = np.asarray(embeddings, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    z = linkage(x, method="average", metric="cosine")
    raw = fcluster(z, t=1.0 - similarity_threshold, criterion="distance")
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(r), len(remap)) for r in raw], np.int64)
