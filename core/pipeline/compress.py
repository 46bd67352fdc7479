"""The whole NeuralGS compression (DESIGN §5): views -> importance -> prune -> cluster -> fit -> fine-tune.

:func:`compress` is a generator of :class:`ProgressRecord` whose return value is a
:class:`CompressionResult`; drive it with :func:`run_to_completion` or step by step (pause by not
calling ``next()``, cancel with ``close()``). Nothing is written to disk and the input scene is
never modified. The final, held-out evaluation ("evaluate" stage) renders the decoded model at the
held-out views and compares with their targets.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generator, Sequence

import torch

from core.errors import ConfigError
from core.camera import Camera
from core.codec.ngs import encode_ngs
from core.codec.ngs_v2 import encode_v2
from core.neural_field import FieldArch, NeuralGSModel, normalise, scene_to_attributes, width_within_budget
from core.pipeline.config import CompressionConfig
from core.pipeline.evaluation import score_renders
from core.pipeline.coadapt import coadapt
from core.pipeline.finetune import finetune
from core.pipeline.fit import fit_clusters
from core.pipeline.importance import importance_scores, prune
from core.pipeline.kmeans import kmeans_stage, normalised_features
from core.pipeline.progress import ProgressRecord, StageClock, run_to_completion
from core.pipeline.qat import quantisation_aware
from core.pipeline.rate_control import (
    Ceilings,
    RateResult,
    encode_to_target,
    finer,
    group_log2_step,
    prune_candidates,
    search_subset,
    settings_for,
    subset_model,
)
from core.pipeline.views import ViewSet, build_views
from core.scene import GaussianScene

log = logging.getLogger(__name__)

MIN_PER_CLUSTER = 500
"""With residual coding, at least this many kept Gaussians per cluster (fewer clusters for small scenes)."""

__all__ = ["CompressionResult", "compress", "resolve_device", "run_to_completion"]


@dataclass
class CompressionResult:
    """What :func:`compress` returns.

    model: the compressed scene (MLP weights already rounded to fp16, as stored); history:
    {"fit": [(step, {cluster: loss})], "finetune": [(step, total loss)]}; timings: seconds of
    work per stage (pauses excluded); importance [n_kept]: S_j of the kept Gaussians in model
    order; views: the training / held-out views and targets; metrics: held-out evaluation
    (see :func:`evaluate`) or None; fit_losses: final exact Eq. 4 loss per cluster; n_bytes: size
    of the model encoded as .ngs v1 (in memory; nothing is written).
    """

    model: NeuralGSModel
    history: dict
    timings: dict[str, float]
    importance: torch.Tensor
    n_original: int
    n_kept: int
    views: ViewSet
    metrics: dict | None = None
    fit_losses: dict[int, float] = field(default_factory=dict)
    n_bytes: int = 0
    encoded: object | None = None  # core.codec.ngs_v2.EncodedV2: the file's bytes (v2), None for v1
    codec: dict | None = None  # what the v2 encoder / rate control tried and chose


def resolve_device(name: str) -> torch.device:
    """The torch device for a ``CompressionConfig.device``: "auto" = cuda when available, else cpu.

    Raises ValueError for "cuda" without CUDA.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(name)


def thread_count(setting: int) -> int:
    """Threads for a ``CompressionConfig.threads`` setting: 0 = max(1, CPU count - 1); -1 = 0 (unchanged)."""
    if setting == 0:
        return max(1, (os.cpu_count() or 1) - 1)
    return max(0, setting)


@contextmanager
def limited_threads(n: int):
    """Run with ``n`` torch intra-op threads and ``n`` numba threads (this thread), restoring both after.

    Why: numba's OpenMP layer sets the calling thread's OpenMP thread count to numba's at every
    parallel launch (the renderer), after which torch runs even small ops as 2-thread OpenMP
    regions; on a shared, oversubscribed 2-core machine each such region can wait a scheduler
    quantum for its second thread (measured: torch.sin on 300x18 floats 15 us -> 8 ms after one
    render; a fitting step 8 -> 100 ms). ``n`` = 0 changes nothing.
    """
    if n <= 0:
        yield
        return
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


def _timed(gen: Generator, name: str, timings: dict[str, float]) -> Generator:
    """Run a stage generator, adding the seconds spent inside it (not while paused) to ``timings[name]``."""
    spent, start = 0.0, time.perf_counter()
    try:
        while True:
            try:
                rec = next(gen)
            except StopIteration as stop:
                spent += time.perf_counter() - start
                return stop.value
            spent += time.perf_counter() - start
            yield rec
            start = time.perf_counter()
    finally:
        timings[name] = timings.get(name, 0.0) + spent
        gen.close()


