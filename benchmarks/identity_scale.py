"""Identity grouping at scale: synthetic 192-dim voices with planted identities.

    python benchmarks/identity_scale.py                      # 10k, 100k, 1M voices
    python benchmarks/identity_scale.py --sizes 10000 --exact-max 10000

For each size: wall time of `group_embeddings` (data generation excluded), the process's peak
memory, the adjusted Rand index against the planted identities, how many planted identities are
split over several found ones (`split`) and how many found ones mix planted ones (`mixed`). At
the largest size exact average-linkage clustering can run here (`--exact-max`, quadratic
memory), both run on the same data and the ratio of their times is printed. Target: 1M voices
under 10 minutes and 8 GiB on 2 cores with ARI >= 0.95.

The data: identity centres uniform on the sphere, one in ten placed near another identity
(centre cosine ~0.5, like similar voices); identity sizes log-normal (mean 20 voices); each
voice is its centre plus isotropic noise with a per-identity spread, so same-identity voices
have cosine ~0.55-0.75 and different identities ~0 (ECAPA-like scales).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

DIM = 192
THRESHOLD = 0.45


def planted_voices(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings float32 [n, 192] L2-normalised, identity labels [n])."""
    rng = np.random.default_rng(seed)
    n_ids = max(2, n // 20)
    centres = rng.standard_normal((n_ids, DIM), dtype=np.float32)
    near = rng.random(n_ids) < 0.1
    parents = rng.integers(0, n_ids, n_ids)
    centres[near] = centres[parents[near]] / np.linalg.norm(centres[parents[near]], axis=1, keepdims=True) * 8 \
        + rng.standard_normal((int(near.sum()), DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = rng.lognormal(mean=np.log(20) - 0.18, sigma=0.6, size=n_ids)
    labels = rng.choice(n_ids, size=n, p=sizes / sizes.sum())
    spread = rng.uniform(0.04, 0.06, n_ids).astype(np.float32)
    x = np.empty((n, DIM), np.float32)
    for s in range(0, n, 200_000):
        lab = labels[s : s + 200_000]
        v = centres[lab] + rng.standard_normal((len(lab), DIM), dtype=np.float32) * spread[lab, None]
        x[s : s + 200_000] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return x, labels


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _run(method: str, n: int, out: mp.Queue) -> None:
    from ltxa_data.analysis.clustering import agglomerative_labels, group_embeddings

    x, truth = planted_voices(n)
    t0 = time.perf_counter()
    found = group_embeddings(x, THRESHOLD) if method == "graph" else agglomerative_labels(x, THRESHOLD)
    seconds = time.perf_counter() - t0
    pairs = np.unique(np.stack([truth, found], axis=1), axis=0)
    out.put(dict(method=method, n=n, seconds=seconds, peak_gib=_peak_gib(), ari=adjusted_rand_score(truth, found),
                 found=len(np.unique(found)), true=len(np.unique(truth)),
                 split=int((np.bincount(pairs[:, 0]) > 1).sum()), mixed=int((np.bincount(pairs[:, 1]) > 1).sum())))


def measure(method: str, n: int) -> dict:
    """Run one clustering in a fresh process (so peak memory is its own)."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_run, args=(method, n, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--exact-max", type=int, default=20_000, help="largest size for exact clustering (0: skip)")
    args = ap.parse_args(argv)

    print(f"{'method':<8}{'voices':>10}{'identities':>12}{'found':>8}{'split':>7}{'mixed':>7}{'seconds':>10}"
          f"{'peak GiB':>10}{'ARI':>8}")
    rows = []
    runs = [("graph", n) for n in sorted(args.sizes)]
    if args.exact_max > 0:
        if args.exact_max not in args.sizes:
            runs.append(("graph", args.exact_max))
        runs.append(("exact", args.exact_max))
    for method, n in runs:
        r = measure(method, n)
        rows.append(r)
        print(f"{r['method']:<8}{r['n']:>10}{r['true']:>12}{r['found']:>8}{r['split']:>7}{r['mixed']:>7}"
              f"{r['seconds']:>10.1f}{r['peak_gib']:>10.2f}{r['ari']:>8.4f}", flush=True)
    g = {r["n"]: r for r in rows if r["method"] == "graph"}
    e = {r["n"]: r for r in rows if r["method"] == "exact"}
    if args.exact_max in e:
        n = args.exact_max
        print(f"\nat {n} voices: graph is {e[n]['seconds'] / g[n]['seconds']:.1f}x faster than exact, "
              f"peak memory {g[n]['peak_gib']:.2f} vs {e[n]['peak_gib']:.2f} GiB, "
              f"ARI {g[n]['ari']:.4f} vs {e[n]['ari']:.4f}")
    big = g[max(g)]
    ok = big["seconds"] < 600 and big["peak_gib"] < 8 and big["ari"] >= 0.95
    print(f"target at {big['n']} voices (< 600 s, < 8 GiB, ARI >= 0.95): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
