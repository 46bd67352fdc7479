"""Fine-tuning losses (paper §3.5): L1, SSIM (Eq. 5) and the frequency loss (Eq. 6-7).

Images are [H, W, 3] float tensors in [0, 1] (renders may leave the range slightly).

Frequency loss, our concrete choices (the paper gives neither the filter nor the normalisation):

- **Window.** Each channel is multiplied by a separable Tukey window (flat centre, cosine tapers
  over ``TAPER`` = 25% of each side) before the FFT. The DFT treats the image as periodic, so
  without it a smooth brightness change becomes a jump at the wrap-around and leaks into every
  high frequency; a shorter taper is itself a sharp feature whose spectrum reaches past the cutoff
  (on a 64x64 test image, adding 0.1 everywhere moves the phase term by 0.012 with a 10% taper,
  by 0.002 with 25%).
- **Spectrum.** ``torch.fft.fft2(norm="ortho")`` per channel.
- **High-pass.** F_hat = H * F with the smooth Gaussian high-pass H(r) = 1 - exp(-r^2 / (2 r0^2)),
  r the radial frequency as a fraction of the Nyquist radius (r = 1 at 0.5 cycles/pixel along an
  axis) and r0 = ``cutoff`` (default 0.2: H = 0.39 at r0, 0.86 at 2 r0, 0 at DC).
- **Amplitude term:** sum over bins of | |F_hat| - |F_hat_gt| |, divided by the target's summed
  high-pass amplitude (a relative error, dimensionless; a 3x3 box blur scores about 0.6).
- **Phase term:** the wrapped phase difference angle(F_hat conj(F_hat_gt)) in (-pi, pi], averaged
  with weights w = min(|F_hat|, |F_hat_gt|) (detached): sum w |dphi| / sum w, in radians. The phase
  of a near-zero bin is noise; the weight silences such bins and bounds the gradient
  (|d dphi / dF| = 1 / |F| is multiplied by w <= |F|).

L_freq = amplitude term + phase term (Eq. 6, normalised instead of summed so that its value does
not grow with the image size). Both terms are O(0.1-1) for visible high-frequency errors (1-pixel
edge shift: about 1.2, noise of std 0.03: about 0.9) and below 0.01 for low-frequency ones, so with
lambda_freq = 0.01 (Eq. 7) the term adds about 1e-3..1e-2 to an L1 of about 1e-2: a regulariser
of the same order as the render loss, as in the paper.
"""

from __future__ import annotations

import math

import torch

from core.metrics import ssim_map

TAPER = 0.25
"""Fraction of each image side covered by the Tukey window's cosine taper."""
AMPLITUDE_FLOOR = 1e-3
"""Mean high-pass amplitude added to the amplitude term's denominator (a flat target has none)."""


def l1_loss(render: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (scalar)."""
    return (render - target).abs().mean()


def ssim_loss(render: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean SSIM (11x11 Gaussian window, as graphdeco 3DGS), scalar in [0, 2]."""
    return 1.0 - ssim_map(render, target).mean()


def render_loss(render: torch.Tensor, target: torch.Tensor, lambda_ssim: float = 0.2) -> torch.Tensor:
    """Eq. 5: (1 - lambda) L1 + lambda (1 - SSIM)."""
    return (1.0 - lambda_ssim) * l1_loss(render, target) + lambda_ssim * ssim_loss(render, target)


def _tukey(n: int, taper: float, device, dtype) -> torch.Tensor:
    m = int(round(taper * n))
    w = torch.ones(n, device=device, dtype=dtype)
    if m > 0:
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(m, device=device, dtype=dtype) + 0.5) / m)
        w[:m] = ramp
        w[n - m:] = ramp.flip(0)
    return w


def highpass_mask(height: int, width: int, cutoff: float = 0.2, device=None,
                  dtype=torch.float32) -> torch.Tensor:
    """H [H, W] = 1 - exp(-r^2 / (2 cutoff^2)) in fft2's bin layout; r: radial frequency / Nyquist."""
    fy = torch.fft.fftfreq(height, device=device, dtype=dtype) / 0.5
    fx = torch.fft.fftfreq(width, device=device, dtype=dtype) / 0.5
    r2 = fy[:, None] ** 2 + fx[None, :] ** 2
    return 1.0 - torch.exp(-r2 / (2.0 * cutoff * cutoff))


def highpass_spectrum(image: torch.Tensor, cutoff: float = 0.2) -> torch.Tensor:
    """F_hat [3, H, W] complex: the windowed, orthonormal 2D DFT of each channel times the high-pass."""
    h, w = image.shape[0], image.shape[1]
    win = _tukey(h, TAPER, image.device, image.dtype)[:, None] * _tukey(w, TAPER, image.device, image.dtype)[None]
    spec = torch.fft.fft2(image.permute(2, 0, 1) * win, norm="ortho")
    return spec * highpass_mask(h, w, cutoff, image.device, image.dtype)


def frequency_loss(render: torch.Tensor, target: torch.Tensor, cutoff: float = 0.2) -> torch.Tensor:
    """Eq. 6 (scalar): relative amplitude L1 + amplitude-weighted wrapped-phase L1 of the high-passed spectra."""
    f = highpass_spectrum(render, cutoff)
    with torch.no_grad():
        g = highpass_spectrum(target, cutoff)
    amp, amp_gt = f.abs(), g.abs()
    amplitude = (amp - amp_gt).abs().sum() / (amp_gt.sum() + AMPLITUDE_FLOOR * amp_gt.numel())
    z = f * g.conj()  # angle(z) = phase(F_hat) - phase(F_hat_gt), wrapped to (-pi, pi]
    w = torch.minimum(amp, amp_gt).detach()
    live = w > 1e-12 * (1.0 + float(amp_gt.max()))
    z_safe = torch.where(live, z, torch.ones_like(z))  # angle() has no gradient at 0
    dphi = torch.atan2(z_safe.imag, z_safe.real).abs()
    phase = (w * dphi).sum() / w.sum().clamp_min(1e-12)
    return amplitude + phase


def total_loss(render: torch.Tensor, target: torch.Tensor, lambda_ssim: float = 0.2, lambda_freq: float = 0.01,
               cutoff: float = 0.2) -> torch.Tensor:
    """Eq. 7: L_render + lambda_freq L_freq (the frequency term is skipped when lambda_freq is 0)."""
    loss = render_loss(render, target, lambda_ssim)
    if lambda_freq > 0:
        loss = loss + lambda_freq * frequency_loss(render, target, cutoff)
    return loss
