"""Nearest-neighbour libraries on synthetic representations: build time, query latency,
recall@10 against exact search, peak memory.

The vectors imitate SimCLR representations: float32, 64-D, clustered (``--clusters`` centres
with anisotropic spread and a common offset), centred and scaled to unit length as
``astroclr.evaluate.index`` searches them (cosine distance = 1 - inner product). The queries are
``--queries`` further draws from the same distribution. Each method runs in a fresh process, so
its peak memory (``ru_maxrss``) is its own: ``peak_mb`` is the process peak, ``index_mb`` the
peak above what the data alone took.

Run: ``python benchmarks/ann_index.py --n 1000000 [--methods faiss-hnsw,exact]``
(one method: ``--one METHOD``, used internally). Prints one Markdown row per method.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

METHODS = ("exact", "astroclr-exact", "faiss-hnsw", "faiss-ivf", "hnswlib", "pynndescent")
K = 10


def data(n: int, dim: int, clusters: int, queries: int, seed: int = 0
         ) -> tuple[np.ndarray, np.ndarray]:
    """``(catalogue (n, dim), queries (queries, dim))``, centred and unit length, float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32) * 2.0
    scales = rng.uniform(0.3, 1.2, size=(clusters, dim)).astype(np.float32)
    offset = rng.normal(size=dim).astype(np.float32) * 5.0  # the shared component

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for a in range(0, m, 100_000):
            b = min(a + 100_000, m)
            c = rng.integers(0, clusters, b - a)
            out[a:b] = centres[c] + scales[c] * rng.standard_normal((b - a, dim), dtype=np.float32)
        return out + offset

    x, q = draw(n), draw(queries)
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    x -= mean
    q -= mean
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k by inner product (scikit-learn brute force on unit vectors: the reference)."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x).kneighbors(
        q, return_distance=False)


def run_one(method: str, n: int, dim: int, clusters: int, queries: int, threads: int) -> dict:
    x, q = data(n, dim, clusters, queries)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if method == "exact":
        built = time.perf_counter()
        t1 = time.perf_counter()
        found = exact_topk(x, q, K)
        t2 = time.perf_counter()
        single = _single(lambda v: exact_topk(x, v, K), q)
    elif method == "astroclr-exact":  # astroclr's own exact path (numpy blocks), below EXACT_MAX
        from astroclr.evaluate.index import NeighbourIndex

        index = NeighbourIndex(x, np.zeros(dim, np.float32))  # x is centred and unit already
        built = time.perf_counter()
        t1 = time.perf_counter()
        found = index.search(q, K)[0]
        t2 = time.perf_counter()
        single = _single(lambda v: index.search(v, K)[0], q)
    elif method.startswith("faiss"):
        import faiss

        faiss.omp_set_num_threads(threads)
        if method == "faiss-hnsw":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.add(x)
            index.hnsw.efSearch = 64
        else:
            nlist = int(4 * np.sqrt(n))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(x[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
            index.add(x)
            index.nprobe = 16
        built = time.perf_counter()
        t1 = time.perf_counter()
        found = index.search(q, K)[1]
        t2 = time.perf_counter()
        single = _single(lambda v: index.search(v, K)[1], q)
    elif method == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, M=32, ef_construction=80, random_seed=0)
        index.set_num_threads(threads)
        index.add_items(x)
        index.set_ef(64)
        built = time.perf_counter()
        t1 = time.perf_counter()
        found = index.knn_query(q, K)[0]
        t2 = time.perf_counter()
        single = _single(lambda v: index.knn_query(v, K)[0], q)
    elif method == "pynndescent":
        from pynndescent import NNDescent

        index = NNDescent(x, metric="dot", n_neighbors=30, random_state=0, n_jobs=threads,
                          low_memory=True)
        index.prepare()
        built = time.perf_counter()
        index.query(q[:2], k=K)  # numba compiles the query on first use: not a query cost
        t1 = time.perf_counter()
        found = index.query(q, k=K)[0]
        t2 = time.perf_counter()
        single = _single(lambda v: index.query(v, k=K)[0], q)
    else:
        raise SystemExit(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    truth = exact_topk(x, q, K)
    recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth)]))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "n": n, "build_s": round(built - t0, 2),
            "batch_ms_per_query": round(1000 * (t2 - t1) / len(q), 4),
            "single_ms": round(single, 3), "recall@10": round(recall, 4),
            "peak_mb": round(peak_kb / 1024), "index_mb": round((peak_kb - base_kb) / 1024)}


def _single(search, q: np.ndarray, repeats: int = 50) -> float:
    """Median milliseconds of one query at a time (the interactive case)."""
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        search(q[i:i + 1])
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--one", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.n, args.dim, args.clusters, args.queries,
                                 args.threads)))
        return
    print(f"N = {args.n:,} x {args.dim}, {args.clusters} clusters, {args.queries} queries, "
          f"k = {K}, {args.threads} threads")
    print("| method | build (s) | batch query (ms/query) | one query (ms) | recall@10 | "
          "peak RSS (MB) | above the data (MB) |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        cmd = [sys.executable, __file__, "--one", method, "--n", str(args.n), "--dim",
               str(args.dim), "--clusters", str(args.clusters), "--queries", str(args.queries),
               "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            tail = (done.stderr.strip().splitlines() or ["?"])[-1]
            print(f"| {method} | failed: {tail} | | | | | |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {method} | {r['build_s']} | {r['batch_ms_per_query']} | {r['single_ms']} | "
              f"{r['recall@10']} | {r['peak_mb']} | {r['index_mb']} |", flush=True)


if __name__ == "__main__":
    main()
