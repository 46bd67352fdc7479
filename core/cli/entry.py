"""The NeuralGS Studio command line: ``python main.py <command> ...``.

Commands: ``info`` (what a scene file holds), ``render`` (one view to a PNG), ``bench render``
(renderer speed against the targets), ``demo`` (summarise and render the demo scene). ``main.py`` without
a command starts the desktop application (``app.main``; main.py routes there, core never imports Qt);
``main(argv)`` called here without a command still runs ``demo``.

Results go to stdout; logging (INFO, or DEBUG with ``-v``) goes to stderr. A user error (a bad file, a
bad option, an output that exists) prints one line ``error: <path>: <problem>`` and exits with 2, never
a traceback; Ctrl-C exits with 130. Heavy modules are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from core.cli import batch, bench, compress, scene
from core.cli.common import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from core.errors import InputFileError, OutputFileError, UsageError

log = logging.getLogger("core.cli")



class _StderrFormatter(logging.Formatter):
    """``message`` for INFO, ``warning: message`` / ``error: message`` otherwise; more detail with -v."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(asctime)s %(name)s: %(message)s" if verbose else "%(message)s", "%H:%M:%S")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno == logging.INFO and not self.verbose:
            return text
        return f"{record.levelname.lower()}: {text}"


def configure_logging(verbose: bool) -> None:
    """INFO (or DEBUG) to stderr through one handler on the root logger; quiet third-party loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter(verbose))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("numba", "matplotlib", "PIL", "moderngl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- commands -------------------------------------------------------------------------------------------




















# -- the parser ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command (cheap to build: no heavy imports)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debug messages (and tracebacks of internal errors)")

    p = argparse.ArgumentParser(
        prog="main.py", parents=[common],
        description="NeuralGS Studio: compress 3D Gaussian Splatting scenes with NeuralGS. "
                    "Without a command, main.py starts the desktop application: main.py [SCENE] [--cameras PATH] "
                    "[--screenshot OUT.png [--force]] [--window-size WxH] (--screenshot needs no display: it "
                    "saves a PNG of the window and exits). 'demo' summarises and renders the bundled demo scene.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    scene.add_commands(sub, common)
    compress.add_commands(sub, common)
    batch.add_commands(sub, common)
    bench.add_commands(sub, common)
    return p






def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command and return the process exit status.

    SIGTERM (``kill``, a job scheduler's stop) is handled like Ctrl-C: the command unwinds, removes its
    scratch files and partial outputs, and exits with status 130. SIGINT raises KeyboardInterrupt even when
    the process inherited it ignored (started with ``&`` by a non-interactive shell).
    """
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    verbose = bool(getattr(args, "verbose", False))
    configure_logging(verbose)
    func = getattr(args, "func", scene.cmd_demo)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm) if in_main_thread else None
    # A process started in the background by a non-interactive shell (`cmd &`, nohup, some CI runners) inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt: Ctrl-C / `kill -INT` would be lost and a
    # compression would run on. Measured: the suite's Ctrl-C test failed only when pytest itself ran that way.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main_thread else None
    try:
        return func(args)
    except (InputFileError, OutputFileError, UsageError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `main.py info --json | head -c 10`: stop quietly, as the docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL
    except MemoryError:
        log.error("out of memory (try a smaller --size or --n)")
        return EXIT_INTERNAL
    except Exception as exc:
        if verbose:
            log.exception("internal error")
        else:
            log.error("internal error: %s: %s (run with -v for the traceback)", type(exc).__name__, exc)
        return EXIT_INTERNAL
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