def _fit_width_to_budget(config: CompressionConfig, n_kept: int, sh_degree: int) -> CompressionConfig:
    """``config`` with ``hidden`` narrowed so that the MLPs stay within ``max_params_per_gaussian`` x n_kept."""
    if config.max_params_per_gaussian <= 0:
        return config
    arch = FieldArch(sh_degree, config.hidden, config.layers, config.pe_freqs)
    width = width_within_budget(arch, config.effective_clusters, config.max_params_per_gaussian * n_kept)
    if width == config.hidden:
        return config
    log.info("compress: MLP width %d -> %d (at most %g MLP parameters per kept Gaussian, %d kept)",
             config.hidden, width, config.max_params_per_gaussian, n_kept)
    return config.replace(hidden=width)


def compress(scene: GaussianScene, config: CompressionConfig, *, cameras: Sequence[Camera] | None = None,
             dataset_images: bool | None = None) -> Generator[ProgressRecord, None, CompressionResult]:
    """Compress ``scene`` with NeuralGS; a generator of progress records returning a CompressionResult.

    cameras: a CameraSet / list of Camera (training and held-out views, every ``test_every``-th
    held out) or None for generated orbit views; dataset_images: use the cameras' image files as
    targets (None: when all exist; False: render the original from the cameras instead).
    """
    with limited_threads(thread_count(config.threads)):
        return (yield from _compress(scene, config, cameras, dataset_images))


@dataclass
class PrunePlan:
    """What the pruning phase decided. scene/scores: the scene the later stages prune from (the source, or
    the co-adapted kept Gaussians) and their importance; ratios: the prune ratios rate control searches (of
    ``scene``); pre_ratio: the share of the source already pruned away before co-adaptation (0 without);
    ceilings: the cached ceiling PSNRs of ``scene``, None without a PSNR target."""

    scene: GaussianScene
    scores: torch.Tensor
    ratios: list[float]
    pre_ratio: float = 0.0
    ceilings: Ceilings | None = None
    history: list[tuple[int, float]] = field(default_factory=list)

    def source_ratio(self, ratio: float) -> float:
        """The share of the source's Gaussians pruned when ``ratio`` of ``scene`` is."""
        return 1.0 - (1.0 - self.pre_ratio) * (1.0 - ratio)


@dataclass
class RateCandidate:
    """One prune ratio searched in full by rate control: its result and what it was searched on.

    model/target/importance: the fitted model restricted to the ratio's Gaussians, their true normalised
    attributes [M, D] and S_j [M]; perm: for each of its clusters the fitted model's cluster index; ratio:
    the share of the source pruned; bits: position bits; label: how progress and logs name it."""

    rate: RateResult
    model: NeuralGSModel
    target: torch.Tensor
    importance: torch.Tensor
    perm: list[int]
    ratio: float
    bits: int
    label: str
    fit: "PlanFit | None" = None  # the plan and fit it was searched on
    before_qat: object | None = None  # a QAT'd file and the file it was trained from share this token


