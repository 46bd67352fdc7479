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
from core.neural_field import NeuralGSModel
from core.pipeline.config import CompressionConfig
from core.pipeline.evaluation import score_renders
from core.pipeline.progress import ProgressRecord, StageClock, run_to_completion
from core.scene import GaussianScene

log = logging.getLogger(__name__)

GROUP_WEIGHTS = {"opacity": 1.0, "log_scales": 1.0, "rotation": 1.0, "sh_dc": 1.0, "sh_band1": 4.0, "sh_band2": 4.0,
                 "sh_band3": 4.0}
"""Relative residual step of each group (normalised units): higher SH are seen least (sh3-capture at 40 dB:
weight 4 gave 64.5 KB, 2 gave 83 KB, 1 gave 103 KB; the other groups' weights moved donut's size by under 4%)."""
X_FINEST, X_COARSEST = -12.0, -1.0
"""Range of x = log2(Δ): Δ from 1/4096 (well below what 16-bit positions let show) to 1/2 of the range."""
BISECTION_STEPS = 4
SOLVE_MAX = 7
SOLVE_TOLERANCE_DB = 0.15
MIN_BITS = 10
BITS_SHARE = 0.25
PRUNE_TRIES = 3
PRUNE_SPACING = 0.1


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
                config: CompressionConfig) -> float:
    """Mean PSNR (dB) of renders of ``scene`` against ``targets`` (:func:`~core.pipeline.evaluation.score_renders`
    without SSIM): what every trial of the search measures."""
    return run_to_completion(score_renders(scene, cameras, targets, config, stage="search", with_ssim=False))["psnr"]


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
            1.5 ** i for i in range(levels))
        fracs = tuple(DEFAULT_LEVEL_FRACTIONS[: levels - 1]) if levels == 4 else tuple(
            (i + 1) / levels for i in range(levels - 1))
    return CodecSettings(steps=steps, level_steps=lsteps, level_fractions=fracs, predictor=config.predictor,
                         position_bits=bits)


def variants(config: CompressionConfig, sh_degree: int) -> list[tuple[str, tuple[str, ...]]]:
    """The residual-group variants the search tries, from fewest coded groups to most: on SH scenes, every
    higher SH band left to the predictor (its mean, for a constant predictor), then band 1 coded, then bands 1
    and 2, then all allowed groups. Bytes grow with the SH bands (45 of lego's 58 dimensions): leaving them
    to the predictor is often the cheapest way to a target. :func:`encode_to_target` goes on to the next
    variant while one cannot reach the target, and tries one more after the first that can."""
    bands = [f"sh_band{b}" for b in (1, 2, 3) if b <= sh_degree]
    groups = tuple(g for g in GROUP_NAMES
                   if g in config.residual_groups and (not g.startswith("sh_band") or g in bands))
    out = [("residuals: " + _group_names(groups), groups)]
    for b in reversed(bands):
        groups = tuple(g for g in groups if g != b)
        if groups and b in config.residual_groups:
            out.append(("residuals: " + _group_names(groups) + f"; SH bands >= {b[-1]} from the predictor", groups))
    return out[::-1]  # fewest coded groups first


def _group_names(groups: Sequence[str]) -> str:
    return ", ".join(groups)


def _ceiling(src: GaussianScene, scores: torch.Tensor, ratio: float, bits: int, cameras, targets,
             config: CompressionConfig) -> float:
    """PSNR of the scene pruned at ``ratio`` with positions on a ``bits``-bit grid and exact attributes."""
    from core.codec.ngs_format import dequantise_positions, quantise_positions
    from core.pipeline.importance import prune

    kept, _ = prune(src, scores, ratio)
    p = kept.means.detach().cpu().numpy()
    lo, hi = p.min(axis=0).astype(np.float32), p.max(axis=0).astype(np.float32)
    q = torch.from_numpy(dequantise_positions(quantise_positions(p, lo, hi, bits), lo, hi, bits)).to(kept.means)
    kept = GaussianScene(q, kept.quats, kept.log_scales, kept.opacity_logits, kept.sh_dc, kept.sh_rest)
    return render_psnr(kept, cameras, targets, config)


