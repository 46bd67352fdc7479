"""Rate control for ``.ngs`` v2 (DESIGN.md §7): meet a quality or a size target with the fewest bytes.

Inputs are a fitted model (the predictor), the true attributes, the importance S_j and a few views with
their targets (renders of the original, or dataset images). The search:

- **prune ratio and position bits** (:func:`choose_geometry`, before clustering): the most pruning and the
  coarsest position grid whose renders with exact attributes (the ceiling every later choice lives under)
  leave room for the target on the search views;
- **variants**: which attribute groups carry residuals (all; or higher SH left to the predictor);
- **step**: the residual step Δ = 2^x · w_group, bisected on x. For a PSNR target, the largest step whose
  search-view PSNR reaches the target; for a size target, the smallest step whose file fits.
  Per cluster the encoder picks the MLP or a constant predictor by measured bytes at each step.

Each trial is recorded (variant, step, bytes, PSNR, seconds) so the caller can report what was tried and
what was chosen. The chosen point is confirmed on every held-out view; when it falls short there, the
step is made finer (up to three times). An unreachable target ends with the best file found and a
message saying by how much it is missed, never an endless search.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Generator, Sequence

import numpy as np
import torch

from core.camera import Camera
from core.codec.ngs_format_v2 import GROUP_NAMES
from core.codec.ngs_v2 import DEFAULT_LEVEL_FRACTIONS, DEFAULT_LEVEL_STEPS, CodecSettings, EncodedV2, encode_v2
from core.metrics import psnr
from core.neural_field import NeuralGSModel
from core.pipeline.config import CompressionConfig
from core.pipeline.progress import ProgressRecord, StageClock
from core.render.api import render
from core.scene import GaussianScene

log = logging.getLogger(__name__)

GROUP_WEIGHTS = {"opacity": 1.0, "log_scales": 1.0, "rotation": 1.0, "sh_dc": 1.0, "sh_rest": 2.0}
"""Relative residual step of each group (normalised units): higher SH are seen least."""
X_FINEST, X_COARSEST = -12.0, -1.0
"""Range of x = log2(Δ): Δ from 1/4096 (well below what 16-bit positions let show) to 1/2 of the range."""
BISECTION_STEPS = 6
MIN_BITS = 10
BITS_SHARE = 0.25


@dataclass
class Trial:
    variant: str
    log2_step: float | None
    n_bytes: int
    psnr: float | None
    seconds: float

    def to_dict(self) -> dict:
        return {"variant": self.variant, "log2_step": self.log2_step, "bytes": self.n_bytes,
                "psnr": None if self.psnr is None else round(self.psnr, 3), "seconds": round(self.seconds, 3)}


@dataclass
class RateResult:
    """encoded: the chosen file; settings; trials: every point tried; reached: whether the target was met
    (on the search views; the caller confirms on all views); message: what was chosen, or why not met."""

    encoded: EncodedV2
    settings: CodecSettings
    variant: str
    trials: list[Trial] = field(default_factory=list)
    reached: bool = True
    message: str = ""
    search_psnr: float | None = None


def render_psnr(scene: GaussianScene, cameras: Sequence[Camera], targets: Sequence[torch.Tensor],
                config: CompressionConfig) -> float:  # fmt: skip
    """Mean PSNR (dB) of renders of ``scene`` (clamped to [0, 1]) against ``targets``."""
    vals = []
    for cam, tgt in zip(cameras, targets):
        with torch.no_grad():
            img = render(scene, cam, config.background, backend=config.render_backend, with_depth=False).color
        vals.append(float(psnr(img.clamp(0.0, 1.0), tgt)))
    return sum(vals) / len(vals) if vals else float("nan")


def search_subset(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all when k >= n)."""
    if k >= n:
        return list(range(n))
    return sorted({int(round((i + 0.5) * n / k - 0.5)) for i in range(k)})


