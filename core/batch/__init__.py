"""Compressing many scenes at once on Ray (``main.py batch``).

The package knows scenes, files and Ray, not the compression itself: the command line hands it a *work*
function (one scene file and its dataset folder -> the ``.ngs`` bytes and a report) that each Ray task runs.
``inputs`` finds the scenes and names their outputs, ``plan`` reads a per-scene CSV, ``runtime`` starts or
joins Ray (loopback only when local), ``task`` is what one Ray task runs, ``manifest`` records every scene
(``batch.csv``, ``batch.json``, the settings hash ``--resume`` compares), ``progress`` draws the overall bar,
``runner`` drives it all from the driver (reads inputs, submits, writes outputs atomically).
"""
