"""Dataset mixtures and the paper's balanced sampling, p(sample of dataset k) ∝ w_k / |D_k|.

A "sample" is a trajectory (|D_k| = trajectories of dataset k, as in the paper); its window start is uniform,
because `WindowDataset` enumerates all (trajectory, start) pairs and the sampler picks uniformly among them.

`BalancedSampler` is an infinite, counter-based stream: the indices of block b on rank r depend only on
(seed, rank, b), so its state is just (seed, position) and a resumed run sees exactly the same indices. Under
data parallelism each rank draws only from its own shard of every dataset (local index ≡ rank mod world_size),
so ranks never load the same sample.

Mixtures of several grids (`Mixture(..., mixed_grids=True)`, pre-training with `data.resolution: native`)
are split into buckets, one per grid. Given `group` (the batch size), the sampler draws one bucket per group
of `group` consecutive indices, with probability = the bucket's total sampling mass, then the samples of the
group within it (dataset k with probability p_k / mass of its bucket): every batch has one grid and each
dataset keeps its share p_k. The bucket of group g depends only on (seed, g), not on the rank, so under data
parallelism all ranks train on the same grid at every step (their positions advance together) while drawing
different samples from their own shards.
"""

from __future__ import annotations

import bisect
import os
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Dataset, Sampler

from dpot.data.windows import WindowDataset
from dpot.errors import DpotError


