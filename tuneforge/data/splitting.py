"""Cutting distinct texts into train/val/test: stratified by one stratum per text, or iteratively by label sets.

Both cut the held-out splits one after the other, test first (the order single-label splits have always been
cut in, so their rows stay the same), each share rescaled to the whole table rather than to what an earlier cut
left, and both refuse first, in one line, a class or label too rare to reach every split.

Multi-label rows have no single stratum: iterative stratification (Sechidis, Tsoumakas and Vlahavas, "On the
Stratification of Multi-Label Data", ECML PKDD 2011; the `iterative-stratification` package) hands out the
rarest label's rows first, each to the split that still wants most of that label, so rare labels reach every
split in proportion where a split by label-set combination would drop them.
"""

import math

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.model_selection import train_test_split

from tuneforge.base.errors import StageError

MIN_TRAIN_PER_CLASS = 2  # a class with fewer training examples is not worth stratifying for
CUT_ORDER = ("test", "val")


def min_per_class(fractions: dict[str, float]) -> int:
    """Fewest distinct texts a class needs: one in every held-out split and MIN_TRAIN_PER_CLASS in train."""
    needed = [1 / fraction for fraction in fractions.values()]
    needed.append(MIN_TRAIN_PER_CLASS / (1 - sum(fractions.values())))
    return math.ceil(max(needed) - 1e-9)  # 0.1 * 10 is 1 even where floats say 0.9999...


def check_class_sizes(labels: pd.Series, fractions: dict[str, float], *, noun: str = "class") -> None:
    """One StageError naming every class (or label: `noun`) too small to reach every split (smallest first).
    `labels` holds one entry per distinct text and class (a text with two labels is in it twice)."""
    needed = min_per_class(fractions)
    counts = labels.value_counts()
    small = counts[counts < needed].sort_values(kind="stable")
    if small.empty:
        return
    shares = ", ".join(f"{name}_fraction={fraction:g}" for name, fraction in fractions.items())
    label, count = small.index[0], int(small.iloc[0])
    plural = "classes" if noun == "class" else f"{noun}s"
    others = f" ({len(small) - 1} more {plural} too small, listed below)" if len(small) > 1 else ""
    raise StageError(
        f"{noun} '{label}' has {count} distinct texts; split needs at least {needed} per {noun} with {shares} "
        f"(one in each held-out split, {MIN_TRAIN_PER_CLASS} in train){others}",
        detail="\n".join(f"  {name}: {int(n)}" for name, n in small.items()) if len(small) > 1 else "",
    )


def stratified_split(strata: pd.Series, fractions: dict[str, float], seed: int) -> dict[str, pd.Index]:
    """The index of `strata` (one stratum per distinct text) in each split, stratified by stratum (sklearn)."""
    check_class_sizes(strata, fractions)
    assigned, rest, remaining = {}, strata, 1.0
    for name in CUT_ORDER:
        if name in fractions:
            rest, held_out = train_test_split(
                rest, test_size=fractions[name] / remaining, stratify=rest.to_numpy(), random_state=seed
            )
            assigned[name] = held_out.index
            remaining -= fractions[name]
    assigned["train"] = rest.index
    return assigned


def iterative_split(
    label_sets: pd.Series, fractions: dict[str, float], seed: int, *, noun: str = "label",
    unchecked: frozenset[str] = frozenset(),
) -> dict[str, pd.Index]:
    """The index of `label_sets` (a list of labels per distinct text) in each split, by iterative stratification.
    Texts without a label are spread over the splits by size. `noun` names a label in the refusal of one too rare
    to reach every split; labels in `unchecked` are stratified but never refused (a stratum of convenience, such as
    "no entity", that a split may lack without harm)."""
    exploded = label_sets.explode().dropna()
    check_class_sizes(exploded[~exploded.isin(unchecked)], fractions, noun=noun)
    names = sorted(exploded.unique())
    column = {name: j for j, name in enumerate(names)}
    indicator = np.zeros((len(label_sets), len(names)), dtype=bool)
    for i, labels in enumerate(label_sets):
        indicator[i, [column[label] for label in labels]] = True
    assigned, rest, remaining = {}, np.arange(len(label_sets)), 1.0
    for name in CUT_ORDER:
        if name in fractions:
            cutter = MultilabelStratifiedShuffleSplit(
                n_splits=1, test_size=fractions[name] / remaining, random_state=seed
            )
            kept, held_out = next(cutter.split(np.zeros(len(rest)), indicator[rest]))
            assigned[name] = label_sets.index[np.sort(rest[held_out])]
            rest = rest[np.sort(kept)]
            remaining -= fractions[name]
    assigned["train"] = label_sets.index[rest]
    return assigned
