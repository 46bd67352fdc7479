"""Random NeuralGS models and the ``.ngs`` decode benchmark (issue target: 1M Gaussians in < 10 s on CPU).

``python main.py bench decode [--n 1000000] [--clusters 50] [--hidden 64] [--sh-degree 3]`` runs it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from core.neural_field import ClusterField, FieldArch, NeuralGSModel, attribute_dim

logger = logging.getLogger(__name__)


def random_cluster_sizes(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """k non-increasing sizes summing to n, each >= 1 when n >= k (uneven, like k-means clusters)."""
    if k == 0:
        if n:
            raise ValueError("n Gaussians need at least one cluster")
        return []
    base = 1 if n >= k else 0
    rest = n - base * k
    w = rng.gamma(1.5, size=k)
    extra = np.floor(w / w.sum() * rest).astype(np.int64)
    extra[: rest - int(extra.sum())] += 1  # hand out the rounding remainder
    sizes = sorted((base + extra).tolist(), reverse=True)
    assert sum(sizes) == n and len(sizes) == k
    return [int(s) for s in sizes]


def make_random_model(n_gaussians: int, n_clusters: int, *, sh_degree: int = 0, hidden: int = 16, layers: int = 3,
                      pe_freqs: int = 2, seed: int = 0, extent: float = 10.0, center: float = 0.0,
                      init_scale: float = 1.0) -> NeuralGSModel:
    """A random NeuralGSModel: positions uniform in a cube of half-size ``extent`` (world units) around
    ``center``, pos_lo/pos_hi their min/max, random attribute ranges, torch-default MLP init scaled by
    ``init_scale`` (deterministic for a seed). For tests and benchmarks."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    sizes = random_cluster_sizes(n_gaussians, n_clusters, rng)
    pos = (rng.uniform(-extent, extent, size=(n_gaussians, 3)) + center).astype(np.float32)
    lo = pos.min(axis=0) if n_gaussians else np.full(3, center - extent, np.float32)
    hi = pos.max(axis=0) if n_gaussians else np.full(3, center + extent, np.float32)
    d = attribute_dim(sh_degree)
    attr_lo = rng.uniform(-5.0, 0.0, size=d).astype(np.float32)
    attr_hi = (attr_lo + rng.uniform(0.1, 5.0, size=d)).astype(np.float32)
    arch = FieldArch(sh_degree=sh_degree, hidden=hidden, layers=layers, pe_freqs=pe_freqs)
    fields = []
    for _ in range(n_clusters):
        f = ClusterField(arch)
        with torch.no_grad():
            for lin in f.linears:
                bound = init_scale / max(1, lin.in_features) ** 0.5
                lin.weight.uniform_(-bound, bound, generator=gen)
                lin.bias.uniform_(-bound, bound, generator=gen)
        fields.append(f)
    return NeuralGSModel(
        arch=arch, positions=torch.from_numpy(pos), cluster_sizes=sizes, fields=fields,
        pos_lo=torch.from_numpy(lo.copy()), pos_hi=torch.from_numpy(hi.copy()),
        attr_lo=torch.from_numpy(attr_lo), attr_hi=torch.from_numpy(attr_hi),
        meta={"seed": seed, "generator": "core.bench.decode.make_random_model"},
    )


def benchmark_decode(n_gaussians: int = 1_000_000, n_clusters: int = 50, hidden: int = 64, sh_degree: int = 3,
                     layers: int = 5, pe_freqs: int = 10, seed: int = 0, repeats: int = 1,
                     threads: int | None = None) -> dict:
    """Time decoding ``n_gaussians`` from ``.ngs`` bytes to a GaussianScene on the CPU.

    Builds a random model (positions spanning 1000 units), encodes it, then times ``decode_ngs``
    (file bytes -> model) plus ``model.decode()`` (all MLPs -> GaussianScene) under
    ``torch.inference_mode``, ``repeats`` times; reports the fastest run. ``threads`` sets
    torch's intra-op threads for the runs (restored afterwards); None keeps the current setting.

    On a shared, oversubscribed machine OpenMP's spinning threads can make 2 threads several times
    slower than 1 (measured: 13 s vs 4 s for 1M Gaussians); ``OMP_WAIT_POLICY=PASSIVE`` in the
    environment (set before torch loads) avoids that.

    Returns ``{"seconds": wall time, "n": Gaussians decoded, "cpu_seconds": process CPU time (all
    threads), "parse_seconds", "mlp_seconds", "runs": [wall seconds of each run], "bytes": file
    size, "threads", "load_avg": 1-minute load average before the runs (the machine may be shared),
    "omp_wait_policy", "hidden", "sh_degree", "n_clusters", "layers", "pe_freqs"}``.
    """
    import os

    from core.codec.ngs import encode_ngs

    model = make_random_model(n_gaussians, n_clusters, sh_degree=sh_degree, hidden=hidden, layers=layers,
                              pe_freqs=pe_freqs, seed=seed, extent=500.0)
    data = encode_ngs(model)
    del model
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        runs, best = _timed_runs(data, repeats)
    finally:
        used_threads = torch.get_num_threads()
        torch.set_num_threads(saved_threads)
    out = {
        **best, "runs": runs, "bytes": len(data), "threads": used_threads, "load_avg": load,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "hidden": hidden, "sh_degree": sh_degree,
        "n_clusters": n_clusters, "layers": layers, "pe_freqs": pe_freqs,
    }
    logger.info("decode benchmark: %s", out)
    return out


def _timed_runs(data: bytes, repeats: int) -> tuple[list[float], dict]:
    from core.codec.ngs import decode_ngs

    best: dict = {}
    runs = []
    for _ in range(max(1, repeats)):
        c0, t0 = time.process_time(), time.perf_counter()
        decoded = decode_ngs(data, source="<benchmark>")
        t1 = time.perf_counter()
        with torch.inference_mode():
            scene = decoded.decode()
        t2, c2 = time.perf_counter(), time.process_time()
        runs.append(t2 - t0)
        if not best or t2 - t0 < best["seconds"]:
            best = {"seconds": t2 - t0, "n": scene.num_gaussians, "cpu_seconds": c2 - c0,
                    "parse_seconds": t1 - t0, "mlp_seconds": t2 - t1}
        del decoded, scene
    return runs, best


def run_decode_benchmark(n: int, clusters: int, hidden: int, sh_degree: int, repeats: int) -> dict:
    """``.ngs`` bytes -> GaussianScene for ``n`` Gaussians (random model); target < 10 s for 1M on CPU."""
    from core.bench.decode import benchmark_decode

    result = benchmark_decode(n_gaussians=n, n_clusters=clusters, hidden=hidden, sh_degree=sh_degree,
                              repeats=repeats)
    result["target_s"] = 10.0
    result["pass"] = result.get("seconds", float("inf")) < 10.0 if n >= 1_000_000 else None
    return result
