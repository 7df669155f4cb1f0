"""Clustering of L2-normalised embeddings: local speakers within a video, identities across a corpus.

Identity grouping scales by a property of average linkage: two clusters can only merge at
threshold t if some pair across them has similarity >= t. So the connected components of the
graph whose edges are the pairs with similarity >= t contain every average-linkage cluster, and
clustering each component on its own gives the same result as clustering everything at once.
The graph comes from k nearest neighbours (faiss; exact below `exact_below` points, an inverted
file index above), so memory is O(N k) plus the largest component's square, never O(N^2).

An inverted file index misses neighbours (voices carry no coarse structure for its lists to
follow: at 1M planted voices it finds ~60% of them), which cuts identities into several
components. The average similarity of two clusters is the inner product of their mean
embeddings, so a last pass finds, by exact search over cluster means, the clusters of different
components that average linkage would still merge, and merges them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def agglomerative_labels(
    embeddings: np.ndarray, similarity_threshold: float, centroid_merge_threshold: float | None = None
) -> np.ndarray:
    """Average-linkage cosine clustering: clusters merge while their mean pairwise similarity is
    above `similarity_threshold`. With `centroid_merge_threshold`, clusters whose mean embeddings
    are at least that similar are then merged too (short windows are noisy, their means are not).
    Returns one label per row, numbered from 0 in order of first appearance.

    Memory is quadratic in the number of rows: for one video's windows, or as a reference.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, np.int64)
    x = normalized(embeddings)
    raw = fcluster(linkage(x, method="average", metric="cosine"), t=1.0 - similarity_threshold,
                   criterion="distance")
    labels = _first_appearance(raw)
    if centroid_merge_threshold is not None:
        labels = _merge_close_centroids(x, labels, centroid_merge_threshold)
    return labels


