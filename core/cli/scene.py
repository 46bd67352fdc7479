"""The ``render`` command and the no-argument demo job: one view of a scene written to a PNG."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from core.cli.common import (EXIT_OK, check_output_path, format_summary, parse_background, parse_size, parse_up,
                             scene_summary, write_png)
from core.errors import UsageError
from core.paths import DEMO_SCENE, DEMO_UP
from core.errors import InputFileError

log = logging.getLogger(__name__)

DEMO_OUTPUT = Path("demo-render.png")
DEFAULT_ORBIT_SIZE = (800, 600)
DEFAULT_ELEVATION = 20.0


def orbit_view(scene, azimuth_deg: float, elevation_deg: float, size: tuple[int, int], up=None):
    """A camera on a sphere around the scene's robust bounds (``core.cameras.orbit_camera``).

    ``up``: the world up direction; None means the orbit's default (-y, as COLMAP/3DGS captures).
    """
    from core.cameras import orbit_camera

    w, h = size
    return orbit_camera(scene.means.detach(), azimuth_deg, elevation_deg, w, h, up=up)


def camera_from_file(path: Path, which: str, size: tuple[int, int] | None):
    """Camera ``which`` (an index, or a camera name) from a cameras file, optionally resized to ``size``."""
    from core.cameras import load_cameras

    if not path.exists():  # a file, or a folder (COLMAP sparse/0, a dataset): the loader decides
        raise InputFileError(path, "no such file or folder")
    cams = load_cameras(path)  # logs its own warnings and skipped frames
    cameras = list(cams.cameras)
    if not cameras:
        raise InputFileError(path, "holds no usable cameras")
    try:
        index = int(which)
    except ValueError:
        matches = [i for i, c in enumerate(cameras) if c.name == which]
        if not matches:
            raise InputFileError(path, f"no camera named {which!r}") from None
        index = matches[0]
    if not -len(cameras) <= index < len(cameras):
        raise InputFileError(path, f"camera {index} out of range (the file has {len(cameras)} cameras, "
                                   f"0-{len(cameras) - 1})")
    camera = cameras[index]
    if size is not None and tuple(size) != (camera.width, camera.height):
        camera = camera.resized(*size)
    return camera


def render_to_png(scene, camera, out: Path, background, backend: str, overwrite: bool = False) -> dict:
    """Render one view, clamp it to [0, 1], write it as a PNG. Returns what was done, for reporting."""
    import torch

    from core.render import render

    t0 = time.perf_counter()
    try:
        with torch.no_grad():
            result = render(scene, camera, background=tuple(background), backend=backend)
    except RuntimeError as exc:
        if backend == "gsplat":  # asked for explicitly, and not usable here (no CUDA, no toolkit)
            raise UsageError(f"{exc} (use --backend cpu or auto)") from exc
        raise
    seconds = time.perf_counter() - t0
    color = result.color.detach().clamp(0.0, 1.0)
    write_png(out, color, overwrite=overwrite)
    return {"path": str(out), "width": camera.width, "height": camera.height,
            "backend": getattr(result, "backend", backend), "render_s": seconds,
            "n_visible": int(getattr(result, "n_visible", -1))}


def report(done: dict) -> str:
    """One line for stdout about a rendered PNG."""
    return (f"wrote {done['path']} ({done['width']}x{done['height']}, {done['backend']} backend, "
            f"rendered in {done['render_s']:.2f} s)")


def cmd_render(args) -> int:
    """``render FILE --out view.png [...]``: one view from a cameras file or an orbit around the scene."""
    out = check_output_path(Path(args.out), args.force)
    if args.camera is not None and args.cameras is None:
        raise UsageError("--camera needs --cameras PATH")
    if args.cameras is not None and (args.orbit is not None or args.elevation is not None or args.up is not None):
        raise UsageError("--orbit/--elevation/--up and --cameras are alternatives; give one")
    if args.cameras is not None and not Path(args.cameras).exists():  # fail before the slow part
        raise InputFileError(args.cameras, "no such file or folder")
    from core.io.scene_files import load_scene_file

    scene = load_scene_file(args.file).scene
    if args.cameras is not None:
        camera = camera_from_file(Path(args.cameras), args.camera or "0", args.size)
    else:
        elevation = DEFAULT_ELEVATION if args.elevation is None else args.elevation
        camera = orbit_view(scene, args.orbit or 0.0, elevation, args.size or DEFAULT_ORBIT_SIZE, args.up)
    log.debug("camera: %dx%d fx=%.1f position=%s", camera.width, camera.height, camera.fx, camera.position.round(4))
    done = render_to_png(scene, camera, out, args.background, args.backend, overwrite=args.force)
    print(report(done))
    return 0


def cmd_demo(args) -> int:
    """The no-argument job: summarise the bundled demo scene and render one orbit view to demo-render.png."""
    from core.io import read_scene_with_info

    scene, info = read_scene_with_info(DEMO_SCENE)
    print(format_summary(scene_summary(scene, info)))
    out = Path(getattr(args, "out", None) or DEMO_OUTPUT)
    check_output_path(out, force=True)  # the demo's own output may be replaced
    camera = orbit_view(scene, 30.0, 20.0, DEFAULT_ORBIT_SIZE, DEMO_UP)
    log.info("rendering the demo scene at %dx%d on the CPU (the first run compiles the kernels)", *DEFAULT_ORBIT_SIZE)
    done = render_to_png(scene, camera, out, (0.0, 0.0, 0.0), "cpu", overwrite=True)
    done["path"] = str(out.resolve())
    print(report(done))
    return 0


CONVERT_OUTPUTS = {".ply": "graphdeco 3DGS .ply", ".spz": "Niantic SPZ", ".ngs": "NeuralGS (compresses)"}
"""What ``convert`` writes, chosen by the output's extension."""


