"""NeuralGS Studio core: Qt-free data model, file formats, renderers, pipeline and CLI.

Heavy imports (torch, numba, moderngl, gsplat) live in the submodules, never here.
"""