class Ceilings:
    """Ceiling PSNRs (exact attributes; pruned; positions on a grid) on the search views, cached."""

    def __init__(self, src: GaussianScene, scores: torch.Tensor, cameras, targets, config: CompressionConfig):
        self.args = (src, scores)
        self.cameras, self.targets, self.config = cameras, targets, config
        self.cache: dict[tuple[float, int], float] = {}
        self.tried: list[dict] = []

    def __call__(self, ratio: float, bits: int = 16) -> float:
        key = (round(ratio, 6), bits)
        if key not in self.cache:
            self.cache[key] = _ceiling(*self.args, ratio, bits, self.cameras, self.targets, self.config)
            self.tried.append({"prune": key[0], "bits": bits, "psnr": round(self.cache[key], 3)})
        return self.cache[key]

    def most_pruning(self, target_psnr: float) -> Generator[ProgressRecord, None, float]:
        """The largest of ``config.prune_candidates`` whose 16-bit ceiling clears target + ceiling_margin_db
        (bisected over the sorted candidates; the smallest candidate when none does)."""
        cands = sorted(set(self.config.prune_candidates), reverse=True)
        need = target_psnr + self.config.ceiling_margin_db
        clock = StageClock("prune", len(cands).bit_length() + 1)
        lo, hi = 0, len(cands) - 1
        if self(cands[hi]) < need:
            return cands[hi]
        while lo < hi:
            mid = (lo + hi) // 2
            p = self(cands[mid])
            yield clock.record(min(len(self.tried), clock.total), f"prune {cands[mid]:.2f}: ceiling {p:.2f} dB "
                                                                   f"(need {need:.2f})")
            if p >= need:
                hi = mid
            else:
                lo = mid + 1
        return cands[lo]

    def fewest_bits(self, ratio: float, target_psnr: float) -> int:
        """The fewest position bits (down to MIN_BITS) whose positions add at most BITS_SHARE of the MSE
        headroom between the 16-bit ceiling and the target (measured on donut: 16 -> 10 bits cost 1.4 dB of a
        45.5 dB ceiling and saved 55% of the position bytes, 24% of the file)."""
        mse = lambda db: 10.0 ** (-db / 10.0)
        top = self(ratio, 16)
        allowed = mse(top) + BITS_SHARE * max(0.0, mse(target_psnr) - mse(top))
        lo, hi = MIN_BITS, 16
        while lo < hi:
            mid = (lo + hi) // 2
            if mse(self(ratio, mid)) <= allowed:
                hi = mid
            else:
                lo = mid + 1
        return lo


def prune_candidates(most: float, config: CompressionConfig) -> list[float]:
    """The ratios searched in full: the most pruning whose ceiling clears the margin, and up to
    ``PRUNE_TRIES - 1`` less pruned ones ``PRUNE_SPACING`` apart (pruning less raises the ceiling, so coarser
    residual steps reach the target: on sh3-capture prune 0.5 gave a 41.5 KB file where 0.6 gave 83 KB)."""
    out = [most]
    for i in range(1, PRUNE_TRIES):
        r = round(most - i * PRUNE_SPACING, 6)
        if r < min(config.prune_candidates, default=0.0) - 1e-9 or r < 0:
            break
        out.append(r)
    return out


def subset_model(model: NeuralGSModel, keep: torch.Tensor, target: torch.Tensor, importance: torch.Tensor,
                 ) -> tuple[NeuralGSModel, torch.Tensor, torch.Tensor, list[int]]:
    """The model restricted to the Gaussians where ``keep`` [N] is True, its clusters re-sorted largest first
    (empty ones dropped); with the matching target [M, D] and importance [M], and for each new cluster the
    index of the old one. The MLPs are shared, not copied (a constant predictor is recomputed when encoding)."""
    offs = model.cluster_offsets()
    keep = keep.to(torch.bool).cpu()
    sizes = [int(keep[offs[c]: offs[c + 1]].sum()) for c in range(model.n_clusters)]
    perm = [c for c in sorted(range(model.n_clusters), key=lambda c: -sizes[c]) if sizes[c] > 0]
    idx = torch.cat([torch.nonzero(keep[offs[c]: offs[c + 1]]).flatten() + offs[c] for c in perm]) if perm else \
        torch.zeros(0, dtype=torch.int64)
    sub = NeuralGSModel(model.arch, model.positions[idx], [sizes[c] for c in perm], [model.fields[c] for c in perm],
                        model.pos_lo, model.pos_hi, model.attr_lo, model.attr_hi, dict(model.meta))
    return sub, target[idx], importance[idx], perm