def normalized(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _first_appearance(raw: np.ndarray) -> np.ndarray:
    remap: dict[int, int] = {}
    return np.array([remap.setdefault(int(r), len(remap)) for r in raw], np.int64)


def _merge_close_centroids(x: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        if len(ids) < 2:
            return _first_appearance(labels)
        cents = normalized(np.stack([x[labels == i].mean(axis=0) for i in ids]))
        sim = cents @ cents.T
        np.fill_diagonal(sim, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < threshold:
            return _first_appearance(labels)
        labels[labels == ids[b]] = ids[a]


@dataclass(frozen=True)
class GraphConfig:
    """How the neighbour graph is built."""

    k: int = 16
    exact_below: int = 20_000
    points_per_list: int = 500
    nprobe: int = 6
    max_component: int = 2_000
    seed: int = 0


def knn(x: np.ndarray, k: int, cfg: GraphConfig = GraphConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(indices [N, k], similarities [N, k]) of each row's nearest rows by inner product
    (self excluded where found; missing neighbours are -1)."""
    import faiss

    n, d = x.shape
    k = min(k + 1, n)
    x = np.ascontiguousarray(x, np.float32)
    if n < cfg.exact_below:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = max(1, n // cfg.points_per_list)
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(cfg.seed)
        sample = x[rng.choice(n, size=min(n, nlist * 40), replace=False)]
        index.cp.seed = cfg.seed
        index.train(sample)
        index.nprobe = cfg.nprobe
    index.add(x)
    sims, idx = index.search(x, k)
    own = idx == np.arange(n)[:, None]
    # Drop self matches; keep k neighbours per row.
    order = np.argsort(own, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)[:, : k - 1]
    sims = np.take_along_axis(sims, order, axis=1)[:, : k - 1]
    return idx.astype(np.int64), sims.astype(np.float32)


def components(n: int, idx: np.ndarray, sims: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the graph of neighbour pairs with similarity >= threshold."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keep = (idx >= 0) & (sims >= threshold)
    rows = np.repeat(np.arange(n), idx.shape[1])[keep.ravel()]
    cols = idx.ravel()[keep.ravel()]
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _bounded_components(idx: np.ndarray, sims: np.ndarray, threshold: float, max_size: int) -> list[np.ndarray]:
    """Components at `threshold`; any larger than `max_size` is split again at a higher threshold
    (chaining through noisy points can link many identities at 1M points)."""
    n = len(idx)
    out: list[np.ndarray] = []
    todo: list[tuple[np.ndarray, float]] = [(np.arange(n), threshold)]
    while todo:
        nodes, t = todo.pop()
        if len(nodes) == n:
            sub_idx, sub_sims = idx, sims
        else:
            pos = np.full(n, -1, np.int64)
            pos[nodes] = np.arange(len(nodes))
            sub_idx = np.where(idx[nodes] >= 0, pos[np.maximum(idx[nodes], 0)], -1)
            sub_sims = sims[nodes]
        labels = components(len(nodes), sub_idx, sub_sims, t)
        order = np.argsort(labels, kind="stable")
        bounds = np.flatnonzero(np.diff(labels[order])) + 1
        for group in np.split(order, bounds):
            members = nodes[group]
            if len(members) > max_size and t < 0.999:
                todo.append((members, min(0.999, t + 0.02)))
            else:
                out.append(members)
    return out


def labels_clash(a: str | None, b: str | None) -> bool:
    """Two clusters with different prior labels must not merge (an unlabelled one may join either)."""
    return a is not None and b is not None and a != b


def _constrained_average_linkage(
    x: np.ndarray, threshold: float, videos: Sequence[frozenset], labels: Sequence[str | None]
) -> list[list[int]]:
    """Average-linkage clusters of the rows, replaying the dendrogram but refusing merges that
    would put two rows of one video together (cannot-link) or two different labels together.
    A refused merge freezes both sides, as the dendrogram would have merged them next."""
    from scipy.cluster.hierarchy import linkage

    m = len(x)
    if m == 1:
        return [[0]]
    z = linkage(x.astype(np.float64), method="average", metric="cosine")
    active: dict[int, tuple[list[int], frozenset, str | None]] = {
        i: ([i], videos[i], labels[i]) for i in range(m)
    }
    done: list[list[int]] = []
    for r, (a, b, dist, _) in enumerate(z):
        if dist > 1.0 - threshold:
            break
        left, right = active.pop(int(a), None), active.pop(int(b), None)
        if left is None or right is None:
            done += [c[0] for c in (left, right) if c is not None]
            continue
        clash = bool(left[1] & right[1]) or labels_clash(left[2], right[2])
        if clash:
            done += [left[0], right[0]]
            continue
        active[m + r] = (left[0] + right[0], left[1] | right[1], left[2] if left[2] is not None else right[2])
    return done + [c[0] for c in active.values()]


def group_embeddings(
    embeddings: np.ndarray,
    threshold: float,
    groups: Sequence[object] | None = None,
    labels: Sequence[str | None] | None = None,
    cfg: GraphConfig = GraphConfig(),
) -> np.ndarray:
    """Identity clusters of many embeddings (one label per row, numbered by first appearance).

    `groups` (e.g. video ids) are cannot-links: rows of one group never share a cluster.
    `labels` are must-links: rows with the same label always share a cluster, and rows with
    different labels never do; unlabelled rows join a labelled cluster when clustering says so.
    """
    x = normalized(embeddings)
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    groups = list(groups) if groups is not None else list(range(n))
    labels = list(labels) if labels is not None else [None] * n
    # Must-links: a label's rows become one node at their mean.
    node_of = np.empty(n, np.int64)
    node_rows: list[list[int]] = []
    by_label: dict[str, int] = {}
    for i, lab in enumerate(labels):
        if lab is None:
            node_of[i] = len(node_rows)
            node_rows.append([i])
        else:
            if lab not in by_label:
                by_label[lab] = len(node_rows)
                node_rows.append([])
            node_of[i] = by_label[lab]
            node_rows[by_label[lab]].append(i)
    nx = normalized(np.stack([x[r].mean(axis=0) for r in node_rows])) if by_label else x
    n_videos = [frozenset(groups[i] for i in r) for r in node_rows]
    n_labels = [labels[r[0]] for r in node_rows]

    idx, sims = knn(nx, cfg.k, cfg)
    node_cluster = np.empty(len(node_rows), np.int64)
    # Per cluster: (its component, its videos, its label).
    clusters: list[tuple[int, frozenset, str | None]] = []
    for c, comp in enumerate(sorted(_bounded_components(idx, sims, threshold, cfg.max_component),
                                    key=lambda c: int(c.min()))):
        comp = np.sort(comp)
        for members in _constrained_average_linkage(
            nx[comp], threshold, [n_videos[i] for i in comp], [n_labels[i] for i in comp]
        ):
            rows = comp[members]
            node_cluster[rows] = len(clusters)
            clusters.append((c, frozenset().union(*(n_videos[i] for i in rows)),
                             next((n_labels[i] for i in rows if n_labels[i] is not None), None)))
    node_cluster = _merge_across_components(nx, node_cluster, clusters, threshold, cfg.k)
    return _first_appearance(node_cluster[node_of])


def _merge_across_components(
    x: np.ndarray, cluster: np.ndarray, clusters: Sequence[tuple[int, frozenset, str | None]], threshold: float,
    k: int,
) -> np.ndarray:
    """Merges clusters of different components while their average similarity (the inner
    product of their mean rows) is >= threshold, best pair first, under the same cannot-links and
    labels; returns the new cluster of each row. Two clusters of one component stay apart: exact
    linkage already decided them. Each round searches the means of the clusters that just grew
    against all means, exactly: memory O(clusters k), time quadratic in clusters (~20 s for the
    69k first-pass clusters of 1M voices)."""
    import faiss
    from scipy.sparse import csr_matrix

    m = len(clusters)
    sums = np.asarray(csr_matrix((np.ones(len(x), np.float32), (cluster, np.arange(len(x)))), shape=(m, len(x))) @ x,
                      np.float64)
    count = np.bincount(cluster, minlength=m).astype(np.float64)
    parent = list(range(m))
    comps = [frozenset([c]) for c, _, _ in clusters]
    vids = [v for _, v, _ in clusters]
    labs = [lab for _, _, lab in clusters]

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    queries = np.arange(m)
    while len(queries):
        roots = np.flatnonzero(np.array(parent) == np.arange(m))
        means = np.ascontiguousarray(sums[roots] / count[roots, None], np.float32)
        index = faiss.IndexFlatIP(x.shape[1])
        index.add(means)
        sim, nb = index.search(means[np.searchsorted(roots, queries)], min(k + 1, len(roots)))
        a_all, b_all = np.repeat(queries, nb.shape[1]), roots[np.maximum(nb, 0)].ravel()
        keep = (nb.ravel() >= 0) & (sim.ravel() >= threshold) & (a_all != b_all)
        order = np.argsort(-sim.ravel()[keep], kind="stable")
        grown = []
        for a, b in zip(a_all[keep][order].tolist(), b_all[keep][order].tolist(), strict=True):
            a, b = root(a), root(b)
            if a == b or comps[a] & comps[b] or vids[a] & vids[b]:
                continue
            if labels_clash(labs[a], labs[b]):
                continue
            # Earlier merges this round change the means: check the pair as it is now.
            if sums[a] @ sums[b] < threshold * count[a] * count[b]:
                continue
            parent[b] = a
            sums[a] += sums[b]
            count[a] += count[b]
            comps[a], vids[a] = comps[a] | comps[b], vids[a] | vids[b]
            labs[a] = labs[a] if labs[a] is not None else labs[b]
            grown.append(a)
        queries = np.unique([root(a) for a in grown]).astype(np.int64)
    return np.array([root(c) for c in range(m)], np.int64)[cluster]