def settings_for(groups: Sequence[str], x: float | None, config: CompressionConfig, bits: int = 16) -> CodecSettings:
    """CodecSettings with step 2^x · w_g for ``groups`` (None x: no residuals) and the config's levels."""
    steps = {g: (None if x is None or g not in groups else float(2.0 ** x * GROUP_WEIGHTS[g])) for g in GROUP_NAMES}
    levels = max(1, int(config.importance_levels))
    if levels == 1 or x is None:
        lsteps, fracs = (1.0,), ()
    else:
        lsteps = tuple(DEFAULT_LEVEL_STEPS[:levels]) if levels <= len(DEFAULT_LEVEL_STEPS) else tuple(
            1.5 ** i for i in range(levels))  # fmt: skip
        fracs = tuple(DEFAULT_LEVEL_FRACTIONS[: levels - 1]) if levels == 4 else tuple(
            (i + 1) / levels for i in range(levels - 1))  # fmt: skip
    return CodecSettings(steps=steps, level_steps=lsteps, level_fractions=fracs, predictor=config.predictor,
                         position_bits=bits)


def variants(config: CompressionConfig, sh_degree: int) -> list[tuple[str, tuple[str, ...]]]:
    """The residual-group variants the search tries: all allowed groups; and without higher SH (SH > 0)."""
    groups = tuple(g for g in GROUP_NAMES if g in config.residual_groups and (g != "sh_rest" or sh_degree > 0))
    out = [("residuals: " + ", ".join(groups), groups)]
    if "sh_rest" in groups and len(groups) > 1:
        rest = tuple(g for g in groups if g != "sh_rest")
        out.append(("residuals: " + ", ".join(rest) + "; higher SH from the predictor", rest))
    return out


def _ceiling(src: GaussianScene, scores: torch.Tensor, ratio: float, bits: int, cameras, targets,
             config: CompressionConfig) -> float:  # fmt: skip
    """PSNR of the scene pruned at ``ratio`` with positions on a ``bits``-bit grid and exact attributes."""
    from core.codec.ngs_format import dequantise_positions, quantise_positions
    from core.pipeline.importance import prune

    kept, _ = prune(src, scores, ratio)
    p = kept.means.detach().cpu().numpy()
    lo, hi = p.min(axis=0).astype(np.float32), p.max(axis=0).astype(np.float32)
    q = torch.from_numpy(dequantise_positions(quantise_positions(p, lo, hi, bits), lo, hi, bits)).to(kept.means)
    kept = GaussianScene(q, kept.quats, kept.log_scales, kept.opacity_logits, kept.sh_dc, kept.sh_rest)
    return render_psnr(kept, cameras, targets, config)