def _solve_step(evaluate, goal: float, x0: float, report):
    """The largest x = log2(step) in [X_FINEST, X_COARSEST] whose PSNR reaches ``goal``, in few evaluations.

    ``evaluate(x)`` -> (encoded, settings, Trial with .psnr). Model: MSE(Δ) = m0 + c Δ² (quantisation noise
    on top of what the step cannot fix), fitted through the last two points and solved for the target MSE
    (a secant step), kept inside the bracket [largest passing x, smallest failing x] and falling back to
    bisection when the model is unusable. Stops when a passing point lies within SOLVE_TOLERANCE_DB of the
    goal or the bracket is narrower than 1/16 octave; at most SOLVE_MAX evaluations. A generator (yields
    ``report(trial)``) returning (best passing (enc, st, trial) or None, the closest point seen).
    """
    mse = lambda db: 10.0 ** (-db / 10.0)
    pts: list[tuple[float, float]] = []  # (x, mse)
    lo, hi, good, closest = None, None, None, None
    x = min(max(x0, X_FINEST), X_COARSEST)
    for _ in range(SOLVE_MAX):
        res = evaluate(x)
        t = res[2]
        yield report(t)
        pts.append((x, mse(t.psnr)))
        if closest is None or t.psnr > closest[2].psnr:
            closest = res
        if t.psnr >= goal:
            if lo is None or x > lo:
                lo, good = x, res
            if t.psnr - goal <= SOLVE_TOLERANCE_DB or x >= X_COARSEST:
                break
        else:
            if hi is None or x < hi:
                hi = x
            if x <= X_FINEST:
                break
        if lo is not None and hi is not None and hi - lo < 1.0 / 16:
            break
        nxt = None
        if len(pts) >= 2:
            (xa, ma), (xb, mb) = pts[-2], pts[-1]
            da, db = 4.0 ** xa, 4.0 ** xb  # Δ²
            if da != db:
                c = (ma - mb) / (da - db)
                m0 = ma - c * da
                if c > 0 and mse(goal) > m0:
                    nxt = 0.5 * math.log2((mse(goal) - m0) / c) - 0.02  # aim a hair below the goal's step
                elif c > 0 and lo is None and X_FINEST not in [p[0] for p in pts]:
                    nxt = X_FINEST  # the model says no step reaches the goal: check the finest once
        if nxt is None:
            nxt = x + 1.0 if hi is None else (x - 1.0 if lo is None else 0.5 * (lo + hi))
        if lo is not None and hi is not None and not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
        elif lo is not None and nxt <= lo:
            nxt = lo + 0.5
        elif hi is not None and nxt >= hi:
            nxt = hi - 0.5
        x = min(max(nxt, X_FINEST), X_COARSEST)
    return good, closest


def _scene(enc: EncodedV2) -> GaussianScene:
    with torch.no_grad():
        return enc.model.decode().detach()


def encode_to_target(model: NeuralGSModel, target: torch.Tensor, importance: torch.Tensor,
                     cameras: Sequence[Camera], targets: Sequence[torch.Tensor], config: CompressionConfig,
                     bits: int = 16, x_hint: float = -5.0, label: str = "",
                     stage: str = "search") -> Generator[ProgressRecord, None, RateResult]:
    """Search steps and variants for ``config.target_psnr`` (dB) or ``config.target_size`` (bytes), with
    positions on a ``bits``-bit grid; progress is reported as ``stage``."""
    vs = variants(config, model.arch.sh_degree)
    per_variant = BISECTION_STEPS + 3
    clock = StageClock(stage, per_variant * len(vs))
    trials: list[Trial] = []
    done = 0

    def trial(name: str, groups, x: float | None, measure: bool) -> tuple[EncodedV2, CodecSettings, Trial]:
        t0 = time.perf_counter()
        name = f"{name} [{label}]" if label else name
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
        fallback, reachable = None, 0
        for name, groups in vs:
            if reachable >= 2:  # the first variant that reaches the target and the next one (one more band)
                break
            found = yield from _solve_step(lambda x, name=name, groups=groups: trial(name, groups, x, True),
                                           goal, x_hint,
                                           lambda t: rec(f"{t.variant}: step 2^{t.log2_step:.2f}, {t.n_bytes:,} B, "
                                                         f"{t.psnr:.2f} dB"))
            good, closest = found
            if good is None:  # even the finest step misses: more coded groups may reach it
                if fallback is None or closest[2].psnr > fallback[4].psnr:
                    fallback = (closest[2].psnr, closest[0], closest[1], name, closest[2])
                continue
            reachable += 1
            if best is None or good[2].n_bytes < best[0]:
                best = (good[2].n_bytes, good[0], good[1], name, good[2])
        if best is None:
            _, enc, st, name, t = fallback
            msg = (f"target {goal:.2f} dB not reached: the best found is {t.psnr:.2f} dB "
                   f"({goal - t.psnr:.2f} dB short) at {t.n_bytes:,} bytes; the kept Gaussians and their positions "
                   f"cap the quality (try a lower --prune)")
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


def group_log2_step(settings: CodecSettings) -> float:
    """x of :func:`settings_for` (step of group g = 2^x · GROUP_WEIGHTS[g]) that produced ``settings`` (some
    group must be coded)."""
    return min(math.log2(v / GROUP_WEIGHTS[g]) for g, v in settings.steps.items() if v is not None)


def finer(result: RateResult, model, target, importance, config, dx: float = 0.5) -> tuple[EncodedV2, CodecSettings]:
    """The result's variant at a step 2^dx finer (for confirming on all held-out views)."""
    steps = [v for v in result.settings.steps.values() if v is not None]
    if not steps:
        return result.encoded, result.settings
    groups = tuple(g for g, v in result.settings.steps.items() if v is not None)
    x = group_log2_step(result.settings) - dx
    st = settings_for(groups, max(x, X_FINEST - 4), config, result.settings.position_bits)
    return encode_v2(model, st, target, importance), st
