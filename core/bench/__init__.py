"""Benchmarks behind ``python main.py bench ...``: numbers checked against the project's targets.

- :mod:`core.bench.render`: the CPU differentiable renderer and the display renderer (``bench render``).
- :mod:`core.bench.ablation`: the paper's Table-4 ablation on a real scene (``bench ablation``).
- :mod:`core.bench.decode`: random NeuralGS models and ``.ngs`` decode speed (``bench decode``).
- :mod:`core.bench.formats`: ``.ngs`` against compressed ``.ply``, SPZ and SOG (``bench formats``).
"""
