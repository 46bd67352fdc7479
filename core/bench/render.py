"""Render benchmarks: the CPU differentiable renderer (forward, forward+backward) and the display renderer.

``run_render_benchmark()`` measures, on one scene and one orbit camera:

- ``cpu_first_call_s``: the first forward+backward, which includes numba JIT compilation (or loading
  the compiled kernels from numba's cache); reported separately and excluded from the medians.
- ``cpu_fwd_s``: median forward time under ``torch.no_grad()`` (rendering targets, evaluation).
- ``cpu_fwd_bwd_s``: median time of forward, loss and backward with gradients for every scene tensor,
  as one fine-tuning step needs; loss = sum(colour * W) with W a fixed, seeded random image.
- ``display_fps``: frames per second of the moderngl/EGL display renderer (``core.display``) at the
  display size, or ``None`` with ``display_skipped`` when no EGL context can be made here.
- ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss``), loading included.

The scene: ``--scene FILE``, else a seeded random subset of ``../shared/data/scenes/lego-3dgs.ply``
when present, else :func:`synthetic_scene`.
"""

from __future__ import annotations

import logging
import os
import resource
import statistics
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

TARGETS = {"cpu_fwd_bwd_s_max": 0.8, "display_fps_min": 10.0, "peak_rss_mb_max": 1500.0}
"""Performance targets on the 2-core reference machine (DESIGN.md sections 6 and 10)."""

TARGET_CONDITIONS = {"n_gaussians": 100_000, "size": (512, 512), "display_size": (800, 600)}
"""Where the targets apply; at other sizes the pass flags are indicative only."""

def default_scene_path() -> Path | None:
    """lego-3dgs.ply from the shared data folder (``$NEURALGS_SHARED_DATA`` overrides), if present."""
    from core.paths import shared_data_dir

    p = shared_data_dir() / "scenes" / "lego-3dgs.ply"
    return p if p.is_file() else None


def synthetic_scene(n: int, seed: int = 0, sh_degree: int = 3):
    """A synthetic scene with the statistics of a trained object scene, for machines without the data.

    ``n`` Gaussians: 80% on the surface of a unit sphere (an object), 20% on a ground plane at y = 1
    of half-width 2; anisotropic log-normal scales with median 0.01 (1/200 of the extent, like a trained
    3DGS object) and a spread of e^0.5 per axis; random rotations; opacity logits ~ N(1, 2) (many nearly
    opaque, a tail of faint ones, as trained scenes have); SH degree 3 with DC colours uniform in
    [-1.5, 1.5] and higher coefficients ~ N(0, 0.05).
    """
    import torch

    from core.scene import SH_REST_COUNTS, GaussianScene

    g = torch.Generator().manual_seed(seed)
    n_obj = int(round(0.8 * n))
    sphere = torch.nn.functional.normalize(torch.randn(n_obj, 3, generator=g), dim=1)
    plane = torch.rand(n - n_obj, 3, generator=g) * 4.0 - 2.0
    plane[:, 1] = 1.0
    means = torch.cat([sphere, plane])
    log_scales = torch.log(torch.tensor(0.01)) + 0.5 * torch.randn(n, 3, generator=g)
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=1)
    opacity_logits = 1.0 + 2.0 * torch.randn(n, generator=g)
    sh_dc = torch.rand(n, 3, generator=g) * 3.0 - 1.5
    sh_rest = 0.05 * torch.randn(n, SH_REST_COUNTS[sh_degree], 3, generator=g)
    return GaussianScene(means, quats, log_scales, opacity_logits, sh_dc, sh_rest)


def load_bench_scene(path: Path | None, n: int, seed: int = 0):
    """``(scene, description)``: ``n`` Gaussians drawn (seeded) from ``path`` / lego, else synthetic."""
    import torch

    from core.io import read_scene_with_info

    if path is None:
        path = default_scene_path()
        if path is None:
            log.info("lego-3dgs.ply not found; benchmarking a synthetic scene of %d Gaussians", n)
            return synthetic_scene(n, seed), f"synthetic ({n} Gaussians, SH degree 3)"
    scene, _info = read_scene_with_info(path)
    total = scene.num_gaussians
    if total > n:
        idx = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n]
        scene = scene.subset(torch.sort(idx).values)
        return scene, f"{path} (seeded random {n} of {total})"
    if total < n:
        log.warning("%s has %d Gaussians, fewer than --n %d: using all of them", path, total, n)
    return scene, str(path)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024.0


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def bench_cpu(scene, camera, repeats: int, seed: int = 0, backend: str = "cpu") -> dict:
    """Time the differentiable renderer's forward and forward+backward on ``scene`` from ``camera``."""
    import torch

    from core.render import render
    from core.scene import GaussianScene

    leaves = [t.detach().clone().requires_grad_(True) for t in scene.tensors()]
    train_scene = GaussianScene(*leaves)
    frozen = scene.detach()
    weight = torch.rand(camera.height, camera.width, 3, generator=torch.Generator().manual_seed(seed + 1))
    weight = weight.to(scene.device)

    def fwd() -> None:
        with torch.no_grad():
            render(frozen, camera, backend=backend)

    def fwd_bwd() -> None:
        for t in leaves:
            t.grad = None
        out = render(train_scene, camera, backend=backend)
        loss = (out.color * weight).sum()
        loss.backward()

    t0 = time.perf_counter()
    fwd_bwd()  # warm-up: JIT compilation or cache load of the numba kernels happens here
    first = time.perf_counter() - t0
    fwd()
    fwd_s, fwd_times = _median_time(fwd, repeats)
    fwd_bwd_s, fwd_bwd_times = _median_time(fwd_bwd, repeats)
    grads_finite = all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in leaves)
    return {"cpu_first_call_s": first, "cpu_fwd_s": fwd_s, "cpu_fwd_bwd_s": fwd_bwd_s,
            "cpu_fwd_times_s": fwd_times, "cpu_fwd_bwd_times_s": fwd_bwd_times, "grads_finite": grads_finite}