def _compress(scene: GaussianScene, config: CompressionConfig, cameras, dataset_images):
    device = resolve_device(config.device)
    timings: dict[str, float] = {}
    src = scene.detach().to(device, torch.float32)
    n_original = src.num_gaussians
    if n_original == 0:
        raise ConfigError("the scene has no Gaussians")
    log.info("compress: %d Gaussians, SH degree %d, preset %s, effort %s, device %s", n_original, src.sh_degree,
             config.preset, config.effort, device)

    views = yield from _timed(build_views(src, config, cameras, dataset_images), "views", timings)
    scores = yield from _timed(importance_scores(src, views.train_cameras, config.beta, config.render_backend),
                               "importance", timings)
    search_idx = search_subset(views.n_test, search_view_count(views, config))
    search_cams = [views.test_cameras[i] for i in search_idx]
    search_tgts = [views.test_targets[i] for i in search_idx]

    plans = yield from _plan_pruning(src, scores, views, config, search_cams, search_tgts, timings)
    targeted = config.format_version == 2 and bool(config.target_psnr or config.target_size)
    if targeted and not search_cams:
        raise ConfigError("a PSNR or size target needs held-out views (n_test_views >= 1)")
    fits, cands = [], []
    for plan in plans:  # several only when co-adaptation tries more than one prune ratio
        fit = yield from _fit_plan(plan, views, config, timings, n_original)
        fits.append(fit)
        if targeted:
            found = yield from _search_ratios(plan, fit.model, fit.target, fit.fitted.weights,
                                              fit.kept_idx[fit.fitted.order], search_cams, search_tgts, fit.config,
                                              timings)
            for c in found:
                c.fit = fit
            cands += found
    cands.sort(key=lambda c: (not c.rate.reached, c.rate.encoded.n_bytes))
    fit = cands[0].fit if cands else fits[0]
    plan, config, fitted = fit.plan, fit.config, fit.fitted
    model, importance = fit.model, fitted.weights
    history = {"coadapt": plan.history, "fit": fitted.history, "finetune": fit.tuned.history, "qat": []}
    encoded, chosen, n_kept, fit_losses = None, None, fit.n_kept, fitted.final_losses
    metrics, all_trials = None, []
    if config.format_version == 2:
        if targeted:
            all_trials = [t for c in cands for t in c.rate.trials]
            if config.qat_iters > 0:
                cands[0:1] = yield from _quantisation_aware(cands[0], views, config, search_cams, search_tgts,
                                                            timings, history)
                all_trials += cands[0].rate.trials if cands[0].before_qat is not None else []
            chosen = cands[0]
            log.info("compress: rate control chose prune %.2f (%d Gaussians): %s", chosen.ratio,
                     chosen.model.num_gaussians, chosen.rate.message)
            if config.target_psnr and views.n_test:  # a PSNR target is confirmed on every view
                chosen, metrics = yield from _confirm(cands, views, config, timings, search_cams, search_tgts)
            encoded = chosen.rate.encoded
            chosen.rate.trials = all_trials
            fit = chosen.fit
            plan, fitted = fit.plan, fit.fitted
            history.update(coadapt=plan.history, fit=fitted.history, finetune=fit.tuned.history)
            config = fit.config.replace(prune_ratio=chosen.ratio)
            n_kept = chosen.model.num_gaussians
            fit_losses = {i: fitted.final_losses[c] for i, c in enumerate(chosen.perm) if c in fitted.final_losses}
            importance = chosen.importance[torch.from_numpy(encoded.order)]
        else:
            t0 = time.perf_counter()
            encoded = encode_v2(model, settings_for(config.residual_groups, None, config), fit.target, importance)
            timings["encode"] = time.perf_counter() - t0
            importance = importance[torch.from_numpy(encoded.order)]
        model = encoded.model
    if metrics is None and config.evaluate and views.n_test:
        metrics = yield from _evaluate_model(model, views, config, timings)
    if metrics is not None:
        metrics["n_test"] = views.n_test
        metrics["target_source"] = views.source
        log.info("compress: held-out PSNR %.2f dB, SSIM %.4f over %d views", metrics["psnr"], metrics["ssim"],
                 views.n_test)
    model.meta.update({
        "config": config.to_dict(),
        "timings": dict(timings),
        "n_original": n_original,
        "n_kept": n_kept,
        "views": {"source": views.source, "n_train": views.n_train, "n_test": views.n_test},
    })
    if metrics is not None:
        model.meta["heldout"] = {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "n_views": views.n_test}
    rate_report = None
    if encoded is not None:
        prune_trials = plan.ceilings.tried if plan.ceilings else None
        rate = chosen.rate if chosen is not None else None
        rate_report = _rate_report(config, encoded, rate, prune_trials, metrics)
        model.meta["codec"] = _file_codec(rate_report)
        encoded.set_meta(file_meta(model.meta))
        if chosen is not None and config.target_size:
            encoded, model, importance, rate_report, metrics = yield from _fit_header_in_budget(
                chosen, encoded, model, metrics, views, config, search_cams, search_tgts, timings, prune_trials)
    n_bytes = encoded.n_bytes if encoded is not None else len(encode_ngs(model))
    log.info("compress: %d -> %d Gaussians, %d clusters, %d bytes as .ngs", n_original, n_kept,
             model.n_clusters, n_bytes)
    return CompressionResult(model, history, timings, importance, n_original, n_kept, views,
                             metrics, fit_losses, n_bytes, encoded, rate_report)


@dataclass
class PlanFit:
    """One prune plan carried through pruning, clustering, fitting and fine-tuning. config: the run's
    configuration as it applies to this plan (prune ratio of the source, MLP width); target [M, D]: the kept
    Gaussians' true normalised attributes in the fitted model's order; kept_idx [M]: their index in
    ``plan.scene``."""

    plan: PrunePlan
    config: CompressionConfig
    kept_idx: torch.Tensor
    fitted: object  # core.pipeline.fit.FitResult
    tuned: object  # core.pipeline.finetune.FinetuneResult
    target: torch.Tensor

    @property
    def model(self) -> NeuralGSModel:
        return self.tuned.model

    @property
    def n_kept(self) -> int:
        return int(self.kept_idx.shape[0])


