"""Where things are: the repository, the shared data beside it, the bundled demo scene.

``$NEURALGS_SHARED_DATA`` overrides the shared data folder (default ``../shared/data`` beside the
repository, see ``../shared/data/README.md``). The demo scene, ``resources/demo/donut.ply`` (MIT, see
``resources/demo/donut.LICENSE``), is what ``main.py`` opens without arguments and what ``main.py
demo`` renders; it was made in Blender, so +z is up (COLMAP / graphdeco captures use -y).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

DEMO_SCENE = REPO_ROOT / "resources" / "demo" / "donut.ply"
DEMO_UP = (0.0, 0.0, 1.0)


def shared_data_dir() -> Path:
    """``$NEURALGS_SHARED_DATA``, else ``../shared/data`` beside the repository (whether or not it exists)."""
    return Path(os.environ.get("NEURALGS_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
