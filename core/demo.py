"""The bundled demo scene: where it is and which way is up.

``resources/demo/donut.ply`` (MIT, see ``resources/demo/donut.LICENSE``) is what ``main.py`` opens without
arguments and what ``main.py demo`` renders. It was made in Blender, so +z is up (COLMAP / graphdeco
captures use -y).
"""

from __future__ import annotations

from pathlib import Path

DEMO_SCENE = Path(__file__).resolve().parents[1] / "resources" / "demo" / "donut.ply"
DEMO_UP = (0.0, 0.0, 1.0)
