"""The NeuralGS compression pipeline (DESIGN §5) as plain, seeded, device-agnostic generators.

Stages (each a generator of :class:`ProgressRecord` returning its result; compose them with
``result = yield from stage(...)``, pause by not calling ``next()``, cancel with ``close()``):

- :func:`core.pipeline.views.build_views` -> ViewSet (training / held-out views and targets)
- :func:`core.pipeline.importance.importance_scores` (Eq. 2-3) and ``prune``
- :func:`core.pipeline.kmeans.kmeans_stage` (attribute clustering)
- :func:`core.pipeline.fit.fit_clusters` (Eq. 4)
- :func:`core.pipeline.finetune.finetune` (Eq. 5-7, losses in :mod:`core.pipeline.losses`)
- :func:`core.pipeline.compress.compress`: all of them -> CompressionResult

Only the torch-free parts (config, progress) load with the package; the rest loads on first use.
"""

from __future__ import annotations

from core.pipeline.config import PRESETS, CompressionConfig, config_from_preset
from core.pipeline.progress import ProgressRecord, Throttle, run_to_completion

_LAZY = {
    "compress": "core.pipeline.compress",
    "CompressionResult": "core.pipeline.compress",
    "score_renders": "core.pipeline.evaluation",
    "evaluate_pair": "core.pipeline.evaluation",
    "ViewSet": "core.pipeline.views",
    "build_views": "core.pipeline.views",
}

__all__ = ["PRESETS", "CompressionConfig", "config_from_preset", "ProgressRecord", "Throttle",
           "run_to_completion", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'core.pipeline' has no attribute {name!r}")