def choose_geometry(src: GaussianScene, scores: torch.Tensor, cameras: Sequence[Camera], targets,
                    config: CompressionConfig, target_psnr: float,
                    ) -> Generator[ProgressRecord, None, tuple[float, int, list[dict]]]:  # fmt: skip
    """The prune ratio and position bits that the residuals will build on, for a PSNR target.

    Their renders (exact attributes) are the ceiling every later choice lives under. Prune: the largest of
    ``config.prune_candidates`` whose 16-bit ceiling clears target + ``config.ceiling_margin_db`` (bisected
    over the sorted candidates; the smallest candidate when none does). Bits: the fewest (down to
    ``MIN_BITS``) whose positions add at most ``BITS_SHARE`` of the MSE headroom left between that ceiling
    and the target (measured on donut: 16 -> 10 bits cost 1.4 dB of a 45.5 dB ceiling and saved 55% of the
    position bytes, 24% of the file). Returns (ratio, bits, [{"prune", "bits", "psnr"}] tried).
    """
    cands = sorted(set(config.prune_candidates), reverse=True)
    clock = StageClock("prune", len(cands).bit_length() + 2 + (16 - MIN_BITS).bit_length() + 2)
    tried: list[dict] = []
    need = target_psnr + config.ceiling_margin_db
    cache: dict[tuple[float, int], float] = {}

    def ceiling(r: float, b: int) -> float:
        if (r, b) not in cache:
            cache[(r, b)] = _ceiling(src, scores, r, b, cameras, targets, config)
            tried.append({"prune": r, "bits": b, "psnr": round(cache[(r, b)], 3)})
        return cache[(r, b)]

    # prune: candidates sorted from most to least pruning; ceilings rise along the list
    lo, hi = 0, len(cands) - 1  # find the first index whose ceiling clears `need`
    if ceiling(cands[hi], 16) < need:
        lo = hi
    else:
        while lo < hi:
            mid = (lo + hi) // 2
            p = ceiling(cands[mid], 16)
            yield clock.record(len(tried), f"prune {cands[mid]:.2f}: ceiling {p:.2f} dB (need {need:.2f})")
            if p >= need:
                hi = mid
            else:
                lo = mid + 1
    ratio = cands[lo]
    top = ceiling(ratio, 16)
    mse = lambda db: 10.0 ** (-db / 10.0)  # noqa: E731
    allowed = mse(top) + BITS_SHARE * max(0.0, mse(target_psnr) - mse(top))
    b_lo, b_hi = MIN_BITS, 16  # fewest bits whose ceiling MSE stays within `allowed`
    while b_lo < b_hi:
        mid = (b_lo + b_hi) // 2
        p = ceiling(ratio, mid)
        yield clock.record(min(len(tried), clock.total), f"prune {ratio:.2f}, {mid}-bit positions: ceiling {p:.2f} dB")
        if mse(p) <= allowed:
            b_hi = mid
        else:
            b_lo = mid + 1
    return ratio, b_lo, tried


def _scene(enc: EncodedV2) -> GaussianScene:
    with torch.no_grad():
        return enc.model.decode().detach()


