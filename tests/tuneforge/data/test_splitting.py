"""Iterative stratification of label sets: rare labels reach every split in proportion, seeded, with clear errors."""

import random

import pandas as pd
import pytest

from tuneforge.base.errors import StageError
from tuneforge.data.splitting import iterative_split

FRACTIONS = {"val": 0.1, "test": 0.1}


def label_sets(rows: int = 600, seed: int = 0) -> pd.Series:
    """Label sets over 6 labels, 'rare' on 20 rows only, always beside a frequent one; some rows hold none."""
    rng = random.Random(seed)
    frequent = ["anger", "joy", "fear", "love", "neutral"]
    sets = []
    for i in range(rows):
        labels = rng.sample(frequent, rng.choice([0, 1, 1, 1, 2, 2, 3]))
        if i % 30 == 0:
            labels = [*(labels[:1] or ["joy"]), "rare"]
        sets.append(labels)
    return pd.Series(sets, index=pd.Index([f"text {i}" for i in range(rows)]))


def counts(sets: pd.Series) -> pd.Series:
    return sets.explode().dropna().value_counts()


def test_every_label_reaches_every_split_in_proportion():
    sets = label_sets()
    parts = iterative_split(sets, FRACTIONS, seed=3)
    assert sorted(parts) == ["test", "train", "val"]
    assert sorted(sum((list(index) for index in parts.values()), [])) == sorted(sets.index), "a partition"
    whole = counts(sets)
    assert whole["rare"] == 20
    for name, share in {"train": 0.8, "val": 0.1, "test": 0.1}.items():
        part = counts(sets[parts[name]])
        assert set(part.index) == set(whole.index), name
        for label, total in whole.items():
            assert abs(part[label] - share * total) <= max(2, 0.15 * share * total), (name, label, part[label])
        assert abs(len(parts[name]) - share * len(sets)) <= 0.05 * len(sets), (name, len(parts[name]))


def test_the_cut_depends_on_the_seed_only():
    sets = label_sets()
    first, again, other = (iterative_split(sets, FRACTIONS, seed=seed) for seed in (5, 5, 6))
    assert all(list(first[name]) == list(again[name]) for name in first)
    assert list(first["test"]) != list(other["test"])


def test_a_label_too_rare_for_every_split_is_named_with_its_count():
    sets = label_sets(rows=300)  # 'rare' on 10 rows: one short of 1 / 0.1 + ...
    sets.iloc[0] = ["anger"]  # ... and now 9
    with pytest.raises(StageError) as refused:
        iterative_split(sets, FRACTIONS, seed=0)
    assert refused.value.message == (
        "label 'rare' has 9 distinct texts; split needs at least 10 per label with val_fraction=0.1, "
        "test_fraction=0.1 (one in each held-out split, 2 in train)"
    )


def test_only_the_missing_held_out_split_is_cut():
    sets = label_sets()
    parts = iterative_split(sets, {"val": 0.2}, seed=1)
    assert sorted(parts) == ["train", "val"]
    assert abs(len(parts["val"]) - 120) <= 30 and set(counts(sets[parts["val"]]).index) == set(counts(sets).index)