def convert_format(out: Path) -> str:
    """The output format of ``convert`` for ``out`` (".ply", ".spz" or ".ngs"); UsageError naming the supported
    outputs otherwise (a ``.compressed.ply`` or ``.sog`` is read, not written, by this tool)."""
    name = out.name.lower()
    if name.endswith((".compressed.ply", ".sog", ".splat")):
        kind = next(k for k in (".compressed.ply", ".sog", ".splat") if name.endswith(k))
        raise UsageError(f"{out}: this tool reads {kind} files but does not write them; it writes "
                         + ", ".join(f"{k} ({v})" for k, v in CONVERT_OUTPUTS.items()))
    suffix = out.suffix.lower()
    if suffix not in CONVERT_OUTPUTS:
        raise UsageError(f"{out}: unknown output format {suffix or '(no extension)'}; convert writes "
                         + ", ".join(f"{k} ({v})" for k, v in CONVERT_OUTPUTS.items()))
    return suffix


def cmd_convert(args) -> int:
    """``convert IN -o OUT [--sh-degree N]``: any readable scene to .ply or .spz; to .ngs means compress."""
    out = Path(args.output)
    kind = convert_format(out)
    if args.sh_degree is not None and not 0 <= args.sh_degree <= 3:
        raise UsageError(f"--sh-degree must be 0, 1, 2 or 3, got {args.sh_degree}")
    if kind == ".ngs":
        from core.cli.compress import cmd_compress

        if args.sh_degree is not None:
            raise UsageError("--sh-degree with a .ngs output: compress keeps the scene's SH degree; convert to .ply "
                             "with --sh-degree first")
        log.info("a .ngs output means compressing: running compress with its defaults (see main.py compress --help)")
        return cmd_compress(args)
    check_output_path(out, args.force, kind)
    from core.io.scene_files import load_scene_file

    loaded = load_scene_file(args.input)
    scene = loaded.scene
    if args.sh_degree is not None and args.sh_degree < scene.sh_degree:
        scene = scene.with_sh_degree(args.sh_degree)
    t0 = time.perf_counter()
    if kind == ".spz":
        from core.io.spz import write_spz

        n_bytes = write_spz(scene, out, version=args.spz_version, overwrite=args.force)
    else:
        from core.io import write_ply

        write_ply(scene, out, overwrite=args.force)
        n_bytes = out.stat().st_size
    print(f"wrote {out}: {scene.num_gaussians:,} Gaussians, SH degree {scene.sh_degree}, {n_bytes:,} bytes "
          f"({CONVERT_OUTPUTS[kind]}{f' v{args.spz_version}' if kind == '.spz' else ''}) from {loaded.info.format} "
          f"{loaded.info.bytes:,} bytes, in {time.perf_counter() - t0:.2f} s")
    return EXIT_OK


