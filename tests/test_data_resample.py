"""Resampling: FFT exact for band-limited periodic fields, bilinear exact for linear fields (1D/2D/3D)."""

import math

import numpy as np
import pytest
import scipy.signal
import torch

from dpot.data import resample
from dpot.errors import DpotError


def _periodic(shape, modes=2):
    """Band-limited periodic field `(1, *shape, 2)` at x_i = i/n, frequencies below every grid's Nyquist."""
    axes = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    u = sum(np.cos(2 * math.pi * (k + 1) * a + 0.3 * k) for k, a in enumerate(axes[:modes]))
    v = np.sin(2 * math.pi * sum(axes)) + 0.5
    return torch.tensor(np.stack([u, v], -1)[None], dtype=torch.float64)


@pytest.mark.parametrize(
    "src,dst", [((16,), (24,)), ((24,), (10,)), ((12, 10), (20, 16)), ((20, 16), (8, 12)), ((8, 10, 6), (12, 8, 10))]
)
def test_fft_exact_for_band_limited(src, dst):
    out = resample(_periodic(src), dst, "fft")
    torch.testing.assert_close(out, _periodic(dst), atol=1e-5, rtol=0)
    assert out.shape == (1, *dst, 2)


@pytest.mark.parametrize("n,m", [(8, 13), (8, 16), (13, 6), (16, 6)])
def test_fft_nyquist_matches_scipy(n, m):
    x = np.random.default_rng(0).standard_normal(n)
    got = resample(torch.tensor(x)[None, :, None], (m,), "fft")[0, :, 0].numpy()
    np.testing.assert_allclose(got, scipy.signal.resample(x, m), atol=1e-5)


def _linear(shape):
    """A linear field on a cell-centred grid x_i = (i + 0.5)/n, shape `(2, *shape, 1)` (two frames)."""
    axes = np.meshgrid(*[(np.arange(n) + 0.5) / n for n in shape], indexing="ij")
    f = 1.0 + sum((k + 2) * a for k, a in enumerate(axes))
    return torch.tensor(np.stack([f, -f])[..., None], dtype=torch.float32)


@pytest.mark.parametrize("src,dst", [((16,), (8,)), ((12, 16), (6, 8)), ((8, 8, 12), (4, 4, 6))])
def test_bilinear_exact_for_linear_field_downsampling(src, dst):
    torch.testing.assert_close(resample(_linear(src), dst, "bilinear"), _linear(dst), atol=1e-5, rtol=0)


def test_bilinear_upsampling_exact_in_the_interior():
    out, want = resample(_linear((8, 6)), (16, 12), "bilinear"), _linear((16, 12))
    torch.testing.assert_close(out[:, 1:-1, 1:-1], want[:, 1:-1, 1:-1], atol=1e-5, rtol=0)
    same = _linear((8, 6))
    assert resample(same, (8, 6)) is same  # native grid: no copy, no interpolation


def test_errors():
    with pytest.raises(DpotError, match="unknown resample"):
        resample(_linear((4, 4)), (8, 8), "cubic")
    with pytest.raises(DpotError, match="2-D"):
        resample(_linear((4, 4)), (8,), "fft")
