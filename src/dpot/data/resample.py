"""Resampling of fields to a target grid (1D/2D/3D): n-linear interpolation, spectral (FFT) zero-pad/truncate.

Arrays are laid out as frames `(T, *space, C)` (time first, channels last), the canonical on-disk layout, so
the mixture can bring datasets of different native grids to one resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from dpot.errors import DpotError

METHODS = ("bilinear", "fft")
_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def target_shape(resolution: int | Sequence[int] | None, space_shape: Sequence[int]) -> tuple[int, ...]:
    """The grid to resample to: `None` keeps `space_shape`, an int is used for every axis."""
    space_shape = tuple(int(s) for s in space_shape)
    if resolution is None:
        return space_shape
    if isinstance(resolution, int):
        shape = (resolution,) * len(space_shape)
    else:
        shape = tuple(int(r) for r in resolution)
    if len(shape) != len(space_shape):
        raise DpotError(
            f"resolution {tuple(shape)} has {len(shape)} axes but the data has "
            f"{len(space_shape)} spatial axes {space_shape}; give one size per axis or one int"
        )
    if any(s < 1 for s in shape):
        raise DpotError(f"resolution {tuple(shape)} must be positive")
    return shape


def resample(frames: torch.Tensor, shape: Sequence[int], method: str = "bilinear") -> torch.Tensor:
    """Resample `frames` `(T, *space, C)` to `(T, *shape, C)`.

    `bilinear`: n-linear interpolation with `align_corners=False` (cell-centred grids, as the reference code);
    `fft`: spectral zero-padding / truncation, exact for band-limited periodic fields. Keeps the dtype.
    """
    shape = tuple(int(s) for s in shape)
    space = tuple(frames.shape[1:-1])
    if len(shape) != len(space):
        raise DpotError(f"cannot resample {len(space)}-D frames {space} to a {len(shape)}-D grid {shape}")
    if shape == space:
        return frames
    if method == "bilinear":
        mode = _LINEAR_MODES.get(len(space))
        if mode is None:
            raise DpotError(f"bilinear resampling supports 1-3 spatial axes, got {len(space)}")
        x = frames.movedim(-1, 1)  # (T, C, *space)
        x = F.interpolate(x, size=shape, mode=mode, align_corners=False)
        return x.movedim(1, -1).contiguous()
    if method == "fft":
        x = frames.to(torch.complex128 if frames.dtype == torch.float64 else torch.complex64)
        for axis, m in enumerate(shape, start=1):
            x = _fft_axis(x, m, axis)
        return x.real.contiguous()
    raise DpotError(f"unknown resample method {method!r}; use one of {', '.join(METHODS)}")


def _fft_axis(x: torch.Tensor, m: int, dim: int) -> torch.Tensor:
    """Spectral resampling of complex `x` along `dim` to `m` points (Nyquist bin split/merged like scipy)."""
    n = x.shape[dim]
    if m == n:
        return x
    X = torch.fft.fft(x, dim=dim)
    k = min(n, m)
    pos, neg = (k + 1) // 2, k // 2  # kept frequencies 0..pos-1 and -neg..-1
    out_shape = list(x.shape)
    out_shape[dim] = m
    Y = X.new_zeros(out_shape)
    Y.narrow(dim, 0, pos).copy_(X.narrow(dim, 0, pos))
    if neg:
        Y.narrow(dim, m - neg, neg).copy_(X.narrow(dim, n - neg, neg))
    if k % 2 == 0:
        if m < n:  # the +m/2 and -m/2 input frequencies alias onto one output bin
            Y.narrow(dim, m - neg, 1).add_(X.narrow(dim, neg, 1))
        else:  # the input Nyquist bin is shared equally between +n/2 and -n/2
            half = Y.narrow(dim, m - neg, 1) * 0.5
            Y.narrow(dim, m - neg, 1).copy_(half)
            Y.narrow(dim, neg, 1).copy_(half)
    return torch.fft.ifft(Y, dim=dim) * (m / n)
