"""Stages split and augment with model.task multi-label-classification: iterative stratification keeps every label,
rare ones too, in every split and reports rows per label; augmentation carries label sets and balances by the
rarest label of each row."""

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from stages import augment, split
from tests.helpers.multi_label import label_set_rows
from tuneforge.base.spec import AugmentConfig, BalanceConfig, ModelConfig, NoiseConfig, SplitConfig
from tuneforge.data.label_sets import encode_label_set, label_lists

MULTI_LABEL = ModelConfig(task="multi-label-classification")


def validated_rows(rows: int = 200, rare: int = 12) -> pd.DataFrame:
    """Label sets as validate writes them; 'rare' rides along with a frequent label on `rare` rows."""
    frame = pd.DataFrame(label_set_rows(rows))
    frame["labels"] = [[*labels, "rare"] if i % (rows // rare) == 0 and i // (rows // rare) < rare else labels
                       for i, labels in enumerate(frame["labels"])]
    return pd.DataFrame({
        "text": frame["text"], "label": frame["labels"].map(encode_label_set), "source_row": range(1, rows + 1),
    })


def write_validated(frame: pd.DataFrame, name: str = "train") -> None:
    Path("data/validated").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(f"data/validated/{name}.parquet", index=False)


def label_counts(frame: pd.DataFrame) -> Counter:
    return Counter(label for labels in label_lists(frame["label"]) for label in labels)


def test_every_label_reaches_every_split_and_is_counted(in_tmp_dir):
    rows = validated_rows()
    variants = rows.iloc[:3].assign(text=lambda f: f["text"].str.upper(), source_row=[201, 202, 203])
    write_validated(pd.concat([rows, variants], ignore_index=True))  # case variants of lines 1-3 stay together

    produced = split.run(SplitConfig(val_fraction=0.1, test_fraction=0.1, seed=7), model_cfg=MULTI_LABEL)

    frames = {name: pd.read_parquet(f"data/splits/{name}.parquet") for name in ("train", "val", "test")}
    assert sum(len(frame) for frame in frames.values()) == 203
    whole = label_counts(pd.concat(frames.values()))
    assert whole["rare"] == 12 + 1  # line 1 holds 'rare' and its upper-case variant too
    for name, share in {"train": 0.8, "val": 0.1, "test": 0.1}.items():
        counts = label_counts(frames[name])
        assert set(counts) == set(whole), name
        for label, total in whole.items():  # in proportion, within rounding (iterstrat favours labels over sizes)
            assert abs(counts[label] - share * total) <= max(2, 0.15 * share * total), (name, label, counts[label])
        assert produced.metrics["label_counts"][name] == dict(sorted(counts.items()))
    for text in rows["text"].iloc[:3]:
        assert any(text in set(frame["text"]) and text.upper() in set(frame["text"]) for frame in frames.values())
    assert produced.metrics["classes"] == 6
    summary = Path("reports/split/summary.md").read_text()
    rare = produced.metrics["label_counts"]
    assert f"| rare | {rare['train']['rare']} | {rare['val']['rare']} | {rare['test']['rare']} |" in summary


def test_the_multi_label_split_is_seeded(in_tmp_dir):
    write_validated(validated_rows())
    cuts = []
    for seed in (3, 3, 4):
        split.run(SplitConfig(seed=seed), model_cfg=MULTI_LABEL)
        cuts.append(pd.read_parquet("data/splits/test.parquet")["text"].tolist())
    assert cuts[0] == cuts[1] != cuts[2]


def test_a_label_too_rare_to_split_is_one_line(in_tmp_dir, capsys):
    write_validated(validated_rows(rare=7))
    Path("params.yaml").write_text("model: {task: multi-label-classification}\nregistry: {enabled: false}\n")
    assert split.main([]) == 1
    err = capsys.readouterr().err
    assert err == (
        "split: error: label 'rare' has 7 distinct texts; split needs at least 10 per label with "
        "val_fraction=0.1, test_fraction=0.1 (one in each held-out split, 2 in train)\n"
    )
    assert not Path("data/splits").exists()


def train_split(rows: int = 60) -> pd.DataFrame:
    frame = validated_rows(rows, rare=6)
    frame.loc[frame.index[-2:], "label"] = "[]"  # two rows none of the labels applies to
    Path("data/splits").mkdir(parents=True, exist_ok=True)
    frame.to_parquet("data/splits/train.parquet", index=False)
    return frame


@pytest.mark.parametrize("variants_per_row", [0, 1])
def test_augment_carries_label_sets_and_balances_by_the_rarest_label(in_tmp_dir, variants_per_row):
    original = train_split()
    cfg = AugmentConfig(variants_per_row=variants_per_row, balance=BalanceConfig(target=20))
    produced = augment.run(cfg, model_cfg=MULTI_LABEL)

    out = pd.read_parquet("data/augmented/train.parquet")
    added = out[out["method"] != "original"]
    assert (added["label"].to_numpy() == original["label"].to_numpy()[added["origin"]]).all()
    balance = added[added["method"].str.startswith("balance:")]
    assert len(balance) and "[]" not in set(balance["label"]), "a row without labels is never balanced"
    rare_rows = sum("rare" in label for label in out["label"])
    assert rare_rows == 20, "a row counts for its rarest label: 'rare' rows are topped up to the target"
    metrics = produced.metrics
    assert metrics["class_counts_before"] == dict(sorted(label_counts(original).items()))
    assert metrics["class_counts_after"] == dict(sorted(label_counts(out).items()))
    assert metrics["balance_target"] == 20


def test_augment_without_balancing_keeps_label_sets_row_for_row(in_tmp_dir):
    original = train_split()
    noise = NoiseConfig(probability=1.0, rate=0.2)
    cfg = AugmentConfig(variants_per_row=2, balance=BalanceConfig(enabled=False), word_swap=noise)
    augment.run(cfg, model_cfg=MULTI_LABEL)
    out = pd.read_parquet("data/augmented/train.parquet")
    assert len(out) > len(original) * 2
    by_origin = out.groupby("origin")["label"].nunique()
    assert (by_origin == 1).all()
    assert json.loads(Path("reports/metrics/augment.json").read_text())["balance_target"] is None
