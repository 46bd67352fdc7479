"""NeuralGS Studio entry point.

    python main.py                 the demo job for now (later: the GUI): summarise and render the demo scene
    python main.py info FILE       what a scene file holds
    python main.py render FILE ... one view to a PNG
    python main.py compress IN -o OUT.ngs   NeuralGS compression (decompress, eval: see --help)
    python main.py bench render    renderer speed against the targets (bench ablation, bench decode)
    python main.py --help          everything else

The command line lives in ``core.cli``; this file only hands over to it.
"""

from __future__ import annotations

import os
import sys

# torch (libgomp) and numba (omp layer) each run an OpenMP pool; with the default ACTIVE wait policy
# their idle threads spin, and on a busy 2-core machine every parallel call slowed down 3-10x
# (measured: .ngs decode of 200k Gaussians 2.6-9 s vs 0.7 s, render fwd+bwd 5.7 s vs 1.0 s at load 3.5).
# Must be set before torch or numba load; the user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    """Run the command line (or, without arguments, the demo job) and return the exit status."""
    try:
        from core.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the CLI's own handler was in place
        sys.stderr.write("error: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
