"""DPOT building blocks, channels-last and dimension-generic (1D/2D/3D share every line).

Parameters keep the reference network's names and shapes (conv layouts `[out, in, *kernel]`), so reference
state dicts load unchanged; the computations run as matmuls on channels-last tensors, which is what makes them
fast on CPUs and easy for `torch.compile` to fuse.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import nn


def patchify(x: torch.Tensor, patch: int, ndim: int) -> torch.Tensor:
    """`(B, *space, T, C)` -> `(B, *space/P, T, P**ndim * C)`, flattened as (p1, .., pd, c)."""
    b, space, t, c = x.shape[0], x.shape[1 : 1 + ndim], x.shape[-2], x.shape[-1]
    grid = [s // patch for s in space]
    split = [b]
    for n in grid:
        split += [n, patch]
    x = x.reshape(*split, t, c)
    perm = [
        0,
        *(1 + 2 * i for i in range(ndim)),
        1 + 2 * ndim,
        *(2 + 2 * i for i in range(ndim)),
        2 + 2 * ndim,
    ]
    return x.permute(perm).reshape(b, *grid, t, patch**ndim * c)


def unpatchify(x: torch.Tensor, patch: int, ndim: int, t: int, c: int) -> torch.Tensor:
    """`(B, *grid, P**ndim, t*c)` -> `(B, *grid*P, t, c)`: inverse of `patchify` (index t*c_total + c)."""
    b, grid = x.shape[0], x.shape[1 : 1 + ndim]
    x = x.reshape(b, *grid, *([patch] * ndim), t, c)
    perm = [0]
    for i in range(ndim):
        perm += [1 + i, 1 + ndim + i]
    perm += [1 + 2 * ndim, 2 + 2 * ndim]
    return x.permute(perm).reshape(b, *(n * patch for n in grid), t, c)


def fp32(device: torch.device) -> AbstractContextManager:
    """Autocast off on `device`: the phase, basis and FFT computations run in fp32 inside it (bf16 keeps 8
    mantissa bits, so e.g. a phase of 1000 would be off by up to 4 radians)."""
    return torch.autocast(device.type, enabled=False)


def coordinate_field(
    space: tuple[int, ...], t: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """`(*space, t, ndim+1)` coordinates: every space axis and window position on linspace(0, 1), built
    directly on `device` (no host-to-device copy)."""
    axes = [torch.linspace(0, 1, n, device=device, dtype=dtype) for n in (*space, t)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def _reset_conv(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int) -> None:
    """PyTorch's default Conv/Linear init (what the reference network keeps): kaiming_uniform(a=sqrt(5))."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    nn.init.uniform_(weight, -bound, bound)  # == kaiming_uniform_(a=sqrt(5)) for this fan_in
    if bias is not None:
        nn.init.uniform_(bias, -bound, bound)


class ConvWeight(nn.Module):
    """Weights of a Conv/ConvTranspose with kernel == stride, applied as a channels-last matmul.

    `weight` is `[out, in, *k]` (`[in, out, *k]` when `transposed`), the reference layout; `matrix()` gives
    the equivalent `(k^d*in, out)` (or `(in, k^d*out)`) matrix in the flattening order of `patchify`.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, ndim: int, transposed: bool = False):
        super().__init__()
        self.ndim, self.transposed = ndim, transposed
        shape = (in_ch, out_ch) if transposed else (out_ch, in_ch)
        self.weight = nn.Parameter(torch.empty(*shape, *([kernel] * ndim)))
        self.bias = nn.Parameter(torch.empty(out_ch))
        # PyTorch computes fan_in from weight.size(1) for both Conv and ConvTranspose.
        _reset_conv(self.weight, self.bias, shape[1] * kernel**ndim)

    def matrix(self) -> torch.Tensor:
        """The kernel as a matmul operand (see class docstring)."""
        w, nd = self.weight, self.ndim
        k = tuple(range(2, 2 + nd))
        if self.transposed:  # [in, out, *k] -> (in, (*k, out))
            return w.permute(0, *k, 1).reshape(w.shape[0], -1)
        return w.permute(*k, 1, 0).reshape(-1, w.shape[0])  # [out, in, *k] -> ((*k, in), out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pointwise use (kernel 1): `(..., in)` -> `(..., out)`."""
        return F.linear(x, self.weight.flatten(1), self.bias)