def bench_display(scene, camera, frames: int = 20) -> dict:
    """Frames per second of the display renderer, or ``display_fps: None`` with the reason it is unavailable."""
    from core.display import benchmark_display, display_available

    ok, reason = display_available()
    if not ok:
        log.warning("display renderer unavailable, not benchmarked: %s", reason)
        return {"display_fps": None, "display_ms_per_frame": None, "display_skipped": reason}
    r = benchmark_display(scene.detach(), camera, frames=frames)
    return {"display_fps": float(r["fps"]), "display_ms_per_frame": float(r["ms_per_frame"]),
            "display_n_splats": int(r.get("n_splats", scene.num_gaussians)),
            "display_renderer": r.get("renderer") or reason, "display_skipped": None}


def run_render_benchmark(scene_path: str | Path | None = None, n: int = 100_000, size=(512, 512),
                         display_size=(800, 600), repeats: int = 5, frames: int = 20, seed: int = 0,
                         azimuth_deg: float = 30.0, elevation_deg: float = 20.0, up=None) -> dict:
    """Run the CPU and display render benchmarks; a JSON-ready dict of results, targets and pass flags.

    ``up``: world up of the orbit view; default +z for the default (Blender) lego scene, else the
    orbit's default (-y).
    """
    import torch

    from core.cameras import orbit_camera

    load_before = os.getloadavg()[0]
    busy = load_before > 0.5 * (os.cpu_count() or 1)
    if busy:
        log.warning("the machine is busy (load average %.1f on %d cores): timings will be pessimistic",
                    load_before, os.cpu_count() or 1)
    scene, description = load_bench_scene(Path(scene_path) if scene_path else None, n, seed)
    if up is None and scene_path is None and description.startswith(str(default_scene_path() or "\0")):
        up = (0.0, 0.0, 1.0)  # lego-3dgs is a NeRF-synthetic (Blender) scene: z up
    w, h = size
    dw, dh = display_size
    camera = orbit_camera(scene.means.detach(), azimuth_deg, elevation_deg, w, h, up=up)
    log.info("CPU renderer: %d Gaussians at %dx%d, %d repeat(s) after a warm-up", scene.num_gaussians, w, h, repeats)
    result = {
        "benchmark": "render",
        "scene": description,
        "n_gaussians": scene.num_gaussians,
        "sh_degree": scene.sh_degree,
        "width": w,
        "height": h,
        "display_width": dw,
        "display_height": dh,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": load_before,
        "machine_busy": busy,
    }
    result.update(bench_cpu(scene, camera, repeats, seed))
    log.info("display renderer: %d splats at %dx%d, %d frames", scene.num_gaussians, dw, dh, frames)
    display_camera = orbit_camera(scene.means.detach(), azimuth_deg, elevation_deg, dw, dh, up=up)
    result.update(bench_display(scene, display_camera, frames))
    result["peak_rss_mb"] = peak_rss_mb()
    result["targets"] = dict(TARGETS)
    fps = result["display_fps"]
    result["pass"] = {
        "cpu_fwd_bwd": result["cpu_fwd_bwd_s"] <= TARGETS["cpu_fwd_bwd_s_max"],
        "display_fps": None if fps is None else fps >= TARGETS["display_fps_min"],
        "peak_rss": result["peak_rss_mb"] < TARGETS["peak_rss_mb_max"],
    }
    result["all_pass"] = all(v is True for v in result["pass"].values())
    # the targets are defined at 100k Gaussians, 512x512 (CPU) and 800x600 (display)
    result["at_target_conditions"] = (scene.num_gaussians >= TARGET_CONDITIONS["n_gaussians"]
                                      and (w, h) == TARGET_CONDITIONS["size"]
                                      and (dw, dh) == TARGET_CONDITIONS["display_size"])
    return result


def format_render_benchmark(r: dict) -> str:
    """Human-readable lines for :func:`run_render_benchmark`'s result."""
    def mark(key: str) -> str:
        v = r["pass"][key]
        return "n/a" if v is None else ("PASS" if v else "FAIL")

    t = r["targets"]
    fps = "unavailable: " + str(r["display_skipped"]) if r["display_fps"] is None else f"{r['display_fps']:.1f} fps"
    return "\n".join([
        f"scene:            {r['scene']}",
        f"gaussians:        {r['n_gaussians']:,} (SH degree {r['sh_degree']}), {r['width']}x{r['height']}, "
        f"{r['torch_threads']} torch thread(s)",
        f"cpu first call:   {r['cpu_first_call_s']:.3f} s (includes numba compilation or cache load)",
        f"cpu forward:      {r['cpu_fwd_s']:.3f} s (median of {r['repeats']})",
        f"cpu fwd+bwd:      {r['cpu_fwd_bwd_s']:.3f} s (target <= {t['cpu_fwd_bwd_s_max']} s) {mark('cpu_fwd_bwd')}",
        f"display:          {fps} at {r['display_width']}x{r['display_height']} "
        f"(target >= {t['display_fps_min']:.0f} fps) {mark('display_fps')}",
        f"peak memory:      {r['peak_rss_mb']:.0f} MB (target < {t['peak_rss_mb_max']:.0f} MB) {mark('peak_rss')}",
        f"all targets met:  {'yes' if r['all_pass'] else 'no'}"
        + (f" (the machine was busy: load {r['load_avg_1min']:.1f}; rerun when idle)" if r["machine_busy"] else "")
        + ("" if r["at_target_conditions"] else " (not at the target conditions: 100k, 512x512, 800x600)"),
    ])
