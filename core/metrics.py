"""Image quality metrics on float images in [0, 1]: PSNR and SSIM (11x11 Gaussian window, sigma 1.5)."""

from __future__ import annotations

import numpy as np
import torch


def _as_tensor(img) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(img) if not isinstance(img, torch.Tensor) else img)
    return t.detach().to(torch.float64)


def psnr(a, b, max_value: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two images of the same shape [H, W, C] (or any)."""
    a, b = _as_tensor(a), _as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = float(torch.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * np.log10(max_value**2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim_map(a: torch.Tensor, b: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM of two [H, W, C] tensors in [0, 1], zero-padded as graphdeco 3DGS does (differentiable),
    [H, W, C]."""
    c = a.shape[-1]
    x = a.permute(2, 0, 1)[None]
    y = b.permute(2, 0, 1)[None]
    w = _gaussian_window(window_size, sigma).to(a)[None, None].expand(c, 1, window_size, window_size)
    conv = lambda t: torch.nn.functional.conv2d(t, w, padding=window_size // 2, groups=c)
    mu_x, mu_y = conv(x), conv(y)
    sxx = conv(x * x) - mu_x**2
    syy = conv(y * y) - mu_y**2
    sxy = conv(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return m[0].permute(1, 2, 0)


def ssim(a, b) -> float:
    """Mean SSIM between two [H, W, C] images in [0, 1] (11x11 Gaussian window, sigma 1.5, as graphdeco 3DGS).

    Computed in float32 (the renders' precision; within 1e-5 of float64): torch's grouped float64
    convolution on the CPU took 9-10 s for one 800x800 pair on one thread, float32 0.3-0.4 s.
    """
    a, b = _as_tensor(a).to(torch.float32), _as_tensor(b).to(torch.float32)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() == 2:
        a, b = a[..., None], b[..., None]
    return float(ssim_map(a, b).mean())