class Mixture(Dataset):
    """Concatenation of datasets with a sampling weight each; item `i` is item `i - offset_k` of dataset k.

    Items keep their dataset's own `dataset` id (`from_dirs` numbers them 0..K-1). All members must give
    items of one shape (same grid and channel count), so that batches can be stacked; with `mixed_grids`
    the grids may differ (one spatial dimension still) and `buckets` groups the datasets by grid.
    """

    def __init__(self, datasets: Sequence[Dataset], weights: Sequence[float] | None = None, mixed_grids: bool = False):
        self.datasets = list(datasets)
        self.mixed_grids = bool(mixed_grids)
        if not self.datasets:
            raise DpotError("a mixture needs at least one dataset")
        w = np.ones(len(self.datasets)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.datasets),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise DpotError(
                f"weights {list(weights or [])} must be {len(self.datasets)} non-negative "
                "numbers (one per dataset), not all zero"
            )
        self.weights = w
        self.sizes = [len(d) for d in self.datasets]
        # trajectories per dataset (the paper's |D_k|); datasets without windows count their items
        self.n_samples = [int(getattr(d, "n_trajectories", len(d))) for d in self.datasets]
        empty = [self._name(k) for k, n in enumerate(self.sizes) if n == 0]
        if empty:
            raise DpotError(f"mixture datasets {empty} are empty")
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self._check_compatible()
        grids: dict[tuple[int, ...], list[int]] = {}
        for k, d in enumerate(self.datasets):
            grids.setdefault(tuple(getattr(d, "space_shape", ())), []).append(k)
        self.buckets: list[list[int]] = list(grids.values())  # dataset ids per grid, in order of appearance

    def _name(self, k: int) -> str:
        return str(getattr(self.datasets[k], "name", k))

    def _check_compatible(self) -> None:
        """Refuse members whose items cannot be stacked into one batch, saying which option fixes it."""
        views = [d for d in self.datasets if hasattr(d, "space_shape") and hasattr(d, "n_channels")]
        if len(views) < 2:
            return
        steady = {bool(d.meta.steady) for d in views}
        if len(steady) > 1:
            raise DpotError("cannot mix steady-state and time-dependent datasets in one mixture; train them apart")
        grids = [(d.name, tuple(d.space_shape)) for d in views]  # lists: two datasets may share a name
        if len({g for _, g in grids}) > 1:
            listing = ", ".join(f"{n} {'x'.join(map(str, g))}" for n, g in grids)
            if len({len(g) for _, g in grids}) > 1:
                raise DpotError(
                    f"mixture datasets have different spatial dimensions ({listing}); "
                    "mix only datasets of one dimension"
                )
            if not self.mixed_grids:
                raise DpotError(
                    f"mixture datasets have different grids ({listing}); give a target "
                    f"resolution (e.g. resolution={max(max(g) for _, g in grids)}) or "
                    "resolution=native"
                )
        chans = [(d.name, d.n_channels) for d in views]
        if len({c for _, c in chans}) > 1:
            listing = ", ".join(f"{n} {c}" for n, c in chans)
            raise DpotError(
                f"mixture datasets have different channel counts ({listing}); give "
                f"n_channels={max(c for _, c in chans)} to pad them all"
            )
        windows = [(d.name, d.t_in, d.t_ar) for d in views if isinstance(d, WindowDataset)]
        if len({w[1:] for w in windows}) > 1:
            listing = ", ".join(f"{n} t_in={a} t_ar={b}" for n, a, b in windows)
            raise DpotError(f"mixture datasets use different windows ({listing}); use one setting")

    @classmethod
    def from_dirs(
        cls,
        dataset_dirs: Sequence[str | os.PathLike],
        weights: Sequence[float] | None = None,
        n_channels: int | None = None,
        mixed_grids: bool = False,
        **window_kwargs,
    ) -> Mixture:
        """A mixture of `WindowDataset`s with ids 0..K-1, padded to the largest channel count unless given;
        `mixed_grids`: keep datasets of different grids (see `Mixture`).

        `window_kwargs` go to every `WindowDataset` (split, t_in, t_ar, stride, resolution, resample, ...).
        """
        datasets = [WindowDataset(d, dataset_id=k, **window_kwargs) for k, d in enumerate(dataset_dirs)]
        widest = max((d.n_channels for d in datasets), default=0)
        if n_channels is not None and n_channels < widest:
            raise DpotError(f"n_channels={n_channels} but a dataset has {widest} channels; use >= {widest}")
        target = widest if n_channels is None else n_channels
        for d in datasets:
            d.n_channels = target
        return cls(datasets, weights, mixed_grids=mixed_grids)

    @property
    def n_channels(self) -> int | None:
        return getattr(self.datasets[0], "n_channels", None)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(dataset k, index within dataset k) of mixture item `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"mixture index {index} out of range for {len(self)} items")
        k = bisect.bisect_right(self.offsets, index) - 1
        return k, int(index - self.offsets[k])

    def __getitem__(self, index: int):
        k, j = self.locate(int(index))
        return self.datasets[k][j]


class BalancedSampler(Sampler[int]):
    """Infinite stream of mixture indices; a sample (trajectory) of dataset k is drawn with probability
    ∝ w_k/|D_k| (`balanced=True`: dataset k gets a share ∝ w_k) or uniformly over all trajectories of the
    mixture (`balanced=False`: shares ∝ |D_k|, the reference's unweighted epochs); window starts are uniform.

    Exact `state_dict()`/`load_state_dict()`; with a DataLoader the iterator runs ahead of what the model has
    consumed, so pass `position=<samples consumed on this rank>` to `state_dict` for an exact resume.
    `group`: for a mixture of several grids, the number of consecutive indices drawn from one grid (pass the
    batch size; see the module docstring). A mixture of one grid gives the same stream whatever `group` is.
    """

    BLOCK = 4096

    def __init__(
        self, mixture: Mixture, seed: int = 0, balanced: bool = True, rank: int = 0, world_size: int = 1, group: int = 1
    ):
        if group < 1:
            raise DpotError(f"sampler group={group} must be >= 1 (the batch size)")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DpotError(f"rank {rank} / world_size {world_size}: need world_size >= 1 and 0 <= rank < world_size")
        self.mixture, self.seed, self.balanced = mixture, int(seed), bool(balanced)
        self.rank, self.world_size = int(rank), int(world_size)
        sizes = np.asarray(mixture.sizes, dtype=np.int64)
        # this rank's shard of dataset k: local indices ≡ rank (mod world_size)
        self._shard = (sizes - self.rank + self.world_size - 1) // self.world_size
        short = [mixture._name(k) for k, n in enumerate(sizes) if n < self.world_size and mixture.weights[k] > 0]
        if short:
            raise DpotError(
                f"datasets {short} have fewer samples than world_size={self.world_size}; "
                "use fewer ranks or give them weight 0"
            )
        if self.balanced:
            p = mixture.weights.copy()
        else:
            p = np.asarray(mixture.n_samples, dtype=np.float64) * (mixture.weights > 0)
        self._p = p / p.sum()
        self.group = int(group)
        self._bucketed = len(mixture.buckets) > 1
        # indices per block: whole groups when bucketed, so that no group straddles two blocks
        self._size = max(1, self.BLOCK // self.group) * self.group if self._bucketed else self.BLOCK
        if self._bucketed:
            member = np.zeros((len(mixture.buckets), len(self._p)))
            for j, ids in enumerate(mixture.buckets):
                member[j, ids] = 1.0
            self._bucket_p = member @ self._p  # sampling mass of each grid
            # per bucket, cumulative probabilities of its datasets (exactly 1 from its last member on)
            mass = np.where(self._bucket_p > 0, self._bucket_p, 1.0)[:, None]
            self._within_cdf = np.cumsum(member * self._p, axis=1) / mass
            for j, ids in enumerate(mixture.buckets):
                self._within_cdf[j, max(ids) :] = 1.0
        self.position = 0
        self._cache: tuple[int, np.ndarray] | None = None

    def probabilities(self) -> np.ndarray:
        """Share of the draws that goes to each dataset."""
        return self._p.copy()

    def bucket_probabilities(self) -> np.ndarray:
        """Share of the batches that goes to each grid of `mixture.buckets`."""
        return self._bucket_p.copy() if self._bucketed else np.ones(1)

    def _block(self, b: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == b:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.rank, b])
        if self._bucketed:
            ks = self._bucketed_datasets(b, rng)
        else:
            ks = rng.choice(len(self._p), size=self.BLOCK, p=self._p)
        local = np.minimum((rng.random(ks.size) * self._shard[ks]).astype(np.int64), self._shard[ks] - 1)
        idx = self.mixture.offsets[ks] + local * self.world_size + self.rank
        self._cache = (b, idx)
        return idx

    def _bucketed_datasets(self, b: int, rng: np.random.Generator) -> np.ndarray:
        """Datasets of block `b` (`BLOCK // group` whole groups): one grid per group, drawn from a stream of
        (seed, block) alone so that every rank gets the same grid; the datasets within it from this rank's."""
        n_groups = self._size // self.group
        grid_rng = np.random.default_rng([self.seed, 0x6275636B, b])  # tag: "buck", not a rank
        grids = np.repeat(grid_rng.choice(len(self._bucket_p), size=n_groups, p=self._bucket_p), self.group)
        u = rng.random(grids.size)
        return np.argmax(u[:, None] < self._within_cdf[grids], axis=1)

    def __iter__(self) -> Iterator[int]:
        while True:
            b, off = divmod(self.position, self._size)
            idx = self._block(b)
            self.position += 1
            yield int(idx[off])

    def state_dict(self, position: int | None = None) -> dict:
        """Seed and position (the RNG is a pure function of them), plus what identifies the mixture."""
        return {
            "seed": self.seed,
            "position": int(self.position if position is None else position),
            "balanced": self.balanced,
            "rank": self.rank,
            "world_size": self.world_size,
            "sizes": [int(n) for n in self.mixture.sizes],
            "weights": self.mixture.weights.tolist(),
            "group": self.group if self._bucketed else 1,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved state; refuses a state saved for a different mixture."""
        same = (
            list(state["sizes"]) == [int(n) for n in self.mixture.sizes]
            and np.allclose(state["weights"], self.mixture.weights)
            and bool(state["balanced"]) == self.balanced
            and int(state.get("group", 1)) == (self.group if self._bucketed else 1)
        )
        if not same:
            raise DpotError(
                f"sampler state is for a different mixture (sizes {state['sizes']}, weights "
                f"{state['weights']}, balanced={state['balanced']}, group={state.get('group', 1)}); "
                "use the same datasets, weights and batch size"
            )
        if (state["rank"], state["world_size"]) != (self.rank, self.world_size):
            warnings.warn(
                f"sampler state saved on rank {state['rank']}/{state['world_size']} loaded on "
                f"{self.rank}/{self.world_size}: the index stream will differ",
                stacklevel=2,
            )
        self.seed, self.position = int(state["seed"]), int(state["position"])
        self._cache = None
