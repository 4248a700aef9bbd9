"""Data: the canonical format, importers, training windows and dataset mixtures."""

from dpot.data.format import DatasetMeta, Split, SplitWriter, dataset_dirs, open_split, write_split
from dpot.data.mixture import BalancedSampler, Mixture
from dpot.data.resample import resample
from dpot.data.stats import ChannelStats, compute_stats, load_stats
from dpot.data.windows import TrajectoryDataset, WindowDataset, collate

__all__ = [
    "BalancedSampler",
    "ChannelStats",
    "DatasetMeta",
    "Mixture",
    "Split",
    "SplitWriter",
    "TrajectoryDataset",
    "WindowDataset",
    "collate",
    "compute_stats",
    "dataset_dirs",
    "load_stats",
    "open_split",
    "resample",
    "write_split",
]