def _fit_plan(plan: PrunePlan, views: ViewSet, config: CompressionConfig, timings: dict,
              n_original: int) -> Generator[ProgressRecord, None, PlanFit]:
    """Prune at the plan's least pruning ratio, cluster, fit the MLPs (Eq. 4) and fine-tune them (Eq. 5-7)."""
    t0 = time.perf_counter()
    kept, kept_idx = prune(plan.scene, plan.scores, min(plan.ratios))
    config = config.replace(prune_ratio=plan.source_ratio(min(plan.ratios)))
    timings["prune"] = timings.get("prune", 0.0) + time.perf_counter() - t0
    if not plan.pre_ratio:  # co-adaptation pruned (and said so) before it ran
        yield StageClock("prune", 1).record(1, f"kept {kept.num_gaussians} of {n_original} Gaussians")
    attrs = scene_to_attributes(kept)
    labels = yield from _cluster(kept, attrs, config, timings)
    config = _fit_width_to_budget(config, kept.num_gaussians, kept.sh_degree)
    if config.format_version == 2 and config.residual_groups and config.predictor == "constant" and config.fit_iters:
        # no MLP can be stored: fitting one is wasted time (the fit still groups the Gaussians by cluster)
        log.info("compress: constant predictors only: the MLPs are not fitted")
        config = config.replace(fit_iters=0, finetune_iters=0)
    fitted = yield from _timed(fit_clusters(kept.means, attrs, labels, plan.scores[kept_idx], config,
                                            kept.sh_degree), "fit", timings)
    tuned = yield from _timed(finetune(fitted.model, views, config), "finetune", timings)
    target = normalise(attrs[fitted.order], tuned.model.attr_lo, tuned.model.attr_hi).detach()
    return PlanFit(plan, config, kept_idx, fitted, tuned, target)


def _plan_pruning(src: GaussianScene, scores: torch.Tensor, views: ViewSet, config: CompressionConfig,
                  search_cams, search_tgts, timings: dict) -> Generator[ProgressRecord, None, list[PrunePlan]]:
    """Choose how much to prune, and co-adapt the kept Gaussians when the effort asks for it; the plans that
    rate control then searches in full (one, or two when co-adaptation leaves the choice open).

    Without co-adaptation: with a PSNR target, the largest prune candidate whose exact-attribute ceiling
    clears target + margin, and up to two less pruned ratios (:func:`prune_candidates`); else the config's.
    With co-adaptation (``coadapt_iters`` > 0): the kept set is co-adapted at the largest candidate whose exact
    ceiling clears target + margin - ``coadapt_recovery_db`` (what co-adaptation is expected to win back). When
    the co-adapted ceiling still misses target + margin, the ratio of the exact search is co-adapted too, and
    both are searched when the harder one still clears the target by COADAPT_MIN_HEADROOM_DB (its file may be
    the smaller one: fewer Gaussians at finer steps; lego against its images). Rate control then works on the
    co-adapted Gaussians (ratio 0 of them)."""
    targeted = bool(config.format_version == 2 and config.target_psnr and config.prune_candidates and search_cams)
    if not targeted:
        if config.coadapt_iters <= 0:
            return [PrunePlan(src, scores, [config.prune_ratio])]
        return [(yield from _coadapt_at(src, scores, config.prune_ratio, views, config, timings, None))]
    ceilings = Ceilings(src, scores, search_cams, search_tgts, config)
    most = yield from _timed(ceilings.most_pruning(config.target_psnr), "prune search", timings)
    if config.coadapt_iters <= 0:
        ratios = prune_candidates(most, config)
        log.info("compress: prune ratios %s searched in full (ceilings %s)", ratios, ceilings.tried)
        return [PrunePlan(src, scores, ratios, 0.0, ceilings)]
    harder = yield from _timed(ceilings.most_pruning(config.target_psnr - config.coadapt_recovery_db), "prune search",
                               timings)
    need = config.target_psnr + config.ceiling_margin_db
    plans, tried = [], ceilings.tried
    for ratio in dict.fromkeys((harder, most)):
        plan = yield from _coadapt_at(src, scores, ratio, views, config, timings, (search_cams, search_tgts))
        top = plan.ceilings(0.0)
        log.info("compress: prune %.2f co-adapted: ceiling %.2f dB on the search views (exact attributes %.2f, "
                 "need %.2f)", ratio, top, ceilings(ratio), need)
        tried.append({"prune": ratio, "bits": 16, "psnr": round(top, 3), "coadapted": True})
        plan.ceilings.tried = tried  # one record of every ceiling measured, whichever plan is chosen
        if top >= need or ratio == most:
            plans.append(plan)
            break
        if top >= config.target_psnr + COADAPT_MIN_HEADROOM_DB:
            plans.append(plan)
    return plans


def _coadapt_at(src: GaussianScene, scores: torch.Tensor, ratio: float, views: ViewSet, config: CompressionConfig,
                timings: dict, search) -> Generator[ProgressRecord, None, PrunePlan]:
    """Prune ``src`` at ``ratio`` and co-adapt what is kept (:func:`core.pipeline.coadapt.coadapt`)."""
    kept, kept_idx = prune(src, scores, ratio)
    yield StageClock("prune", 1).record(1, f"kept {kept.num_gaussians} of {src.num_gaussians} Gaussians (prune "
                                           f"{ratio:.2f}) to co-adapt")
    trained = yield from _timed(coadapt(kept, views, config), "coadapt", timings)
    ceilings = None if search is None else Ceilings(trained.scene, scores[kept_idx], search[0], search[1], config)
    return PrunePlan(trained.scene, scores[kept_idx], [0.0], ratio, ceilings, trained.history)


