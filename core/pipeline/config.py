"""Compression hyperparameters (paper §3.3-3.5 and supplement §7) and the presets.

No torch here: the GUI and the CLI build and validate configurations without loading it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
RENDER_BACKENDS = ("auto", "cpu", "gsplat", "reference")
ATTR_WEIGHTINGS = ("uniform", "groups", "render")


@dataclass(frozen=True)
class CompressionConfig:
    """Every knob of the NeuralGS pipeline. Construction validates (ValueError naming the field).

    Paper values: prune_ratio 0.4, beta 0.1 (Eq. 2), 5-layer MLPs of width 128 with 10 PE
    frequencies, 60k fitting iterations with lr 1e-3 -> 8e-5, 25k fine-tuning iterations with
    lr 3e-4 -> 6e-6, lambda_ssim 0.2 (Eq. 5), lambda_freq 0.01 (Eq. 7), K 6-10 for objects.
    Learning rates decay exponentially from the first to the second value over the stage.

    Views: with a dataset, images are loaded with the longer side at most ``dataset_max_size``
    pixels (NeRF-synthetic 800 -> 400) and every ``test_every``-th image (0, 8, 16, ...) is held
    out; without one, ``n_views`` training views of ``image_size`` x ``image_size`` pixels and
    ``n_test_views`` held-out views of ``eval_size`` x ``eval_size`` pixels are generated around the
    scene (``up``: world up, None = estimated / -y; ``elevation_range_deg``: the band of elevations)
    and the targets are renders of the original scene. ``background``: RGB in [0, 1] used for targets
    and renders.

    ``eval_size``: long side in pixels of the generated held-out views, 800 by default in every
    preset (DESIGN §7, evaluation protocol: every quality claim is made at 800 px; at 256 px speckle
    from mis-fitted small Gaussians averages away and PSNR flatters the codec). Training views keep
    ``image_size``. A dataset's held-out views follow the dataset (``dataset_max_size``), not this.

    Normalisation: ``kmeans_range_pct`` / ``attr_range_pct`` = p uses the p-th and (100-p)-th
    percentiles per dimension instead of min/max (values outside are clipped); 0 = min/max
    (the paper). ``attr_margin``: fraction of the range added on each side of the attribute box
    so that targets stay off tanh's asymptotes.

    ``threads``: torch and numba threads while compressing (:func:`core.pipeline.compress.limited_threads`):
    0 = auto (one less than the CPU count, at least 1: one core stays free for the GUI), -1 = leave
    the process settings alone (measured on the shared 2-core machine: donut with ``balanced`` ran
    in 9.5 minutes with 1 thread; with the process default of 2 it had not finished 300 of its 3000
    optimisation steps after 15 minutes).

    Ablations: ``use_clusters`` False = one MLP for all Gaussians (K = 1, "vanilla NeuralGS");
    ``use_importance_weights`` False = uniform weights in Eq. 4; ``use_freq_loss`` False drops Eq. 6.
    """

    n_clusters: int = 8
    prune_ratio: float = 0.4
    beta: float = 0.1
    # neural field
    hidden: int = 64
    max_params_per_gaussian: float = 0.0  # cap on K x MLP parameters per kept Gaussian (narrows hidden); 0 = none
    layers: int = 5
    pe_freqs: int = 10
    # fitting (Eq. 4)
    fit_iters: int = 2000
    fit_lr: tuple[float, float] = (1e-3, 8e-5)
    fit_batch_size: int = 0  # per cluster; 0 = full batch
    attr_range_pct: float = 0.0
    attr_margin: float = 0.0
    attr_weights: str = "uniform"  # Eq. 4's mean over attribute dimensions: uniform | groups | render
    # clustering
    kmeans_iters: int = 30
    kmeans_range_pct: float = 0.0
    # fine-tuning (Eq. 5-7)
    finetune_iters: int = 1000
    finetune_lr: tuple[float, float] = (3e-4, 6e-6)
    lambda_ssim: float = 0.2
    lambda_freq: float = 0.01
    freq_cutoff: float = 0.2  # r0 of the Gaussian high-pass, as a fraction of the Nyquist radius
    # learning from pictures (issue 18; core.pipeline.coadapt, core.pipeline.qat): 0 steps = off
    coadapt_iters: int = 0  # co-adaptation of the kept Gaussians' attributes after pruning
    coadapt_lr: float = 1.0  # multiplies graphdeco's per-attribute learning rates
    coadapt_positions: bool = False  # also move the positions (the codec snaps them to its grid afterwards)
    coadapt_recovery_db: float = 2.0  # how much co-adaptation is expected to win back: prunes that much harder
    qat_iters: int = 0  # quantisation-aware fine-tuning at the chosen residual steps
    qat_coarsen: float = 0.25  # octaves coarser than the first search's step that QAT trains for
    qat_rate_lambda: float = 0.01  # weight of QAT's rate term (mean Laplace code length of the residual symbols)
    # views
    n_views: int = 48
    n_test_views: int = 8
    image_size: int = 256
    eval_size: int = 800  # long side (px) of generated held-out views; DESIGN §7's protocol
    up: tuple[float, float, float] | None = None
    elevation_range_deg: tuple[float, float] = (-30.0, 60.0)
    dataset_max_size: int = 400
    test_every: int = 8
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # run
    seed: int = 0
    device: str = "auto"
    render_backend: str = "auto"
    log_every: int = 10
    evaluate: bool = True
    threads: int = 0  # CPU threads for torch and numba while compressing: 0 = auto, -1 = leave as they are
    # ablations
    use_clusters: bool = True
    use_importance_weights: bool = True
    use_freq_loss: bool = True
    # .ngs v2 codec (DESIGN §7, core.pipeline.rate_control): residuals against the predictor, rate control
    format_version: int = 2  # 1 = the paper's storage (fp16 weights, raw positions; pure NeuralGS only)
    residual_groups: tuple[str, ...] = ()  # attribute groups that may carry residuals; () = pure NeuralGS
    target_psnr: float = 0.0  # dB on the held-out views (vs the original's renders, or the images); 0 = none
    target_size: int = 0  # bytes; 0 = none
    importance_levels: int = 4  # importance-scaled residual steps: levels of S_j (1 = one step for all)
    predictor: str = "auto"  # per cluster: auto (fewer bytes of MLP or constant), mlp, constant
    prune_candidates: tuple[float, ...] = ()  # with target_psnr: the largest ratio whose ceiling clears it
    ceiling_margin_db: float = 1.0  # how far above the target the pruned scene's ceiling must be
    search_views: int = 3  # held-out views the step search renders (the result is confirmed on all)
    preset: str = field(default="custom", compare=False)
    effort: str = field(default="custom", compare=False)  # the EFFORTS entry applied, recorded for reports

    def __post_init__(self) -> None:
        for name in ("fit_lr", "finetune_lr", "elevation_range_deg", "background"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.up is not None:
            object.__setattr__(self, "up", tuple(float(v) for v in self.up))
        validate(self)

    @property
    def effective_clusters(self) -> int:
        """K actually used: 1 when clustering is switched off."""
        return self.n_clusters if self.use_clusters else 1

    def replace(self, **overrides) -> "CompressionConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        """Plain JSON-able values (tuples become lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def _int_at_least(cfg, name: str, low: int) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")


def _finite(cfg, name: str, low: float | None = None, high: float | None = None, *, open_high: bool = False) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {v!r}")
    if low is not None and v < low:
        raise ConfigError(f"{name} must be >= {low}, got {v}")
    if high is not None and (v >= high if open_high else v > high):
        raise ConfigError(f"{name} must be {'<' if open_high else '<='} {high}, got {v}")


def validate(cfg: CompressionConfig) -> None:
    """Raise ValueError with a message naming the first invalid field."""
    for name, low in (("n_clusters", 1), ("hidden", 1), ("layers", 2), ("pe_freqs", 0), ("fit_iters", 0),
                      ("fit_batch_size", 0), ("kmeans_iters", 1), ("finetune_iters", 0), ("n_views", 1),
                      ("n_test_views", 0), ("image_size", 8), ("eval_size", 8), ("dataset_max_size", 8),
                      ("test_every", 0), ("log_every", 1), ("threads", -1), ("coadapt_iters", 0),
                      ("qat_iters", 0)):
        _int_at_least(cfg, name, low)
    if cfg.pe_freqs > 20:
        raise ConfigError(f"pe_freqs must be <= 20 (2^pe_freqs overflows float32 precision), got {cfg.pe_freqs}")
    _finite(cfg, "prune_ratio", 0.0, 1.0, open_high=True)
    _finite(cfg, "beta", 0.0)
    _finite(cfg, "lambda_ssim", 0.0, 1.0)
    _finite(cfg, "lambda_freq", 0.0)
    _finite(cfg, "freq_cutoff", 0.0, 2.0, open_high=True)
    if cfg.freq_cutoff <= 0:
        raise ConfigError(f"freq_cutoff must be > 0, got {cfg.freq_cutoff}")
    _finite(cfg, "attr_range_pct", 0.0, 50.0, open_high=True)
    _finite(cfg, "kmeans_range_pct", 0.0, 50.0, open_high=True)
    _finite(cfg, "attr_margin", 0.0, 1.0)
    _finite(cfg, "max_params_per_gaussian", 0.0)
    _finite(cfg, "coadapt_lr", 0.0, 100.0)
    _finite(cfg, "coadapt_recovery_db", 0.0, 20.0)
    _finite(cfg, "qat_coarsen", 0.0, 4.0)
    _finite(cfg, "qat_rate_lambda", 0.0, 10.0)
    for name in ("fit_lr", "finetune_lr"):
        lr = getattr(cfg, name)
        if len(lr) != 2 or not all(math.isfinite(v) and v > 0 for v in lr):
            raise ConfigError(f"{name} must be two positive learning rates (start, end), got {lr}")
    lo, hi = cfg.elevation_range_deg if len(cfg.elevation_range_deg) == 2 else (1.0, 0.0)
    if not -90.0 < lo <= hi < 90.0:
        raise ConfigError(f"elevation_range_deg must be (low, high) with -90 < low <= high < 90, "
                         f"got {cfg.elevation_range_deg}")
    if len(cfg.background) != 3 or not all(0.0 <= v <= 1.0 for v in cfg.background):
        raise ConfigError(f"background must be 3 values in [0, 1], got {cfg.background}")
    if cfg.up is not None and (len(cfg.up) != 3 or not all(math.isfinite(v) for v in cfg.up)
                               or not any(cfg.up)):
        raise ConfigError(f"up must be a finite non-zero 3-vector or None, got {cfg.up}")
    _validate_codec(cfg)
    if cfg.attr_weights not in ATTR_WEIGHTINGS:
        raise ConfigError(f"attr_weights must be one of {', '.join(ATTR_WEIGHTINGS)}, got {cfg.attr_weights!r}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if cfg.render_backend not in RENDER_BACKENDS:
        raise ConfigError(f"render_backend must be one of {', '.join(RENDER_BACKENDS)}, got {cfg.render_backend!r}")


RESIDUAL_GROUPS = ("opacity", "log_scales", "rotation", "sh_dc", "sh_band1", "sh_band2", "sh_band3")
"""= core.codec.ngs_format_v2.GROUP_NAMES: the higher SH coefficients in three bands (degree 1, 2, 3)."""
PREDICTORS = ("auto", "mlp", "constant")


def _validate_codec(cfg: CompressionConfig) -> None:
    object.__setattr__(cfg, "residual_groups", tuple(cfg.residual_groups))
    object.__setattr__(cfg, "prune_candidates", tuple(float(v) for v in cfg.prune_candidates))
    if cfg.format_version not in (1, 2):
        raise ConfigError(f"format_version must be 1 or 2, got {cfg.format_version!r}")
    bad = [g for g in cfg.residual_groups if g not in RESIDUAL_GROUPS]
    if bad:
        raise ConfigError(f"residual_groups: unknown group(s) {', '.join(map(str, bad))}; "
                         f"choose from {', '.join(RESIDUAL_GROUPS)}")
    _finite(cfg, "target_psnr", 0.0, 200.0)
    _int_at_least(cfg, "target_size", 0)
    _int_at_least(cfg, "importance_levels", 1)
    _int_at_least(cfg, "search_views", 1)
    if cfg.importance_levels > 16:
        raise ConfigError(f"importance_levels must be <= 16, got {cfg.importance_levels}")
    if cfg.target_psnr and cfg.target_size:
        raise ConfigError("give a target PSNR or a target size, not both")
    if (cfg.target_psnr or cfg.target_size) and not cfg.residual_groups:
        raise ConfigError("a PSNR or size target needs residual coding (residual_groups must not be empty)")
    if cfg.format_version == 1 and (cfg.residual_groups or cfg.target_psnr or cfg.target_size):
        raise ConfigError("format_version 1 stores pure NeuralGS only (no residuals, no targets)")
    if cfg.predictor not in PREDICTORS:
        raise ConfigError(f"predictor must be one of {', '.join(PREDICTORS)}, got {cfg.predictor!r}")
    if any(not (math.isfinite(v) and 0.0 <= v < 1.0) for v in cfg.prune_candidates):
        raise ConfigError(f"prune_candidates must lie in [0, 1), got {cfg.prune_candidates}")
    _finite(cfg, "ceiling_margin_db", 0.0, 20.0)


# Short CPU schedules (preview, balanced) start from higher learning rates than the paper's (whose
# schedules span 60k / 25k steps) and normalise attributes by their 0.5..99.5th percentiles. Measured on
# donut.ply (45,624 Gaussians, 256x256 views, K=8, width 64, 1,500 fitting steps): robust percentiles
# +0.7 dB held-out PSNR after fine-tuning; fine-tuning lr 1e-3 -> 2e-5 reaches in 400 steps what
# 3e-4 -> 6e-6 reaches in 800; fitting lr 3e-3 -> 1e-4 another +0.5 dB (details: the pipeline report).
#
# They also weight Eq. 4 by attribute group ("groups"): on lego-3dgs (K 8, width 64, 600 fitting steps)
# the fitted model renders at 24.1 dB against the held-out images instead of 22.2 dB with the paper's
# uniform mean, where opacity, the attribute that costs most when wrong, is 1 of 58 dimensions. And they
# cap the MLPs at 10 parameters per kept Gaussian, which narrows the MLPs of small scenes (sh3-capture,
# 9,080 Gaussians, SH 3: width 64 -> 31) so that the file stays far smaller than the .ply.
_SHORT_SCHEDULE = dict(fit_lr=(3e-3, 1e-4), finetune_lr=(1e-3, 2e-5), attr_range_pct=0.5, attr_weights="groups",
                       max_params_per_gaussian=10.0)

PRESETS: dict[str, dict] = {
    # .ngs v2 with rate control, the default of `compress` (no preset, no target: --target-psnr 40). The MLPs
    # are small and briefly fitted (no fine-tuning): residuals carry the detail, and each cluster keeps its
    # MLP only where it saves more residual bytes than its weights cost (measured per cluster).
    "codec": dict(n_clusters=8, hidden=32, layers=4, pe_freqs=6, fit_iters=300, finetune_iters=0, n_views=24,
                  n_test_views=8, image_size=256, kmeans_iters=15, residual_groups=RESIDUAL_GROUPS,
                  target_psnr=40.0, prune_candidates=(0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3,
                                                      0.25, 0.2, 0.15, 0.1, 0.05, 0.0), **_SHORT_SCHEDULE),
    # about a minute on a 2-core CPU for a ~50k-Gaussian object (donut.ply)
    "preview": dict(n_clusters=4, hidden=32, fit_iters=300, finetune_iters=150, n_views=24, n_test_views=4,
                    image_size=128, kmeans_iters=15, **_SHORT_SCHEDULE),
    # donut.ply on the shared 2-core CPU: about 7 minutes, held-out PSNR about 39.5 dB (measured at 256 px
    # held-out views, before the 800 px protocol), 442 KB
    "balanced": dict(n_clusters=8, hidden=64, fit_iters=1500, finetune_iters=600, n_views=48, n_test_views=8,
                     image_size=256, **_SHORT_SCHEDULE),
    # the paper's settings (supplement §7): min/max normalisation, its schedules; for a CUDA machine
    "paper": dict(n_clusters=8, hidden=128, fit_iters=60_000, finetune_iters=25_000, n_views=100,
                  n_test_views=12, image_size=512, fit_batch_size=0, attr_range_pct=0.0),
}


# How much the codec learns from pictures (issue 18): steps of co-adaptation after pruning and of
# quantisation-aware fine-tuning. "fast" is the codec without learning (its bytes and speed before issue 18).
# Measured on donut (45,624 Gaussians, 24 training views at 256 px, 2-core CPU, 1 thread): a co-adaptation
# step 0.13-0.16 s; prune 0.5 rose from 38.86 to 42.05 dB on the 8 held-out views at 800 px in 300 steps,
# prune 0.65 from 33.58 to 36.79, prune 0.75 from 29.98 to 32.31.
EFFORTS: dict[str, dict] = {
    "fast": dict(coadapt_iters=0, qat_iters=0),
    "default": dict(coadapt_iters=300, qat_iters=150),
    "max": dict(coadapt_iters=1000, qat_iters=400),
}


def default_effort(targeted: bool) -> str:
    """The effort a run gets when none is named: "default" for a run with a PSNR or size target (the codec),
    "fast" (no learning stages) for the pure NeuralGS presets, whose own fine-tuning stage learns."""
    return "default" if targeted else "fast"


def config_from_preset(name: str, effort: str | None = None, **overrides) -> CompressionConfig:
    """The preset's configuration with the effort's steps (:data:`EFFORTS`; None: none applied) and then
    ``overrides`` applied (ValueError for unknown names or fields)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if effort is not None and effort not in EFFORTS:
        raise ConfigError(f"unknown effort {effort!r}; choose one of {', '.join(EFFORTS)}")
    known = {f.name for f in dataclasses.fields(CompressionConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown configuration field(s): {', '.join(unknown)}")
    steps = dict(EFFORTS[effort], effort=effort) if effort is not None else {}
    return CompressionConfig(**{**PRESETS[name], "preset": name, **steps, **overrides})


def codec_overrides(preset: str | None, *, target_psnr: float | None = None, target_size: int | None = None,
                    residuals: tuple[str, ...] | None = None, format_version: int | None = None,
                    predictor: str | None = None, importance_steps: bool = True) -> dict:
    """The CompressionConfig fields (.ngs v2 settings) a target and the codec options ask for, over ``preset``.

    No preset and no target: the ``codec`` preset, visually lossless (target PSNR 40). A target
    (``target_psnr`` dB or ``target_size`` bytes, not both): residual coding of ``residuals`` (None: every
    group) on the preset's predictor. A preset (preview, balanced, paper) without a target: the paper's pure
    NeuralGS (no residuals) in the v2 container (``format_version=1``: the paper's storage). ``predictor``:
    auto, mlp or constant; ``importance_steps=False``: one step for every Gaussian. The command line
    (``compress``) and the application's codec target both map through here; ConfigError names the
    command line's options (the application translates them).
    """
    out: dict = {}
    tp, ts, groups = target_psnr, target_size, residuals
    if tp is not None and ts is not None:
        raise ConfigError("give --target-psnr or --target-size, not both")
    if tp is not None and not (0 < tp <= 200):
        raise ConfigError(f"--target-psnr must be a PSNR in dB above 0 (e.g. 40), got {tp}")
    if ts is not None and ts < 1:
        raise ConfigError(f"--target-size must be a positive number of bytes, got {ts}")
    if tp is not None or ts is not None:
        out.update(target_psnr=tp or 0.0, target_size=ts or 0,
                   residual_groups=RESIDUAL_GROUPS if groups is None else groups)
        if groups == ():
            raise ConfigError("a target needs residuals: --residuals none cannot meet --target-psnr/--target-size")
    elif preset not in (None, "codec"):
        out.update(residual_groups=(), target_psnr=0.0)
        if groups:
            raise ConfigError("--residuals needs a target (--target-psnr or --target-size)")
    elif groups is not None:
        if groups == ():
            raise ConfigError("--residuals none needs a preset (the pure NeuralGS of preview, balanced or paper)")
        out.update(residual_groups=groups)
    if format_version is not None:
        out["format_version"] = format_version
        if format_version == 1 and preset in (None, "codec"):
            raise ConfigError("--format-version 1 stores the paper's pure NeuralGS: give --preset preview, balanced "
                              "or paper, without a target")
    if predictor is not None:
        out["predictor"] = predictor
    if not importance_steps:
        out["importance_levels"] = 1
    return out