def encode_to_target(model: NeuralGSModel, target: torch.Tensor, importance: torch.Tensor,
                     cameras: Sequence[Camera], targets: Sequence[torch.Tensor], config: CompressionConfig,
                     bits: int = 16) -> Generator[ProgressRecord, None, RateResult]:  # fmt: skip
    """Search steps and variants for ``config.target_psnr`` (dB) or ``config.target_size`` (bytes), with
    positions on a ``bits``-bit grid."""
    vs = variants(config, model.arch.sh_degree)
    per_variant = BISECTION_STEPS + 2
    clock = StageClock("search", per_variant * len(vs))
    trials: list[Trial] = []
    done = 0

    def trial(name: str, groups, x: float | None, measure: bool) -> tuple[EncodedV2, CodecSettings, Trial]:
        t0 = time.perf_counter()
        st = settings_for(groups, x, config, bits)
        enc = encode_v2(model, st, target, importance)
        p = render_psnr(_scene(enc), cameras, targets, config) if measure else None
        t = Trial(name, x, enc.n_bytes, p, time.perf_counter() - t0)
        trials.append(t)
        return enc, st, t

    def rec(msg: str) -> ProgressRecord:
        nonlocal done
        done += 1
        return clock.record(min(done, clock.total), msg)

    best = None  # (key, enc, st, name, trial)
    if config.target_psnr > 0:
        goal = config.target_psnr
        fallback = None
        for name, groups in vs:
            enc, st, t = trial(name, groups, X_FINEST, True)
            yield rec(f"{name}: finest step, {t.n_bytes:,} B, {t.psnr:.2f} dB")
            if t.psnr < goal:  # unreachable for this variant: keep its best as a fallback
                if fallback is None or t.psnr > fallback[4].psnr:
                    fallback = (t.psnr, enc, st, name, t)
                continue
            lo, hi, good = X_FINEST, X_COARSEST, (enc, st, t)
            enc2, st2, t2 = trial(name, groups, hi, True)
            yield rec(f"{name}: coarsest step, {t2.n_bytes:,} B, {t2.psnr:.2f} dB")
            if t2.psnr >= goal:
                good = (enc2, st2, t2)
            else:
                for _ in range(BISECTION_STEPS):
                    mid = 0.5 * (lo + hi)
                    e3, s3, t3 = trial(name, groups, mid, True)
                    yield rec(f"{name}: step 2^{mid:.2f}, {t3.n_bytes:,} B, {t3.psnr:.2f} dB")
                    if t3.psnr >= goal:
                        lo, good = mid, (e3, s3, t3)
                    else:
                        hi = mid
            if best is None or good[2].n_bytes < best[0]:
                best = (good[2].n_bytes, good[0], good[1], name, good[2])
        if best is None:
            _, enc, st, name, t = fallback
            msg = (f"target {goal:.2f} dB not reached: the best found is {t.psnr:.2f} dB ({goal - t.psnr:.2f} dB short) "
                   f"at {t.n_bytes:,} bytes; the kept Gaussians and 16-bit positions cap the quality (try a lower "
                   f"--prune)")
            return RateResult(enc, st, name, trials, False, msg, t.psnr)
        _, enc, st, name, t = best
        msg = f"chose {name} at step 2^{t.log2_step:.2f}: {t.n_bytes:,} bytes, {t.psnr:.2f} dB on the search views"
        return RateResult(enc, st, name, trials, True, msg, t.psnr)

    size = config.target_size
    for name, groups in vs:
        enc, st, t = trial(name, groups, X_COARSEST, False)
        yield rec(f"{name}: coarsest step, {t.n_bytes:,} B")
        if t.n_bytes > size:
            continue
        lo, hi, good = X_FINEST, X_COARSEST, (enc, st, t)
        for _ in range(BISECTION_STEPS + 1):
            mid = 0.5 * (lo + hi)
            e3, s3, t3 = trial(name, groups, mid, False)
            yield rec(f"{name}: step 2^{mid:.2f}, {t3.n_bytes:,} B")
            if t3.n_bytes <= size:
                hi, good = mid, (e3, s3, t3)
            else:
                lo = mid
        enc, st, t = good
        t.psnr = render_psnr(_scene(enc), cameras, targets, config)
        yield rec(f"{name}: {t.n_bytes:,} B, {t.psnr:.2f} dB")
        if best is None or t.psnr > best[0]:
            best = (t.psnr, enc, st, name, t)
    if best is None:  # no residual variant fits: the predictor alone, if it does
        enc, st, t = trial("no residuals (pure NeuralGS)", (), None, True)
        yield rec(f"no residuals: {t.n_bytes:,} B, {t.psnr:.2f} dB")
        ok = t.n_bytes <= size
        msg = ("only the predictor alone (no residuals) fits" if ok else
               f"target size {size:,} bytes not reached: the smallest file found is {t.n_bytes:,} bytes "
               f"({t.n_bytes - size:,} over; positions alone need about 4 bytes per kept Gaussian: raise --prune)")
        return RateResult(enc, st, t.variant, trials, ok, msg, t.psnr)
    _, enc, st, name, t = best
    msg = f"chose {name} at step 2^{t.log2_step:.2f}: {t.n_bytes:,} bytes, {t.psnr:.2f} dB on the search views"
    return RateResult(enc, st, name, trials, True, msg, t.psnr)


def finer(result: RateResult, model, target, importance, config, dx: float = 0.5) -> tuple[EncodedV2, CodecSettings]:
    """The result's variant at a step 2^dx finer (for confirming on all held-out views)."""
    steps = [v for v in result.settings.steps.values() if v is not None]
    if not steps:
        return result.encoded, result.settings
    groups = tuple(g for g, v in result.settings.steps.items() if v is not None)
    x = math.log2(min(result.settings.steps[g] / GROUP_WEIGHTS[g] for g in groups)) - dx
    st = settings_for(groups, max(x, X_FINEST - 4), config, result.settings.position_bits)
    return encode_v2(model, st, target, importance), st


def levels_of(importance: np.ndarray, config: CompressionConfig) -> np.ndarray:  # pragma: no cover - helper
    from core.codec.ngs_v2 import importance_levels

    return importance_levels(importance, importance.shape[0], settings_for(GROUP_NAMES, 0.0, config).level_fractions)