def _cluster(kept: GaussianScene, attrs: torch.Tensor, config: CompressionConfig, timings: dict):
    """Cluster labels [M] of the kept Gaussians (k-means on positions and attributes; one cluster when off)."""
    k = config.effective_clusters
    if config.format_version == 2 and config.residual_groups and k > 1:
        # residual coding: each cluster's side information (a constant predictor, D Laplace scales, its header
        # entry) costs about 3 D + 100 bytes; below MIN_PER_CLUSTER Gaussians a cluster costs more than it saves
        # (truncated-sh3, 45 kept: 8 clusters 7.2 KB, header included; 1 cluster far less)
        k = max(1, min(k, kept.num_gaussians // MIN_PER_CLUSTER))
    if k > 1:
        feats = normalised_features(torch.cat([kept.means, attrs], dim=1), config.kmeans_range_pct)
        km = yield from _timed(kmeans_stage(feats, k, config.kmeans_iters, config.seed), "cluster", timings)
        return km.labels
    timings["cluster"] = 0.0
    yield StageClock("cluster", 1).record(1, "one cluster (clustering switched off)")
    return torch.zeros(kept.num_gaussians, dtype=torch.int64, device=kept.means.device)


def _search_ratios(plan: PrunePlan, model: NeuralGSModel, target: torch.Tensor, weights: torch.Tensor,
                   base_idx: torch.Tensor, search_cams, search_tgts, config: CompressionConfig,
                   timings: dict) -> Generator[ProgressRecord, None, list[RateCandidate]]:
    """Rate control at every planned prune ratio, most pruning first; the candidates smallest reached file
    first (the others are the fall-backs if all held-out views disagree). ``base_idx`` [M]: the index in
    ``plan.scene`` of every Gaussian of the fitted ``model``."""
    x_hint, cands = -5.0, []
    t_search = time.perf_counter()
    several = len(plan.ratios) > 1 or plan.ceilings is not None
    for r in sorted(plan.ratios, reverse=True):  # most pruning first
        bits = plan.ceilings.fewest_bits(r, config.target_psnr) if plan.ceilings is not None else 16
        keep = torch.isin(base_idx, prune(plan.scene, plan.scores, r)[1])
        sub, sub_target, sub_imp, perm = subset_model(model, keep, target, weights)
        ratio = plan.source_ratio(r)
        label = f"prune {ratio:.2f}, {bits}-bit positions" if several else ""
        rr = yield from _timed(encode_to_target(sub, sub_target, sub_imp, search_cams, search_tgts, config, bits,
                                                x_hint, label), "search", timings)
        log.info("compress: %s: %s", label or "search", rr.message)
        x = _finest_log2_step(rr.settings)
        if x is not None:
            x_hint = x
        cands.append(RateCandidate(rr, sub, sub_target, sub_imp, perm, ratio, bits, label))
    cands.sort(key=lambda c: (not c.rate.reached, c.rate.encoded.n_bytes))
    log.info("compress: rate control searched %d prune ratio(s) in %.1f s", len(cands), time.perf_counter() - t_search)
    return cands


def _finest_log2_step(settings) -> float | None:
    """log2 of the smallest coded group step of ``settings`` (None when nothing is coded)."""
    steps = [v for v in settings.steps.values() if v is not None]
    return math.log2(min(steps)) if steps else None


def _quantisation_aware(cand: RateCandidate, views: ViewSet, config: CompressionConfig, search_cams, search_tgts,
                        timings: dict, history: dict) -> Generator[ProgressRecord, None, list[RateCandidate]]:
    """Quantisation-aware fine-tuning of ``cand`` (:mod:`core.pipeline.qat`) at a step ``qat_coarsen`` octaves
    coarser than the one rate control chose, then rate control again on the trained attributes. Returns the
    candidates to confirm in its place: the trained one and ``cand`` (siblings) when the trained file is smaller
    on the search views, else ``cand`` alone."""
    groups = tuple(g for g, v in cand.rate.settings.steps.items() if v is not None)
    if not groups:
        return cand
    x = group_log2_step(cand.rate.settings) + config.qat_coarsen
    coarse = settings_for(groups, x, config, cand.rate.settings.position_bits)
    enc = encode_v2(cand.model, coarse, cand.target, cand.importance)
    trained = yield from _timed(quantisation_aware(cand.model, cand.target, cand.importance, enc, coarse, views,
                                                   config), "qat", timings)
    history["qat"] = trained.history
    label = (cand.label + ", " if cand.label else "") + "after QAT"
    rr = yield from _timed(encode_to_target(cand.model, trained.target, cand.importance, search_cams, search_tgts,
                                            config, cand.bits, x, label, stage="qat"), "search", timings)
    log.info("compress: after quantisation-aware fine-tuning: %s", rr.message)
    token = object()
    new = dataclasses.replace(cand, rate=rr, target=trained.target, label=label, before_qat=token)
    if rr.reached and (not cand.rate.reached or rr.encoded.n_bytes <= cand.rate.encoded.n_bytes):
        return [new, dataclasses.replace(cand, before_qat=token)]  # both are confirmed on all views
    log.info("compress: quantisation-aware fine-tuning did not pay (%s B vs %s B): kept the file before it",
             f"{rr.encoded.n_bytes:,}", f"{cand.rate.encoded.n_bytes:,}")
    return [cand]


def _fit_header_in_budget(chosen: RateCandidate, encoded, model, metrics, views, config, search_cams, search_tgts,
                          timings, prune_trials):
    """A size target includes the header: while the run's record pushed the file over it, search again with
    the budget shrunk by what the header added (at most three times)."""
    importance = chosen.importance[torch.from_numpy(encoded.order)]
    rate = chosen.rate
    rate_report = _rate_report(config, encoded, rate, prune_trials, metrics)
    bare = encoded.n_bytes
    for _ in range(3):
        if encoded.n_bytes <= config.target_size:
            break
        over = encoded.n_bytes - config.target_size
        budget = config.replace(target_size=max(1, bare - over - 8))
        rate = yield from _timed(encode_to_target(chosen.model, chosen.target, chosen.importance, search_cams,
                                                  search_tgts, budget, rate.settings.position_bits), "search", timings)
        encoded = rate.encoded
        importance = chosen.importance[torch.from_numpy(encoded.order)]
        model = _replace_model(model, encoded.model)
        rate_report = _rate_report(config, encoded, rate, prune_trials, None)
        model.meta["codec"] = _file_codec(rate_report)
        bare = encoded.n_bytes
        if metrics is not None:  # the held-out numbers of the file actually written
            m2 = yield from _evaluate_encoded(encoded, views, config, timings)
            metrics.update(psnr=m2["psnr"], ssim=m2["ssim"], per_view=m2["per_view"])
            model.meta["heldout"] = {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "n_views": views.n_test}
            rate_report = _rate_report(config, encoded, rate, prune_trials, metrics)
        encoded.set_meta(file_meta(model.meta))
    return encoded, model, importance, rate_report, metrics


def _confirm(cands: list[RateCandidate], views: ViewSet, config: CompressionConfig, timings: dict, search_cams,
             search_tgts) -> Generator[ProgressRecord, None, tuple[RateCandidate, dict]]:
    """Confirm a PSNR target on every held-out view, smallest candidate first.

    A candidate that falls short is searched again with its goal on the search views raised by how much kinder
    they were than all views (lego against its images: 33.57 dB on 3 search views was 33.04 dB on all 13);
    one that beats it by more than SURPLUS_DB, with its goal lowered by how much harder they were (kept only
    when all views still reach the target),
    then given a finer step when quantisation is what is short; when pruning caps it, the next prune ratio is
    tried (guitar: prune 0.7 cleared 41 dB on 3 search views but capped all 8 views near 38.9 dB). Returns
    (the chosen candidate, its metrics); when none reaches the target, the best one, marked not reached.
    A file made by quantisation-aware fine-tuning and the file before it (siblings: the same ``before_qat``)
    are both confirmed and the smaller that reaches the target wins: QAT's gain on the search views does not
    always hold on all views (guitar: 190 KB at 40.6 dB on the search views needed 239 KB on all 8; the file
    before it 225 KB).
    """
    goal = config.target_psnr
    best, passing = None, []
    for i, cand in enumerate(cands):
        rate = cand.rate
        metrics = yield from _evaluate_encoded(rate.encoded, views, config, timings)
        offset = (rate.search_psnr or 0.0) - metrics["psnr"]
        if metrics["psnr"] < goal and rate.reached and offset > 0.05:
            log.info("compress: prune %.2f: %.2f dB on all held-out views, %.2f dB below the search views: searching "
                     "again for %.2f dB on them", cand.ratio, metrics["psnr"], offset, goal + offset + 0.05)
            x = _finest_log2_step(rate.settings)
            hint = x - 0.3 if x is not None else -5.0
            again = yield from _timed(encode_to_target(cand.model, cand.target, cand.importance, search_cams,
                                                       search_tgts, config.replace(target_psnr=goal + offset + 0.05),
                                                       cand.bits, hint, cand.label), "search", timings)
            if again.reached:
                m2 = yield from _evaluate_encoded(again.encoded, views, config, timings)
                if m2["psnr"] > metrics["psnr"]:
                    again.trials = rate.trials + again.trials
                    rate, metrics = again, m2
                    cand = dataclasses.replace(cand, rate=again)
        elif metrics["psnr"] > goal + SURPLUS_DB and rate.reached and offset < -SURPLUS_DB:
            # the search views were harder than all of them: a coarser step may still meet the target on all.
            # Quantisation adds about the same MSE to every view, so the search views may lose the MSE that all
            # views have to spare; if that overshoots, half of it.
            mse = lambda db: 10.0 ** (-db / 10.0)
            spare = mse(goal) - mse(metrics["psnr"])
            searched = rate.search_psnr
            for share in (1.0, 0.5):
                lower = -10.0 * math.log10(mse(searched) + share * spare) + 0.05
                log.info("compress: prune %.2f: %.2f dB on all held-out views, %.2f dB on the search views: searching "
                         "again for %.2f dB on them", cand.ratio, metrics["psnr"], searched, lower)
                x = _finest_log2_step(rate.settings)
                again = yield from _timed(encode_to_target(cand.model, cand.target, cand.importance, search_cams,
                                                           search_tgts, config.replace(target_psnr=lower), cand.bits,
                                                           x + 0.3 if x is not None else -5.0, cand.label), "search",
                                          timings)
                if not (again.reached and again.encoded.n_bytes < rate.encoded.n_bytes):
                    break
                m2 = yield from _evaluate_encoded(again.encoded, views, config, timings)
                if m2["psnr"] >= goal:
                    again.trials = rate.trials + again.trials
                    rate, metrics = again, m2
                    cand = dataclasses.replace(cand, rate=again)
                    break
                log.info("compress: %.2f dB on all held-out views: short of %.2f", m2["psnr"], goal)
        tries = 0
        while metrics["psnr"] < goal and rate.reached and tries < 2:
            tries += 1
            before = metrics["psnr"]
            # in the quantisation-dominated regime PSNR rises about 6.02 dB per halved step: aim past the gap
            dx = max(0.25, 1.25 * (goal - before) / 6.02 + 0.05)
            log.info("compress: prune %.2f: %.2f dB on all held-out views, below the %.2f dB target: a step 2^%.2f "
                     "finer", cand.ratio, before, goal, dx)
            enc, st = finer(rate, cand.model, cand.target, cand.importance, config, dx)
            m2 = yield from _evaluate_encoded(enc, views, config, timings)
            if m2["psnr"] > before:
                rate.encoded, rate.settings, metrics = enc, st, m2
            if m2["psnr"] - before < 0.4 * (goal - before):  # capped by the kept Gaussians, not by the step
                break
        if best is None or metrics["psnr"] > best[1]["psnr"]:
            best = (cand, metrics)
        if metrics["psnr"] >= goal:
            passing.append((cand, metrics))
            nxt = cands[i + 1] if i + 1 < len(cands) else None
            if nxt is not None and nxt.before_qat is not None and nxt.before_qat is passing[0][0].before_qat:
                log.info("compress: %s B confirmed; confirming the file before quantisation-aware fine-tuning too",
                         f"{cand.rate.encoded.n_bytes:,}")
                continue
            return min(passing, key=lambda p: p[0].rate.encoded.n_bytes)
        if passing:
            return passing[0]
        if i + 1 < len(cands):
            log.info("compress: prune %.2f reaches %.2f dB on all held-out views; trying prune %.2f", cand.ratio,
                     metrics["psnr"], cands[i + 1].ratio)
    cand, metrics = best
    cand.rate.reached = False
    cand.rate.message = (f"target {goal:.2f} dB not reached on all held-out views: the best found is "
                         f"{metrics['psnr']:.2f} dB ({goal - metrics['psnr']:.2f} dB short) at "
                         f"{cand.rate.encoded.n_bytes:,} bytes (try a lower --prune)")
    return cand, metrics


COADAPT_MIN_HEADROOM_DB = 0.3
"""A co-adapted prune ratio whose ceiling misses target + margin is still searched in full when it clears the
target by this much (lego at 33.63 dB against its images: prune 0.5 co-adapted reached 34.03 dB)."""

SURPLUS_DB = 0.3
"""When all held-out views beat the target by more than this and the search views by more than this too, the
step is searched again for a lower goal on the search views (donut at 40 dB: 40.2 dB on the 3 search views was
41.9 dB on all 8, 1.9 dB of quality paid for and not asked for)."""

SEARCH_PIXELS = 2.0e6
"""The search renders at least ``config.search_views`` held-out views, and as many more as fit in this many
pixels (3 at 800x800; 12 of lego's 13 at 400x400, whose 3 kindest views overstated all 13 by 0.5 dB)."""


def search_view_count(views: ViewSet, config: CompressionConfig) -> int:
    """How many held-out views the rate control searches on (spread evenly by :func:`search_subset`)."""
    if not views.n_test:
        return 0
    px = sum(c.width * c.height for c in views.test_cameras) / views.n_test
    return min(views.n_test, max(config.search_views, int(SEARCH_PIXELS // max(px, 1.0))))


def _evaluate_model(model: NeuralGSModel, views: ViewSet, config: CompressionConfig, timings: dict):
    """The held-out evaluation of ``model``'s decoded scene, timed as the "evaluate" stage."""
    with torch.no_grad():
        decoded = model.decode().detach()
    return (yield from _timed(score_renders(decoded, views.test_cameras, views.test_targets, config), "evaluate",
                              timings))


def _evaluate_encoded(encoded, views: ViewSet, config: CompressionConfig, timings: dict):
    return (yield from _evaluate_model(encoded.model, views, config, timings))


def _replace_model(old: NeuralGSModel, new: NeuralGSModel) -> NeuralGSModel:
    """``new`` with ``old``'s meta (a re-encoded model keeps the run's record)."""
    new.meta = old.meta
    return new


def _file_codec(report: dict) -> dict:
    """What a file records of its rate control: the target, whether it was reached, the prune ratio (the
    steps, levels, position bits and predictors are in the header's own keys)."""
    keep = ("target_psnr", "target_size", "reached", "prune_ratio")
    return {k: report[k] for k in keep if report.get(k) is not None}


def means_fingerprint(means: torch.Tensor) -> str:
    """A scene's fingerprint: CRC-32 (8 hex digits) of its means as little-endian float32 bytes [N, 3].

    Computed from the tensors, not the file, so the same scene read by the app and by the command line (any
    format they read it from) gives the same value; a .ngs records it (``meta["source"]["means_crc32"]``)."""
    import zlib

    data = means.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4", copy=False).tobytes()
    return f"{zlib.crc32(data):08x}"


def source_meta(file: str, n_bytes: int, fmt: str, n_gaussians: int, fingerprint: str | None) -> dict:
    """What a .ngs records of the scene it was made from (``meta["source"]``): file name, bytes, format,
    Gaussian count before pruning and :func:`means_fingerprint` (None: unknown, left out)."""
    out = {"file": str(file), "bytes": int(n_bytes), "format": str(fmt), "n_gaussians": int(n_gaussians)}
    if fingerprint is not None:
        out["means_crc32"] = str(fingerprint)
    return out


def file_meta(meta: dict) -> dict:
    """The compact record a .ngs v2 header keeps of a run: the configuration's view settings (eval recreates
    the held-out views from them) and main knobs (not all ~60 fields), the total time, the rest as is
    (``source``: :func:`source_meta`, which recognises the scene the file was made from).
    Measured: the full record was 2 KB, 5% of a 40 KB file and most of a 100-Gaussian one."""
    out = dict(meta)
    if isinstance(meta.get("source"), dict):
        out["source"] = dict(meta["source"])
    cfg = meta.get("config")
    if isinstance(cfg, dict):
        keep = ("n_views", "n_test_views", "image_size", "eval_size", "up", "elevation_range_deg", "dataset_max_size",
                "test_every", "background", "seed", "preset", "n_clusters", "prune_ratio", "hidden", "layers",
                "pe_freqs", "fit_iters", "finetune_iters", "lambda_freq", "target_psnr", "target_size", "effort",
                "coadapt_iters", "qat_iters")
        out["config"] = {k: cfg[k] for k in keep if k in cfg}
    if isinstance(meta.get("timings"), dict):
        out["timings"] = {"total": round(sum(float(v) for v in meta["timings"].values()), 1)}
    if isinstance(meta.get("heldout"), dict):
        out["heldout"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in meta["heldout"].items()}
    return out


def _rate_report(config: CompressionConfig, encoded, rate, prune_trials, metrics) -> dict:
    """What the codec tried and chose (recorded in the file's header meta and the CLI's summary)."""
    preds = [c["predictor"] for c in encoded.clusters]
    out = {
        "format_version": 2,
        "target_psnr": config.target_psnr or None, "target_size": config.target_size or None,
        "prune_ratio": config.prune_ratio, "prune_search": prune_trials,
        "predictors": {"mlp": preds.count("mlp"), "constant": preds.count("constant")},
        "clusters": encoded.clusters, "bytes": encoded.part_bytes(),
        "settings": (rate.settings if rate else None) and rate.settings.to_dict(),
    }
    if rate is not None:
        reached = rate.reached
        if config.target_psnr and metrics is not None:
            reached = metrics["psnr"] >= config.target_psnr
        if config.target_size:
            reached = encoded.n_bytes <= config.target_size
        out.update(variant=rate.variant, reached=reached, message=rate.message,
                   trials=[t.to_dict() for t in rate.trials])
    return out
