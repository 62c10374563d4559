"""Per-epoch dataset shares: one pass over each dataset by default (official), or explicit
fractions."""

from __future__ import annotations

from collections import Counter

import pytest

from training.data.mixing import MixedDataset, samples_per_epoch


class Indexed:
    """A dataset whose samples are (name, index) and that records ``set_epoch``."""

    def __init__(self, name: str, size: int):
        self.name, self.size, self.epoch = name, size, None

    def __len__(self):
        return self.size

    def __getitem__(self, i):
        return self.name, i

    def set_epoch(self, epoch):
        self.epoch = epoch


def _draws(mixed: MixedDataset) -> Counter:
    return Counter(mixed[i] for i in range(len(mixed)))


def test_default_epoch_is_one_pass_over_every_dataset_whatever_its_size():
    sets = [Indexed("small", 3), Indexed("big", 50), Indexed("mid", 7)]
    mixed = MixedDataset(sets, seed=1)
    assert len(mixed) == 60 and mixed.counts == [3, 50, 7]
    draws = _draws(mixed)
    assert set(draws.values()) == {1} and len(draws) == 60  # every sample exactly once
    assert [mixed[i][0] for i in range(10)] != ["small"] * 3 + [
        "big"
    ] * 7  # shuffled across datasets
    mixed.set_epoch(3)
    assert all(d.epoch == 3 for d in sets) and set(_draws(mixed).values()) == {1}


def test_fractions_give_the_stated_share_without_repeats_inside_an_epoch():
    sets = [Indexed("bedlam", 40), Indexed("agora", 12)]
    mixed = MixedDataset(sets, fractions=[0.25, 1.0], seed=0)
    assert mixed.counts == [10, 12]
    draws = _draws(mixed)
    assert sum(v for (name, _), v in draws.items() if name == "bedlam") == 10
    assert max(draws.values()) == 1
    first = {i for name, i in draws if name == "bedlam"}
    mixed.set_epoch(1)
    second = {i for name, i in _draws(mixed) if name == "bedlam"}
    assert first != second  # another quarter next epoch
    over = MixedDataset([Indexed("tiny", 4)], fractions=[2.5], seed=0)
    assert len(over) == 10 and sorted(Counter(i for _, i in _draws(over).elements()).values()) == [
        2,
        2,
        3,
        3,
    ]


def test_epoch_length_rescales_and_keeps_the_ratios():
    assert samples_per_epoch([100, 300], [1.0, 1.0], 40) == [10, 30]
    assert samples_per_epoch([100, 300], [1.0, 0.5], 50) == [20, 30]
    counts = samples_per_epoch([7, 11, 13], [1.0, 1.0, 1.0], 10)
    assert sum(counts) == 10 and counts == [2, 4, 4]  # largest remainders: 2.26, 3.55, 4.19
    a = MixedDataset([Indexed("a", 5), Indexed("b", 9)], length=7, seed=4)
    b = MixedDataset([Indexed("a", 5), Indexed("b", 9)], length=7, seed=4)
    assert [a[i] for i in range(7)] == [b[i] for i in range(7)]  # seeded


def test_bad_mixes_are_clear_errors():
    with pytest.raises(ValueError, match="positive fraction"):
        MixedDataset([Indexed("a", 3)], fractions=[0.0])
    with pytest.raises(ValueError, match="empty"):
        MixedDataset([Indexed("a", 0)])
    with pytest.raises(ValueError, match="epoch_length"):
        MixedDataset([Indexed("a", 3)], length=0)