def cmd_info(args) -> int:
    """``info FILE [--json]``: format, Gaussian count, SH degree, bounds, size and reader warnings."""
    from core.cli.compress import ngs_summary
    from core.codec import is_ngs_file
    from core.io import check_input_file, read_scene_with_info

    path = check_input_file(Path(args.file))
    if is_ngs_file(path):
        summary = ngs_summary(path)
    else:
        scene, info = read_scene_with_info(path)
        summary = scene_summary(scene, info)
    print(json.dumps(summary) if args.json else format_summary(summary))
    return EXIT_OK


def add_commands(sub, common) -> None:
    """``info``, ``render`` and ``demo``."""
    info = sub.add_parser("info", parents=[common], help="what a scene file holds",
                          description="Format, Gaussian count, SH degree, bounds, file size and warnings.")
    info.add_argument("file", help="scene file (.ply, .compressed.ply, .splat, .ngs)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    r = sub.add_parser("render", parents=[common], help="render one view of a scene to a PNG",
                       description="Render one view: camera N of a cameras file, or an orbit view around "
                                   "the scene's robust bounds (default azimuth 0, elevation 20).")
    r.add_argument("file", help="scene file")
    r.add_argument("--out", "-o", required=True, help="output .png (refused if it exists, unless --force)")
    r.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    r.add_argument("--cameras", metavar="PATH",
                   help="cameras.json, transforms*.json, a COLMAP model folder or a dataset folder")
    r.add_argument("--camera", metavar="N", help="camera index (or name) in --cameras (default 0)")
    r.add_argument("--orbit", type=float, metavar="DEGREES", help="orbit view at this azimuth")
    r.add_argument("--elevation", type=float, metavar="DEG", help="orbit elevation (default 20)")
    r.add_argument("--up", type=parse_up, metavar="AXIS",
                   help="world up for orbit views: +z, -y, ... or X,Y,Z (default -y, as COLMAP/3DGS "
                        "captures; Blender scenes such as NeRF-synthetic are +z)")
    r.add_argument("--size", type=parse_size, metavar="WxH",
                   help="image size (default: the camera's size, 800x600 for orbits)")
    r.add_argument("--background", type=parse_background, default=(0.0, 0.0, 0.0), metavar="R,G,B",
                   help="background colour, values in [0, 1], or white/black/gray (default black)")
    r.add_argument("--backend", choices=("auto", "cpu", "gsplat"), default="auto",
                   help="renderer: gsplat needs CUDA; auto uses it when it works, else cpu")
    r.set_defaults(func=cmd_render)

    c = sub.add_parser("convert", parents=[common], help="convert a scene to .ply or .spz (.ngs: compress)",
                       description="Read any supported scene (.ply, .compressed.ply, .splat, .spz, .sog, .ngs) and "
                                   "write OUT in the format its extension names: .ply (graphdeco), .spz (Niantic, "
                                   "version 4 by default), or .ngs (compress with the default codec settings).")
    c.add_argument("input", help="scene file")
    c.add_argument("-o", "--output", required=True, help="output .ply, .spz or .ngs (refused if it exists, unless "
                                                          "--force)")
    c.add_argument("--force", action="store_true", help="replace --output if it exists")
    c.add_argument("--sh-degree", type=int, metavar="N", help="drop SH bands above N (0-3)")
    c.add_argument("--spz-version", type=int, choices=(3, 4), default=4,
                   help="SPZ version to write: 4 (default, zstd per attribute) or 3 (one gzip stream, older readers)")
    c.set_defaults(func=cmd_convert)
    # the compress options a .ngs output uses, at their defaults
    c.set_defaults(preset=None, up=None, background=None, seed=None, eval_size=None, clusters=None, prune=None,
                   lambda_freq=None, fit_iters=None, finetune_iters=None, hidden=None, pe_freqs=None, views=None,
                   view_size=None, dataset=None, cameras=None, device=None, target_psnr=None, target_size=None,
                   residuals=None, predictor=None, no_importance_steps=False, format_version=None, json=False)

    d = sub.add_parser("demo", parents=[common], help="summarise and render the bundled demo scene",
                       description="Summarise the bundled demo scene and render it to demo-render.png.")
    d.add_argument("--out", "-o", help="output .png (default demo-render.png in the current folder)")
    d.set_defaults(func=cmd_demo)
