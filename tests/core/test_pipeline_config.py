"""CompressionConfig validation, presets, progress records and the light package import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.pipeline import PRESETS, CompressionConfig, ProgressRecord, Throttle, config_from_preset, run_to_completion
from core.pipeline.progress import StageClock
from tests.conftest import REPO_ROOT


def test_presets_exist_and_are_ordered_by_effort():
    assert set(PRESETS) == {"codec", "preview", "balanced", "paper"}
    p, b, full = (config_from_preset(n) for n in ("preview", "balanced", "paper"))
    for c in (p, b, full):  # the paper's pure NeuralGS (no residuals, no target), in the v2 container
        assert c.residual_groups == () and c.target_psnr == 0 and c.format_version == 2
    assert p.fit_iters < b.fit_iters < full.fit_iters == 60_000
    assert p.finetune_iters < b.finetune_iters < full.finetune_iters == 25_000
    assert full.hidden == 128 and full.layers == 5 and full.pe_freqs == 10
    for c in (p, b, full):  # the paper's loss weights everywhere
        assert (c.prune_ratio, c.beta, c.lambda_ssim, c.lambda_freq) == (0.4, 0.1, 0.2, 0.01)
    # the paper preset is the paper's method; short schedules start higher and normalise robustly
    assert full.fit_lr == (1e-3, 8e-5) and full.finetune_lr == (3e-4, 6e-6) and full.attr_range_pct == 0.0
    assert b.fit_lr[0] > full.fit_lr[0] and b.finetune_lr[0] > full.finetune_lr[0] and b.attr_range_pct > 0
    assert b.preset == "balanced"


def test_the_codec_preset_is_visually_lossless_rate_control():
    c = config_from_preset("codec")
    assert c.target_psnr == 40.0 and c.target_size == 0 and c.finetune_iters == 0 and c.format_version == 2
    assert set(c.residual_groups) == {"opacity", "log_scales", "rotation", "sh_dc", "sh_band1", "sh_band2", "sh_band3"}
    assert c.prune_candidates[0] > c.prune_candidates[-1] == 0.0 and c.importance_levels == 4


@pytest.mark.parametrize("bad", [dict(target_psnr=40.0, target_size=1000), dict(target_psnr=-1.0),
                                 dict(target_size=-5), dict(format_version=3), dict(residual_groups=("sh_rest",)),
                                 dict(predictor="neural"), dict(importance_levels=0), dict(importance_levels=17),
                                 dict(prune_candidates=(1.0,)), dict(search_views=0),
                                 dict(target_psnr=40.0, residual_groups=()),
                                 dict(format_version=1, residual_groups=("opacity",))])
def test_codec_fields_are_validated(bad):
    config_from_preset("codec")  # valid as it is: each case below breaks one rule
    with pytest.raises(ValueError):
        config_from_preset("codec", **bad)


def test_codec_overrides_map_targets_and_options():
    from core.errors import ConfigError
    from core.pipeline.config import RESIDUAL_GROUPS, codec_overrides

    assert codec_overrides(None) == {} and codec_overrides("codec") == {}  # the codec preset's own target
    assert codec_overrides("preview") == {"residual_groups": (), "target_psnr": 0.0}  # the paper's pure NeuralGS
    assert codec_overrides("preview", target_psnr=36.5) == {"target_psnr": 36.5, "target_size": 0,
                                                            "residual_groups": RESIDUAL_GROUPS}
    assert codec_overrides(None, target_size=9000, residuals=("opacity",)) == {
        "target_psnr": 0.0, "target_size": 9000, "residual_groups": ("opacity",)}
    assert codec_overrides(None, residuals=("sh_dc",), predictor="mlp", importance_steps=False) == {
        "residual_groups": ("sh_dc",), "predictor": "mlp", "importance_levels": 1}
    assert codec_overrides("paper", format_version=1)["format_version"] == 1
    for kw, message in [({"target_psnr": 40.0, "target_size": 9000}, "not both"),
                        ({"target_psnr": 0.0}, "--target-psnr must be"), ({"target_size": 0}, "--target-size must"),
                        ({"target_psnr": 30.0, "residuals": ()}, "needs residuals"),
                        ({"residuals": ()}, "needs a preset"), ({"format_version": 1}, "--format-version 1")]:
        with pytest.raises(ConfigError, match=message):
            codec_overrides(None, **kw)
    with pytest.raises(ConfigError, match="needs a target"):
        codec_overrides("balanced", residuals=("opacity",))


def test_every_preset_evaluates_at_800_px_and_trains_at_its_own_size():
    """DESIGN §7's protocol: held-out views 800 px on the long side whatever the training views' size."""
    assert CompressionConfig().eval_size == 800
    for name in PRESETS:
        c = config_from_preset(name)
        assert c.eval_size == 800, name
    assert config_from_preset("balanced").image_size == 256
    assert config_from_preset("balanced", eval_size=64).eval_size == 64


def test_overrides_apply_and_unknown_names_fail():
    c = config_from_preset("balanced", n_clusters=12, lambda_freq=0.0, up=[0, 0, 1])
    assert c.n_clusters == 12 and c.lambda_freq == 0.0 and c.up == (0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        config_from_preset("fast")
    with pytest.raises(ValueError, match="unknown configuration field.*n_cluster\\b"):
        config_from_preset("preview", n_cluster=3)
    assert c.replace(n_clusters=2).n_clusters == 2
    assert c.to_dict()["up"] == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("field,value,message", [
    ("n_clusters", 0, "n_clusters must be an integer >= 1"),
    ("n_clusters", 2.5, "n_clusters must be an integer"),
    ("prune_ratio", 1.0, "prune_ratio must be < 1"),
    ("prune_ratio", -0.1, "prune_ratio must be >= 0"),
    ("lambda_ssim", 1.5, "lambda_ssim must be <= 1"),
    ("lambda_freq", float("nan"), "lambda_freq must be a finite number"),
    ("fit_lr", (1e-3, 0.0), "fit_lr must be two positive learning rates"),
    ("device", "tpu", "device must be one of auto, cpu, cuda"),
    ("render_backend", "opengl", "render_backend must be one of"),
    ("background", (1.0, 2.0, 0.0), "background must be 3 values in \\[0, 1\\]"),
    ("elevation_range_deg", (30.0, -30.0), "elevation_range_deg"),
    ("up", (0.0, 0.0, 0.0), "up must be a finite non-zero 3-vector"),
    ("layers", 1, "layers must be an integer >= 2"),
    ("image_size", 4, "image_size must be an integer >= 8"),
    ("eval_size", 4, "eval_size must be an integer >= 8"),
    ("eval_size", 800.0, "eval_size must be an integer"),
    ("eval_size", True, "eval_size must be an integer"),
    ("threads", -2, "threads must be an integer >= -1"),
])
def test_invalid_values_are_rejected_with_the_field_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        CompressionConfig(**{field: value})


def test_ablation_switch_sets_one_cluster():
    assert CompressionConfig(n_clusters=7, use_clusters=False).effective_clusters == 1
    assert CompressionConfig(n_clusters=7).effective_clusters == 7


def test_thread_setting_auto_leaves_a_core_free():
    import os

    from core.pipeline.compress import thread_count

    assert thread_count(0) == max(1, (os.cpu_count() or 1) - 1)
    assert thread_count(-1) == 0 and thread_count(3) == 3


def test_throttle_and_stage_clock_with_a_fake_clock():
    now = [0.0]
    th = Throttle(0.5, clock=lambda: now[0])
    assert not th.due()
    now[0] = 0.4
    assert not th.due()
    now[0] = 0.6
    assert th.due() and not th.due()  # restarts after firing
    now[0] = 1.2
    assert th.due()

    now[0] = 10.0
    clock = StageClock("fit", 4, clock=lambda: now[0])
    now[0] = 12.0
    rec = clock.record(1, "one", losses={0: 0.5})
    assert (rec.stage, rec.step, rec.total, rec.elapsed_s, rec.eta_s) == ("fit", 1, 4, 2.0, 6.0)
    assert rec.losses == {0: 0.5} and rec.fraction == 0.25
    assert clock.record(0).eta_s is None


def test_run_to_completion_returns_the_value_and_reports_each_record():
    def stage():
        for i in range(3):
            yield ProgressRecord("x", i + 1, 3)
        return "done"

    seen = []
    assert run_to_completion(stage(), seen.append) == "done"
    assert [r.step for r in seen] == [1, 2, 3]


def test_package_import_does_not_load_torch():
    code = ("import sys, core.pipeline as p; p.CompressionConfig(); p.config_from_preset('paper'); "
            "assert 'torch' not in sys.modules, 'torch loaded'; p.compress; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
