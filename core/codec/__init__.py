"""Compressed-scene file formats: the NeuralGS ``.ngs`` container (DESIGN.md §7).

- :func:`write_ngs` / :func:`encode_ngs`: NeuralGSModel -> file / bytes (atomic write).
- :func:`read_ngs` / :func:`decode_ngs`: file / bytes -> NeuralGSModel, optionally only the first
  ``n_clusters`` (largest) clusters (progressive loading); ``model.decode()`` gives the scene.
- :func:`read_ngs_header`: the validated header as a dict, reading nothing else (for ``info``).
- :func:`is_ngs_file`: whether a file starts with the ``.ngs`` magic (reads 4 bytes).
- :func:`quantise_model_` (and ``quantise_model_weights_`` / ``quantise_model_positions_``): snap a
  model in memory to exactly what a file stores.
- :class:`NgsFormatError` (an InputFileError): every problem with an ``.ngs`` file.

Byte layout: :mod:`core.codec.ngs_format` (the container), :mod:`core.codec.ngs_format_v1` and
:mod:`core.codec.ngs_format_v2` (each version's header). Torch loads only when an encode/decode function
is used.
"""

from __future__ import annotations

from core.codec.ngs_format import NgsFormatError, is_ngs_file
from core.codec.ngs_layout import read_ngs_header

__all__ = [
    "NgsFormatError",
    "decode_ngs",
    "encode_ngs",
    "is_ngs_file",
    "quantise_model_",
    "quantise_model_positions_",
    "quantise_model_weights_",
    "read_ngs",
    "read_ngs_header",
    "write_ngs",
]

_LAZY = {
    "decode_ngs": "core.codec.ngs",
    "encode_ngs": "core.codec.ngs",
    "read_ngs": "core.codec.ngs",
    "write_ngs": "core.codec.ngs",
    "quantise_model_": "core.codec.ngs",
    "quantise_model_positions_": "core.codec.ngs",
    "quantise_model_weights_": "core.codec.ngs",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'core.codec' has no attribute {name!r}")
