"""Compression benchmarks: the paper's Table-4 ablation on a real scene.

``bench ablation`` compresses one scene four times, adding the paper's improvements one by one
(NeuralGS §4.3, Table 4): one MLP for all Gaussians; + cluster-based fitting; + importance weights
(Eq. 4); + frequency loss (Eq. 6). Every row uses the same preset, seed and held-out views; sizes are
real encoded ``.ngs`` bytes and PSNR/SSIM are held-out means against the targets (the original's
renders, or dataset images with ``--dataset``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

ABLATION_ROWS = [
    ("one MLP for all Gaussians", dict(use_clusters=False, use_importance_weights=False, use_freq_loss=False)),
    ("+ cluster-based fitting", dict(use_clusters=True, use_importance_weights=False, use_freq_loss=False)),
    ("+ importance weights", dict(use_clusters=True, use_importance_weights=True, use_freq_loss=False)),
    ("+ frequency loss (all)", dict(use_clusters=True, use_importance_weights=True, use_freq_loss=True)),
]


def run_ablation(scene_path: str | Path, config, cameras=None, use_images=None, on_progress=None,
                 rows=ABLATION_ROWS) -> dict:
    """Compress ``scene_path`` once per ablation row; returns {"scene", "preset", "rows": [...]}."""
    from core.io import read_scene_with_info
    from core.pipeline.compress import compress
    from core.pipeline.progress import run_to_completion

    scene, info = read_scene_with_info(scene_path)
    out_rows = []
    for name, switches in rows:
        cfg = config.replace(**switches)
        log.info("ablation: %s", name)
        t0 = time.perf_counter()
        result = run_to_completion(compress(scene, cfg, cameras=cameras, dataset_images=use_images), on_progress)
        n_bytes = result.n_bytes  # the model encoded as .ngs, measured by compress()
        m = result.metrics or {}
        out_rows.append({
            "method": name, **switches, "n_clusters": result.model.n_clusters, "bytes": n_bytes,
            "ratio": info.bytes / n_bytes, "psnr": m.get("psnr"), "ssim": m.get("ssim"),
            "fit_loss_mean": (sum(result.fit_losses.values()) / len(result.fit_losses)) if result.fit_losses else None,
            "seconds": time.perf_counter() - t0,
        })
        log.info("ablation: %s: %d bytes, PSNR %.2f dB", name, n_bytes, out_rows[-1]["psnr"] or float("nan"))
    return {"scene": str(scene_path), "original_bytes": info.bytes, "n_gaussians": scene.num_gaussians,
            "preset": config.preset, "target_source": "dataset" if use_images else "renders",
            "config": config.to_dict(), "rows": out_rows}


def format_ablation(r: dict) -> str:
    against = "dataset images" if r["target_source"] == "dataset" else "the original's renders"
    lines = [f"NeuralGS ablation on {r['scene']} ({r['n_gaussians']:,} Gaussians, {r['original_bytes']:,} bytes), "
             f"preset {r['preset']}; held-out PSNR/SSIM against {against}",
             f"{'method':<28} {'K':>3} {'bytes':>10} {'ratio':>7} {'PSNR':>7} {'SSIM':>7} {'fit loss':>9} {'time':>7}"]
    for row in r["rows"]:
        fl = f"{row['fit_loss_mean']:.4f}" if row["fit_loss_mean"] is not None else "-"
        lines.append(f"{row['method']:<28} {row['n_clusters']:>3} {row['bytes']:>10,} {row['ratio']:>6.1f}x "
                     f"{row['psnr']:>7.2f} {row['ssim']:>7.4f} {fl:>9} {row['seconds']:>6.0f}s")
    return "\n".join(lines)
