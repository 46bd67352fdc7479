"""app.session without Qt: every transition of the window's state, and what each one keeps or drops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from app.documents import CompressedScene, OriginalScene
from app.session import DEFAULT_UP, ClusterDisplay, Session

ROOT = Path(__file__).resolve().parents[2]
BOUNDS = (np.zeros(3), np.ones(3))


def original(path: str | Path = "/scenes/a.ply") -> OriginalScene:
    return OriginalScene(Path(path), SimpleNamespace(num_gaussians=6), "ply", 600, BOUNDS)


def compressed(path: Path | None = None, result=None, ids=(0, 0, 0, 1, 1, 2)) -> CompressedScene:
    ids = np.asarray(ids, dtype=np.int64)
    rows = [{"count": int(n), "importance": None, "loss": None, "bytes": 10} for n in np.bincount(ids)]
    return CompressedScene(None, SimpleNamespace(num_gaussians=len(ids)), ids, rows, 100, BOUNDS, path, result)


def camera_set(up=(0.0, 0.0, 1.0), n: int = 2):
    from core.camera import Camera
    from core.cameras import CameraSet

    cams = [Camera.look_at([4.0 * np.cos(a), 4.0 * np.sin(a), 1.0], [0.0, 0.0, 0.0], up, 40.0, 64, 48, name=f"c{i}")
            for i, a in enumerate(np.linspace(0, np.pi, n))]
    return CameraSet(cams, [], Path("/data/transforms.json"), "blender")


def fresh_result(n_views: int = 3):
    return SimpleNamespace(views=SimpleNamespace(train_cameras=[f"view {i}" for i in range(n_views)]))


def test_the_session_module_imports_no_qt():
    code = "import sys, app.session; print(sorted({m.split('.')[0] for m in sys.modules} & {'PySide6', 'torch'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_a_new_session_is_empty():
    s = Session()
    assert s.original is None and s.compressed is None and s.camera_set is None and s.up_override is None
    assert s.clusters == ClusterDisplay() and s.exported_path is None and not s.result_exported
    assert not s.has_unexported_result and s.training_cameras() == [] and s.dataset_cameras() is None
    assert s.source_path() is None and s.folder() == Path.cwd() and s.export_stem() == "scene"
    assert s.up_axis() == DEFAULT_UP and s.n_shown() == 0


def test_open_scene_replaces_the_scene_and_drops_its_result():
    s = Session()
    s.open_scene(original("/scenes/a.ply"))
    s.set_compressed(compressed(result=fresh_result()))
    s.show_clusters([True, False, True], color_by_cluster=True, highlight=1)
    s.mark_exported("/out/a.ngs")
    b = original("/other/b.ply")
    s.open_scene(b)
    assert s.original is b and s.compressed is None
    assert s.clusters == ClusterDisplay(color_by_cluster=True)  # all shown, none highlighted; colouring stays
    assert not s.result_exported and not s.has_unexported_result
    assert s.exported_path == Path("/out/a.ngs")  # what was exported is remembered
    assert s.source_path() == Path("/other/b.ply") and s.folder() == Path("/other") and s.export_stem() == "b"


def test_cameras_loaded_with_nothing_open_go_with_the_next_scene_and_the_up_override_stays():
    s = Session()
    cams = camera_set()
    s.set_cameras(cams)
    s.set_up_override([0, 1, 0])
    assert s.open_scene(original()) is None  # nothing dropped
    assert s.camera_set is cams and s.cameras_for == Path("/scenes/a.ply") and s.up_override == (0.0, 1.0, 0.0)
    assert s.dataset_cameras() == cams.cameras


def test_opening_another_scene_drops_the_cameras_loaded_for_the_previous_one():
    """Issue 14: lego's dataset outlived lego; the donut's next compression trained on lego's photos."""
    s = Session()
    s.open_scene(original("/scenes/lego.ply"))
    cams = camera_set()
    s.set_cameras(cams)
    assert s.cameras_for == Path("/scenes/lego.ply")
    assert s.open_scene(original("/scenes/lego.ply")) is None and s.camera_set is cams  # the same scene again
    dropped = s.open_scene(original("/scenes/donut.ply"))
    assert dropped is not None and dropped.camera_set is cams and dropped.scene == Path("/scenes/lego.ply")
    assert s.camera_set is None and s.cameras_for is None and s.dataset_cameras() is None
    assert s.training_cameras() == []
    s.set_cameras(cams)  # loaded again, now for the donut
    assert s.open_scene(original("/scenes/donut.ply")) is None and s.camera_set is cams