class PointwiseMLP(nn.Sequential):
    """Conv1x1 -> GELU -> Conv1x1 on channels-last input (keys `0.*`, `2.*` as in the reference)."""

    def __init__(self, dim: int, hidden: int, out: int, ndim: int):
        super().__init__(ConvWeight(dim, hidden, 1, ndim), nn.GELU(), ConvWeight(hidden, out, 1, ndim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[2](F.gelu(self[0](x)))


class GroupNormCL(nn.GroupNorm):
    """GroupNorm over (channel group, all space) for channels-last input.

    Runs PyTorch's fused kernel on the channels-last view (no copy for 2D/3D), always in fp32: the statistics
    are sums over whole groups (CPU autocast would otherwise run it in the input's bf16).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with fp32(x.device):
            y = F.group_norm(
                x.movedim(-1, 1).float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps
            )
        return y.movedim(1, -1).to(x.dtype)


class SpectralMixer(nn.Module):
    """AFNO-style Fourier attention without soft-shrink: a block-diagonal complex 2-layer MLP shared by all
    kept modes, plus the normalised-input skip (`filter` in the reference).

    The complex product runs as ONE real batched matmul per layer: each block's `(re, im)` pair is packed into
    a `(2b, 2b)` real matrix and the kept modes are the batch rows. FFTs always run in fp32 (also under bf16
    autocast). Only the kept modes are gathered; dropped modes are restored by `irfftn`'s zero padding.
    """

    def __init__(self, dim: int, n_blocks: int, ndim: int, modes: int | None, symmetric: bool):
        super().__init__()
        self.dim, self.n_blocks, self.ndim = dim, n_blocks, ndim
        self.block = dim // n_blocks
        self.modes, self.symmetric = modes, symmetric
        scale = 1.0 / (self.block * self.block)  # reference init: uniform(0, 1/b^2)
        self.w1 = nn.Parameter(scale * torch.rand(2, n_blocks, self.block, self.block))
        self.b1 = nn.Parameter(scale * torch.rand(2, n_blocks, self.block))
        self.w2 = nn.Parameter(scale * torch.rand(2, n_blocks, self.block, self.block))
        self.b2 = nn.Parameter(scale * torch.rand(2, n_blocks, self.block))

    @staticmethod
    def _pack(w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(2, h, i, o) complex weights -> (h, 2i, 2o) real matrix acting on interleaved (re, im) rows."""
        wr, wi = w[0], w[1]
        top = torch.stack([wr, wi], dim=-1)  # input re: contributes wr to out re, wi to out im
        bot = torch.stack([-wi, wr], dim=-1)  # input im: -wi to out re, wr to out im
        h, i, o = wr.shape
        mat = torch.stack([top, bot], dim=2).reshape(h, 2 * i, 2 * o)
        return mat, b.permute(1, 2, 0).reshape(h, 1, 2 * o)

    def _gather(self, z: torch.Tensor) -> torch.Tensor:
        """Kept modes of the spectrum `(B, *freq, D)`; full-FFT axes first, the rfft axis last."""
        m = self.modes
        if m is None:
            return z
        for ax in range(1, self.ndim):  # full-FFT axes
            n = z.shape[ax]
            if self.symmetric and 2 * m - 1 < n:
                z = torch.cat([z.narrow(ax, 0, m), z.narrow(ax, n - m + 1, m - 1)], dim=ax)
            elif not self.symmetric and m < n:
                z = z.narrow(ax, 0, m)
        n = z.shape[self.ndim]
        return z.narrow(self.ndim, 0, m) if m < n else z

    def _scatter(self, z: torch.Tensor, freq: tuple[int, ...]) -> torch.Tensor:
        """Put symmetric-mode negative frequencies back at the end of their axes (zeros between)."""
        if self.modes is None or not self.symmetric:
            return z
        m = self.modes
        for ax in range(1, self.ndim):
            n = freq[ax - 1]
            if 2 * m - 1 < n:
                gap = list(z.shape)
                gap[ax] = n - (2 * m - 1)
                z = torch.cat([z.narrow(ax, 0, m), z.new_zeros(gap), z.narrow(ax, m, m - 1)], dim=ax)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, *grid, D)` -> same shape: irfft(MLP(rfft(x))) + x."""
        dims = tuple(range(1, 1 + self.ndim))
        grid = x.shape[1 : 1 + self.ndim]
        with fp32(x.device):
            spec = torch.fft.rfftn(x.float(), dim=dims, norm="ortho")
        kept = self._gather(spec)
        kshape = kept.shape
        h, b = self.n_blocks, self.block
        rows = torch.view_as_real(kept).reshape(-1, h, 2 * b).transpose(0, 1)  # (h, M, 2b) interleaved re/im
        w1, b1 = self._pack(self.w1, self.b1)
        w2, b2 = self._pack(self.w2, self.b2)
        o = F.gelu(torch.baddbmm(b1, rows, w1))  # GELU on re and im separately
        o = torch.baddbmm(b2, o, w2)
        out = torch.view_as_complex(o.float().transpose(0, 1).reshape(*kshape, 2).contiguous())
        out = self._scatter(out, tuple(grid))
        with fp32(x.device):
            y = torch.fft.irfftn(out, s=tuple(grid), dim=dims, norm="ortho")
        return y.to(x.dtype) + x


class Block(nn.Module):
    """Fourier-attention block of DPOTNet: y = x + MLP(GN(F(GN(x)) + GN(x))) (no skip around the filter)."""

    def __init__(self, dim: int, n_blocks: int, mlp_hidden: int, ndim: int, modes: int | None, symmetric: bool):
        super().__init__()
        self.norm1 = GroupNormCL(8, dim)
        self.filter = SpectralMixer(dim, n_blocks, ndim, modes, symmetric)
        self.norm2 = GroupNormCL(8, dim)
        self.mlp = PointwiseMLP(dim, mlp_hidden, dim, ndim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm2(self.filter(self.norm1(x))))


class TimeAggregator(nn.Module):
    """Temporal aggregation z_j = sum_t sum_i W[t,i,j] cos(gamma_i tau_t) z_ti (`exp_mlp`; `mlp`: no cos).

    `basis()` exposes the cosine factor so the model can fold the layer into neighbouring linear maps
    (see `DPOT.embed`).
    """

    def __init__(self, dim: int, timesteps: int, kind: str):
        super().__init__()
        self.kind = kind
        self.w = nn.Parameter(torch.randn(timesteps, dim, dim) / (timesteps * dim**0.5))
        if kind == "exp_mlp":
            self.gamma = nn.Parameter(2 ** torch.linspace(-10, 10, dim).unsqueeze(0))

    def basis(self) -> torch.Tensor:
        """Per-(t, i) factor `(T, D)` in fp32: cos(gamma_i * tau_t) with tau = linspace(0, 1, T); ones for
        `mlp`. The phase is an fp32 outer product (gamma reaches 1024: in bf16 it is off by radians)."""
        t, dev = self.w.shape[0], self.w.device
        if self.kind == "mlp":
            return torch.ones(t, self.w.shape[1], device=dev, dtype=torch.float32)
        with fp32(dev):
            tau = torch.linspace(0, 1, t, device=dev, dtype=torch.float32).unsqueeze(-1)
            return torch.cos(tau * self.gamma.float())

    def weights(self) -> torch.Tensor:
        """Effective `(T, D, D)` weights W[t, i, j] * basis[t, i] (in the parameters' dtype)."""
        return (self.w * self.basis().unsqueeze(-1)).to(self.w.dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`(..., T, D)` -> `(..., D)` as one matmul over (T, D)."""
        t, d = z.shape[-2:]
        return z.reshape(*z.shape[:-2], t * d) @ self.weights().reshape(t * d, d)
