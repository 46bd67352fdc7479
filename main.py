"""NeuralGS Studio entry point.

    python main.py                 the demo job for now (later: the GUI): summarise and render the demo scene
    python main.py info FILE       what a scene file holds
    python main.py render FILE ... one view to a PNG
    python main.py bench render    renderer speed against the targets
    python main.py --help          everything else

The command line lives in ``core.cli``; this file only hands over to it.
"""

from __future__ import annotations

import sys


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