def test_a_ngs_opened_as_its_own_scene_closes_the_original_and_its_cameras():
    s = Session()
    s.open_scene(original("/scenes/lego.ply"))
    s.set_cameras(camera_set())
    s.set_compressed(compressed(result=fresh_result()))
    ngs = compressed(path=Path("/out/donut.ngs"))
    dropped = s.open_compressed_alone(ngs)
    assert dropped is not None and dropped.scene == Path("/scenes/lego.ply")
    assert s.original is None and s.compressed is ngs and s.camera_set is None
    assert s.source_path() == Path("/out/donut.ngs") and s.title() == "donut.ngs — NeuralGS Studio"


def test_a_fresh_result_is_unexported_until_exported():
    s = Session()
    s.open_scene(original())
    cs = compressed(result=fresh_result())
    s.set_compressed(cs)
    assert s.compressed is cs and s.has_unexported_result and not s.result_exported
    s.mark_exported("/out/a.ngs", cs)
    assert s.result_exported and not s.has_unexported_result and s.exported_path == Path("/out/a.ngs")
    s.set_compressed(compressed(result=fresh_result()))  # a new run: its result is not on disk
    assert s.has_unexported_result and s.exported_path == Path("/out/a.ngs")


def test_an_export_of_a_replaced_result_does_not_mark_the_new_one():
    s = Session()
    old = compressed(result=fresh_result())
    s.set_compressed(old)
    new = compressed(result=fresh_result())
    s.set_compressed(new)
    s.mark_exported("/out/old.ngs", old)  # the export of ``old`` finished after ``new`` arrived
    assert s.exported_path == Path("/out/old.ngs") and s.has_unexported_result
    s.mark_exported("/out/new.ngs")  # default: the current result
    assert not s.has_unexported_result


def test_an_opened_ngs_is_on_disk_and_keeps_the_original():
    s = Session()
    a = original()
    s.open_scene(a)
    s.set_compressed(compressed(result=fresh_result()))
    opened = compressed(path=Path("/out/a.ngs"))
    s.open_compressed(opened)
    assert s.original is a and s.compressed is opened and not s.has_unexported_result
    assert s.source_path() == Path("/scenes/a.ply")  # the original names the session


def test_an_opened_ngs_alone_names_the_session():
    s = Session()
    s.open_compressed(compressed(path=Path("/out/x.ngs")))
    assert s.source_path() == Path("/out/x.ngs") and s.folder() == Path("/out") and s.export_stem() == "x"
    s.open_compressed(compressed())  # no file behind it: nothing names the session
    assert s.source_path() is None and s.folder() == Path.cwd()


def test_cluster_display_and_the_gaussians_shown():
    s = Session()
    s.show_clusters([True, False])  # before any result: recorded, but it masks nothing
    assert s.display_mask() is None and s.n_shown() == 0
    s.set_compressed(compressed())
    assert s.display_mask() is None and s.n_shown() == 6  # a new result: all shown
    vis = np.array([True, False, True])
    s.show_clusters(vis, color_by_cluster=True, highlight=2)
    vis[0] = False  # the session keeps its own copy
    np.testing.assert_array_equal(s.display_mask(), [True, False, True])
    assert s.n_shown() == 4 and s.clusters.color_by_cluster and s.clusters.highlight == 2
    s.show_clusters([True, False])  # a mask of another result's size masks nothing
    assert s.display_mask() is None and s.n_shown() == 6
    s.show_clusters(None)
    assert s.display_mask() is None


def test_up_axis_prefers_the_users_choice_then_the_cameras_then_the_demo():
    from core.paths import DEMO_SCENE, DEMO_UP

    s = Session()
    s.open_scene(original())
    assert s.up_axis() == DEFAULT_UP
    s.open_scene(original(DEMO_SCENE))
    assert s.up_axis() == DEMO_UP
    s.set_cameras(camera_set(up=(0.0, 1.0, 0.0)))
    np.testing.assert_allclose(s.up_axis(), (0.0, 1.0, 0.0), atol=1e-6)
    assert s.set_up_override((0, 0, -1)) == (0.0, 0.0, -1.0)
    assert s.up_axis() == (0.0, 0.0, -1.0) and all(isinstance(v, float) for v in s.up_axis())


def test_training_cameras_come_from_the_dataset_else_the_last_compression():
    s = Session()
    s.set_compressed(compressed(result=fresh_result(3)))
    assert s.training_cameras() == ["view 0", "view 1", "view 2"] and s.dataset_cameras() is None
    s.open_compressed(compressed(path=Path("/out/a.ngs")))  # an opened .ngs has no views
    assert s.training_cameras() == []
    cams = camera_set(n=4)
    s.set_cameras(cams)
    assert s.training_cameras() == cams.cameras == s.dataset_cameras()


