"""Differentiable Gaussian splat renderers behind one interface.

``render(scene, camera, background, backend)`` -> ``RenderOutput`` (see ``core.render.api``;
``RenderOutput`` lives in ``core.render.output``).
Backends: ``"cpu"`` (torch + numba tiles), ``"gsplat"`` (CUDA only), ``"reference"`` (brute force,
tests only), ``"auto"`` (gsplat when CUDA works, else cpu). Heavy modules load lazily.
"""

from __future__ import annotations


def render(*args, **kwargs):
    """See :func:`core.render.api.render`."""
    from core.render.api import render as _render

    return _render(*args, **kwargs)


def __getattr__(name: str):
    if name == "RenderOutput":
        from core.render.output import RenderOutput

        return RenderOutput
    if name in ("BACKENDS", "resolve_backend"):
        from core.render import api

        return getattr(api, name)
    raise AttributeError(name)
