"""Open any scene file the project reads: the one function every command, benchmark and the app uses.

:func:`load_scene_file` reads graphdeco ``.ply``, PlayCanvas ``.compressed.ply``, ``.splat`` (through
:func:`core.io.read_scene_with_info`) and the project's own ``.ngs`` (decoded by :mod:`core.codec`,
whose model is kept for callers that show clusters). It is the one place where the io layer reaches
up to the codec (declared in ``pyproject.toml``'s import contracts): a ``.ngs`` is a scene file
to a user, but its reader is the codec's decoder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from core.io import SceneFileInfo, check_input_file, read_scene_with_info
from core.scene import GaussianScene


@dataclass(frozen=True)
class LoadedScene:
    """A scene as read from a file. ``model``: the NeuralGSModel of a ``.ngs`` (None for other formats)."""

    scene: GaussianScene
    info: SceneFileInfo
    model: Any = None


def load_scene_file(path: str | os.PathLike[str]) -> LoadedScene:
    """Read any supported scene file, recognised by content; a ``.ngs`` is decoded (CPU, float32).

    Raises InputFileError (naming the file and the problem) for anything that is not a readable scene.
    """
    path = check_input_file(path)
    from core.codec import is_ngs_file

    if not is_ngs_file(path):
        scene, info = read_scene_with_info(path)
        return LoadedScene(scene, info)
    from core.codec.ngs import read_ngs_scene
    from core.codec.ngs_layout import read_ngs_header

    model, scene = read_ngs_scene(path)
    version = read_ngs_header(path).get("version", "")
    info = SceneFileInfo(path=path, format="ngs", bytes=path.stat().st_size, n_gaussians=scene.num_gaussians,
                         sh_degree=scene.sh_degree, warnings=[], encoding=f"v{version}" if version else "")
    return LoadedScene(scene, info, model)