def test_compression_config_takes_panel_values_session_up_and_overrides():
    s = Session()
    s.open_scene(original())
    cfg = s.compression_config({"preset": None, "custom": True, "n_clusters": 5, "prune_ratio": 0.3})
    assert cfg.preset == "preview" and cfg.n_clusters == 5 and cfg.prune_ratio == 0.3
    assert tuple(cfg.up) == DEFAULT_UP  # the session's up goes to the pipeline's orbit views
    s.config_overrides = {"n_clusters": 2, "fit_iters": 7}
    cfg = s.compression_config({"preset": "preview", "n_clusters": 5})
    assert cfg.n_clusters == 2 and cfg.fit_iters == 7  # overrides win over the panel
    s.set_cameras(camera_set())
    assert s.compression_config({"preset": "preview"}).up is None  # cameras given: no orbit up
    with pytest.raises(ValueError, match="no_such_field"):
        s.compression_config({"preset": "preview", "no_such_field": 1})


def ngs_of(meta: dict, path: str = "/out/x.ngs", bounds=BOUNDS) -> CompressedScene:
    cs = compressed(path=Path(path))
    cs.model = SimpleNamespace(meta=meta)
    cs.bounds = bounds
    return cs


def test_source_check_by_fingerprint_then_count_then_bounds():
    """Issue 14: a .ngs of another scene was accepted silently over the open one."""
    s = Session()
    a = original("/scenes/donut.ply")
    a.fingerprint = "0badcafe"
    assert Session().source_check(ngs_of({})).verdict == "same"  # nothing open: nothing to compare with
    s.open_scene(a)
    same = ngs_of({"source": {"file": "donut.ply", "n_gaussians": 6, "means_crc32": "0badcafe"}})
    assert s.source_check(same).verdict == "same"
    other = ngs_of({"source": {"file": "lego.ply", "n_gaussians": 6, "means_crc32": "12345678"}}, "/out/lego.ngs")
    check = s.source_check(other)
    assert check.verdict == "different"
    assert "lego.ngs" in check.message and "lego.ply" in check.message and "donut.ply" in check.message
    # files without a fingerprint (made before it was recorded): the count before pruning, then the bounds
    old = ngs_of({"n_original": 134_132})
    check = s.source_check(old)
    assert check.verdict == "different" and "134,132" in check.message and "6 Gaussians" in check.message
    far = ngs_of({"n_original": 6}, bounds=(np.full(3, 50.0), np.full(3, 60.0)))
    assert s.source_check(far).verdict == "different"
    huge = ngs_of({}, bounds=(np.zeros(3), np.full(3, 10.0)))
    assert s.source_check(huge).verdict == "different"
    unknown = s.source_check(ngs_of({"n_original": 6}))
    assert unknown.verdict == "unknown" and "Cannot tell" in unknown.message and "count and bounds agree" in \
        unknown.message
    assert s.source_check(ngs_of({})).verdict == "unknown"
    a.fingerprint = None  # an original without a fingerprint: the count decides
    assert s.source_check(other).verdict == "unknown"


def test_export_suggestions_never_name_a_file_the_session_shows(tmp_path):
    """Issue 14: "Export decompressed .ply" proposed the open original's own path."""
    s = Session()
    s.open_scene(original(tmp_path / "donut.ply"))
    s.set_compressed(compressed(result=fresh_result()))
    assert s.export_suggestion(".ply") == tmp_path / "donut-neuralgs.ply"
    assert s.export_suggestion(".ngs", "/elsewhere") == Path("/elsewhere/donut.ngs")
    s.open_scene(original(tmp_path / "donut-neuralgs.ply"))  # the decompressed file opened as the original
    s.open_compressed(compressed(path=tmp_path / "donut-neuralgs.ngs"))
    assert s.export_suggestion(".ply") == tmp_path / "donut-neuralgs-neuralgs.ply"
    s.open_compressed_alone(compressed(path=tmp_path / "x.ngs"))
    assert s.export_suggestion(".ngs") == tmp_path / "x-2.ngs"  # never the opened .ngs itself
    s.open_scene(original(tmp_path / "guitar.compressed.ply"))
    assert s.export_stem() == "guitar"


