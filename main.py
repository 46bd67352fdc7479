"""NeuralGS Studio entry point.

    python main.py                     the desktop application on the bundled demo scene
    python main.py SCENE               the application on SCENE (.ply, .compressed.ply, .splat, .ngs)
    python main.py --screenshot OUT.png [SCENE]   no display needed: render the window to a PNG and exit
    python main.py info FILE           what a scene file holds
    python main.py render FILE ...     one view to a PNG
    python main.py compress IN -o OUT.ngs   NeuralGS compression (decompress, eval: see --help)
    python main.py bench render        renderer speed against the targets (bench ablation, bench decode)
    python main.py demo                summarise the demo scene and render it to demo-render.png
    python main.py --help              every command-line command

The application lives in ``app`` (started by ``app.main.run``), the command line in ``core.cli``;
this file only decides which of the two the arguments ask for.
"""

from __future__ import annotations

import os
import sys

# torch (libgomp) and numba (omp layer) each run an OpenMP pool; with the default ACTIVE wait policy
# their idle threads spin, and on a busy 2-core machine every parallel call slowed down 3-10x
# (measured: .ngs decode of 200k Gaussians 2.6-9 s vs 0.7 s, render fwd+bwd 5.7 s vs 1.0 s at load 3.5).
# Must be set before torch or numba load; the user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def wants_gui(argv: list[str]) -> bool:
    """True when ``argv`` asks for the application (no command), False for a command-line command."""
    import argparse

    from app.main import looks_like_gui
    from core.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return looks_like_gui(argv, set(sub.choices))


def main(argv: list[str] | None = None) -> int:
    """Run the application or the command line and return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if wants_gui(argv):
            from app.main import run

            return run(argv)
        from core.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the CLI's own handler was in place
        sys.stderr.write("error: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
