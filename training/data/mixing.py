"""Multi-dataset mixing: how many samples of each dataset one epoch draws (explicit in every stage
config).

The official recipe concatenates its datasets, so one epoch is one pass over each of them: every
dataset contributes in proportion to its size (a BEDLAM-sized set dominates a small pGT set). Each
``data.datasets`` entry states its share as ``fraction`` (default 1.0 = the official one pass);
``0.25`` draws a quarter of the set per epoch (official ``panoptic_ft``: "bedlam 1fps / 4"),
``2.0`` two passes. Per epoch dataset k contributes

    n_k = fraction_k x len(dataset_k)        (largest-remainder rounding to integers)

samples; ``data.epoch_length`` (optional) rescales all n_k together to that total, keeping the
ratios (short test runs). Within an epoch a dataset is drawn without replacement: whole shuffled
passes, then a random subset for the remainder, seeded by (seed, epoch, k) so runs and resumes
repeat. A ``DistributedSampler`` then splits the shuffled table over ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def samples_per_epoch(
    sizes: Sequence[int], fractions: Sequence[float], length: int | None = None
) -> list[int]:
    """Integer samples per dataset and epoch: fraction x size, optionally rescaled to ``length`` in
    total.

    Largest-remainder rounding keeps the total at round(sum) (or exactly ``length``) and every
    share within one sample of its exact value.
    """
    exact = np.asarray(fractions, np.float64) * np.asarray(sizes, np.float64)
    if length is not None:
        exact = exact * (float(length) / exact.sum())
    total = int(length) if length is not None else int(round(exact.sum()))
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts.tolist()


class MixedDataset(torch.utils.data.Dataset):
    """Several datasets, each contributing a fixed number of samples per epoch (see the module
    docstring).

    Args:
        datasets: the member datasets (each may have ``set_epoch``).
        fractions: samples per epoch as a fraction of each dataset's size (> 0); None = 1.0 each
            (official).
        length: optional total samples per epoch (the shares keep their ratios).
        seed: base seed of the per-epoch index table.

    Raises:
        ValueError: no dataset, an empty one, or a non-positive fraction (the message names it).
    """

    def __init__(
        self,
        datasets: Sequence[torch.utils.data.Dataset],
        fractions: Sequence[float] | None = None,
        length: int | None = None,
        seed: int = 0,
    ) -> None:
        if not datasets:
            raise ValueError("[training.data] MixedDataset needs at least one dataset")
        fractions = [1.0] * len(datasets) if fractions is None else [float(f) for f in fractions]
        if len(fractions) != len(datasets) or min(fractions) <= 0:
            raise ValueError(
                f"[training.data] need one positive fraction per dataset, got {fractions}"
            )
        empty = [i for i, d in enumerate(datasets) if len(d) == 0]
        if empty:
            raise ValueError(f"[training.data] datasets {empty} are empty")
        if length is not None and int(length) < 1:
            raise ValueError(f"[training.data] data.epoch_length must be >= 1, got {length}")
        self.datasets = list(datasets)
        self.fractions = fractions
        self.counts = samples_per_epoch([len(d) for d in self.datasets], fractions, length)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Rebuild the index table for ``epoch`` and forward the epoch to the members."""
        self.epoch = epoch
        table = []
        for k, (dataset, n) in enumerate(zip(self.datasets, self.counts, strict=True)):
            rng = np.random.default_rng([self.seed, epoch, k])
            size = len(dataset)
            passes = [rng.permutation(size) for _ in range(n // size)]
            idx = np.concatenate([*passes, rng.permutation(size)[: n % size]])
            table.extend((k, int(i)) for i in idx)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(table))
        self.table = [table[i] for i in order]
        for dataset in self.datasets:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int):
        k, i = self.table[index]
        return self.datasets[k][i]