def test_the_title_names_the_files_shown_and_marks_an_unexported_result():
    s = Session()
    assert s.title() == "NeuralGS Studio"
    s.open_scene(original("/scenes/donut.ply"))
    assert s.title() == "donut.ply — NeuralGS Studio"
    s.set_compressed(compressed(result=fresh_result()))
    assert s.title() == "• donut.ply — NeuralGS Studio"
    s.mark_exported("/out/donut.ngs")
    assert s.title() == "donut.ply — NeuralGS Studio"
    s.open_compressed(compressed(path=Path("/out/donut.ngs")))
    assert s.title() == "donut.ply vs donut.ngs — NeuralGS Studio"


def test_undo_and_redo_go_through_the_ticked_clusters():
    """Issue 14: toggles and solo are steps Undo / Redo take back; colour and highlight are not."""
    s = Session()
    s.show_clusters([False, True, True])  # no result: nothing to undo
    assert not s.can_undo_clusters and s.undo_clusters() is None
    s.set_compressed(compressed())
    s.show_clusters([True, True, True])  # the table's first state: all shown, as the session's start
    assert not s.can_undo_clusters
    s.show_clusters([True, False, True])  # toggle cluster 1
    s.show_clusters([True, False, True], color_by_cluster=True, highlight=0)  # not a step
    s.show_clusters([False, False, True], color_by_cluster=True, highlight=0)  # solo 2
    assert s.can_undo_clusters and not s.can_redo_clusters
    np.testing.assert_array_equal(s.undo_clusters(), [True, False, True])
    assert s.clusters.color_by_cluster and s.clusters.highlight == 0  # kept as they are now
    # the table then shows those ticks: the same state, not a new step
    s.show_clusters([True, False, True], color_by_cluster=True, highlight=0)
    np.testing.assert_array_equal(s.undo_clusters(), [True, True, True])
    assert s.undo_clusters() is None and not s.can_undo_clusters
    np.testing.assert_array_equal(s.redo_clusters(), [True, False, True])
    s.show_clusters([True, False, True])
    s.show_clusters([True, False, False])  # a new change: what was undone cannot be redone any more
    assert not s.can_redo_clusters and s.redo_clusters() is None
    np.testing.assert_array_equal(s.undo_clusters(), [True, False, True])


def test_the_progressive_slider_is_not_a_step_and_a_new_result_forgets_the_history():
    s = Session()
    s.set_compressed(compressed())
    s.show_clusters([True, False, False], ticked=[True, True, True])  # slider at 1 of 3: the ticks unchanged
    assert not s.can_undo_clusters
    np.testing.assert_array_equal(s.display_mask(), [True, False, False])
    s.show_clusters([True, False, False], ticked=[True, False, True])
    assert s.can_undo_clusters
    np.testing.assert_array_equal(s.undo_clusters(), [True, True, True])
    s.show_prediction_only(True)
    s.set_compressed(compressed())
    assert not s.can_undo_clusters and not s.can_redo_clusters
    assert s.clusters.prediction_only  # a display choice: kept across results


def test_history_is_bounded():
    from app.session import CLUSTER_HISTORY

    s = Session()
    s.set_compressed(compressed())
    for i in range(CLUSTER_HISTORY + 10):
        s.show_clusters([True, i % 2 == 0, True])
    steps = 0
    while s.undo_clusters() is not None:
        steps += 1
    assert steps == CLUSTER_HISTORY


@pytest.mark.parametrize("preset", ["preview", "codec"])
def test_the_codec_target_maps_as_the_command_line_does(preset):
    from core.pipeline.config import RESIDUAL_GROUPS

    s = Session()
    s.open_scene(original())
    cfg = s.compression_config({"preset": preset, "target": ("psnr", 36.5)})
    assert (cfg.target_psnr, cfg.target_size, cfg.residual_groups, cfg.format_version) == \
        (36.5, 0, RESIDUAL_GROUPS, 2)
    cfg = s.compression_config({"preset": preset, "target": ("size", 250_000)})
    assert (cfg.target_psnr, cfg.target_size, cfg.residual_groups) == (0.0, 250_000, RESIDUAL_GROUPS)
    cfg = s.compression_config({"preset": preset, "target": ("none", None)})  # the paper's pure NeuralGS
    assert (cfg.target_psnr, cfg.target_size, cfg.residual_groups, cfg.format_version) == (0.0, 0, (), 2)
    assert s.compression_config({"preset": preset}).target_psnr == (40.0 if preset == "codec" else 0.0)
    with pytest.raises(ValueError, match="target PSNR"):
        s.compression_config({"preset": preset, "target": ("psnr", -1.0)})
    with pytest.raises(ValueError, match="mode"):
        s.compression_config({"preset": preset, "target": ("bits", 3)})
