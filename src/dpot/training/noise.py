"""Input noise for denoising training: the reference's `x + ε·‖x‖₂·N(0,1)` or resolution-free `κ·RMS` form.

The norm (or RMS) runs over all space points and input frames, per sample and channel, so zero-padded channels
get no noise. Targets stay clean; noise is applied only during training.
"""

from __future__ import annotations

import torch


def add_noise(
    x: torch.Tensor, level: float, mode: str = "reference", generator: torch.Generator | None = None
) -> torch.Tensor:
    """`x` `(B, *space, T, C)` plus Gaussian noise scaled per sample and channel.

    mode "reference": std = level·‖x‖₂ (ε = 5e-4 at 128²×10 frames ≈ 20 % of the RMS; grid-dependent);
    mode "rms": std = level·RMS(x) (κ, the same relative level at any resolution or window length).
    """
    if level == 0:
        return x
    dims = tuple(range(1, x.dim() - 1))
    xf = x.float()
    if mode == "reference":
        scale = torch.linalg.vector_norm(xf, dim=dims, keepdim=True)
    elif mode == "rms":
        scale = xf.pow(2).mean(dim=dims, keepdim=True).sqrt()
    else:
        raise ValueError(f"noise mode must be 'reference' or 'rms', got {mode!r}")
    # the scale is a constant of the perturbation: no gradient through it (at a zero-padded channel the RMS's
    # gradient is 0·inf = NaN, which made every multi-step rollout without pushforward skip its steps)
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)
    return (xf + level * scale.detach() * eps).to(x.dtype)
