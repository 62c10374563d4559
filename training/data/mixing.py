"""Multi-dataset mixing: one epoch = a fixed number of samples drawn from several datasets by weight.

The official recipe concatenates AGORA, BEDLAM and the four pGT sets with per-dataset sampling ratios.
``MixedDataset`` builds, per epoch, a deterministic index table (seeded by (seed, epoch)) in which dataset k
contributes ``round(length * w_k / sum(w))`` samples drawn without replacement (with replacement once a
dataset is exhausted); a ``DistributedSampler`` then splits that table over ranks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class MixedDataset(torch.utils.data.Dataset):
    """Weighted mixture of datasets with a fixed epoch length.

    Args:
        datasets: the member datasets (each may have ``set_epoch``).
        weights: relative sampling weights, one per dataset (> 0).
        length: samples per epoch; None = the sum of the members' lengths.
        seed: base seed of the per-epoch index table.
    """

    def __init__(
        self,
        datasets: Sequence[torch.utils.data.Dataset],
        weights: Sequence[float] | None = None,
        length: int | None = None,
        seed: int = 0,
    ) -> None:
        if not datasets:
            raise ValueError("[training.data] MixedDataset needs at least one dataset")
        weights = [1.0] * len(datasets) if weights is None else [float(w) for w in weights]
        if len(weights) != len(datasets) or min(weights) <= 0:
            raise ValueError(f"[training.data] need one positive weight per dataset, got {weights}")
        empty = [i for i, d in enumerate(datasets) if len(d) == 0]
        if empty:
            raise ValueError(f"[training.data] datasets {empty} are empty")
        self.datasets = list(datasets)
        self.weights = np.asarray(weights) / sum(weights)
        self.length = int(length or sum(len(d) for d in datasets))
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Rebuild the index table for ``epoch`` and forward the epoch to the members."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch])
        counts = np.floor(self.weights * self.length).astype(int)
        counts[np.argmax(self.weights)] += self.length - counts.sum()
        table = []
        for k, (dataset, n) in enumerate(zip(self.datasets, counts, strict=True)):
            size = len(dataset)
            idx = np.concatenate([rng.permutation(size) for _ in range(-(-n // size))])[:n] if n else []
            table.extend((k, int(i)) for i in idx)
        order = rng.permutation(len(table))
        self.table = [table[i] for i in order]
        for dataset in self.datasets:
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        k, i = self.table[index]
        return self.datasets[k][i]
