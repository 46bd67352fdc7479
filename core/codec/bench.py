"""Random NeuralGS models and the ``.ngs`` decode benchmark (issue target: 1M Gaussians in < 10 s on CPU).

``python -m core.codec.bench [--hidden 64] [--sh 3] [--clusters 50] [--n 1000000]`` logs and prints
the timings as JSON.
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
                      init_scale: float = 1.0) -> NeuralGSModel:  # fmt: skip
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
        meta={"seed": seed, "generator": "core.codec.bench.make_random_model"},
    )  # fmt: skip


def benchmark_decode(n_gaussians: int = 1_000_000, n_clusters: int = 50, hidden: int = 64, sh_degree: int = 3,
                     layers: int = 5, pe_freqs: int = 10, seed: int = 0) -> dict:  # fmt: skip
    """Time decoding ``n_gaussians`` from ``.ngs`` bytes to a GaussianScene on the CPU.

    Builds a random model, encodes it, then times ``decode_ngs`` (file bytes -> model) plus
    ``model.decode()`` (all MLPs -> GaussianScene) under ``torch.inference_mode``.
    Returns ``{"seconds": total, "n": Gaussians decoded, "parse_seconds", "mlp_seconds", "bytes",
    "threads", "hidden", "sh_degree", "n_clusters", "layers", "pe_freqs"}``.
    """
    from core.codec.ngs import decode_ngs, encode_ngs

    model = make_random_model(n_gaussians, n_clusters, sh_degree=sh_degree, hidden=hidden, layers=layers,
                              pe_freqs=pe_freqs, seed=seed, extent=500.0)  # fmt: skip
    data = encode_ngs(model)
    del model
    t0 = time.perf_counter()
    decoded = decode_ngs(data, source="<benchmark>")
    t1 = time.perf_counter()
    with torch.inference_mode():
        scene = decoded.decode()
    t2 = time.perf_counter()
    out = {
        "seconds": t2 - t0, "n": scene.num_gaussians, "parse_seconds": t1 - t0, "mlp_seconds": t2 - t1,
        "bytes": len(data), "threads": torch.get_num_threads(), "hidden": hidden, "sh_degree": sh_degree,
        "n_clusters": n_clusters, "layers": layers, "pe_freqs": pe_freqs,
    }  # fmt: skip
    logger.info("decode benchmark: %s", out)
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--sh", type=int, default=3)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--pe", type=int, default=10)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    res = benchmark_decode(args.n, args.clusters, args.hidden, args.sh, args.layers, args.pe)
    logger.info("%s", json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
