"""The NeuralGS Studio command line: ``python main.py <command> ...``.

- :mod:`core.cli.entry`: the parser, logging to stderr, exit statuses and error handling (:func:`main`).
- :mod:`core.cli.scene`: ``info``, ``render``, ``demo``.
- :mod:`core.cli.compress`: ``compress``, ``decompress``, ``eval``.
- :mod:`core.cli.bench`: ``bench render|ablation|decode|formats`` (the benchmarks are in :mod:`core.bench`).
- :mod:`core.cli.common`: option parsers, summaries, the progress line, PNG output.

Building the parser imports nothing heavy (no torch, no numpy): ``main.py --help`` stays fast.
"""

from core.cli.entry import build_parser, configure_logging, main

__all__ = ["build_parser", "configure_logging", "main"]
