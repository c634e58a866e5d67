"""Stage split: stratified and seeded, a given test file kept as is, no text in two splits, clear errors."""

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from stages import split
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import sha256_path
from tuneforge.base.spec import SplitConfig
from tuneforge.data.drift import write_drift_report
from tuneforge.data.textnorm import normalize_text

SPLITS = Path("data/splits")
REPORTS = Path("reports/split")
METRICS = Path("reports/metrics/split.json")
CLASS_SIZES = {"refund": 20, "card": 30, "transfer": 40, "login": 55, "fees": 75}


def write_validated(rows: list[dict], name: str = "train", first_line: int = 2) -> pd.DataFrame:
    """A validated table as the validate stage writes it: text, label, source_row."""
    frame = pd.DataFrame(rows)[["text", "label"]]
    frame["source_row"] = range(first_line, first_line + len(frame))
    path = Path("data/validated") / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return frame


def uneven_rows(sizes: dict[str, int] = CLASS_SIZES, prefix: str = "") -> list[dict]:
    return [
        {"text": f"{prefix}{label} question number {i}: why is it taking {i % 7} days?", "label": label}
        for label, size in sizes.items()
        for i in range(size)
    ]


def read_splits(directory: Path = SPLITS) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(directory / f"{name}.parquet") for name in ("train", "val", "test")}


def test_stratified_three_way_split_respects_fractions(in_tmp_dir):
    write_validated(uneven_rows())
    produced = split.run(SplitConfig(val_fraction=0.1, test_fraction=0.2, seed=3))
    frames = read_splits()
    total = sum(CLASS_SIZES.values())
    assert sum(len(frame) for frame in frames.values()) == total
    assert list(frames["train"].columns) == ["text", "label", "source_row"]
    # sklearn rounds the held-out size up: test = ceil(0.2 * 220), val = ceil(0.1/0.8 * rest).
    assert len(frames["test"]) == 44 and len(frames["val"]) == 22
    for label, size in CLASS_SIZES.items():
        counts = {name: int((frame["label"] == label).sum()) for name, frame in frames.items()}
        # Test is one stratified split: within one example (plus the round-up of its size).
        assert abs(counts["test"] - size * 0.2) <= 1 + size / total, (label, counts)
        # Val is split from what test left, so test's rounding carries over, scaled by 0.1 / 0.8.
        assert abs(counts["val"] - size * 0.1) <= 1 + (1 + size / total) * 0.1 / 0.8 + size / total, counts
        assert min(counts.values()) >= 1
    assert produced.metrics["rows"] == {"train": 154, "val": 22, "test": 44}
    assert produced.metrics["classes"] == 5
    assert json.loads(METRICS.read_text())["rows"] == produced.metrics["rows"]


def test_same_seed_same_split_other_seed_other_split(in_tmp_dir):
    write_validated(uneven_rows())
    for seed, out in ((11, "a"), (11, "b"), (12, "c")):
        split.run(SplitConfig(seed=seed), workspace=Workspace(splits=Path(out)))
    first, again, other = (read_splits(Path(out)) for out in ("a", "b", "c"))
    for name in ("train", "val", "test"):
        pd.testing.assert_frame_equal(first[name], again[name])
    assert set(first["val"]["text"]) != set(other["val"]["text"])
    assert set(first["test"]["text"]) != set(other["test"]["text"])
    # Within a split rows keep their input order, so outputs diff well and depend on the seed only.
    assert first["train"]["source_row"].is_monotonic_increasing


def test_given_test_file_is_the_test_split_row_for_row(in_tmp_dir):
    write_validated(uneven_rows())
    test_sizes = {"refund": 4, "card": 6, "transfer": 5, "login": 3, "fees": 9}
    given = write_validated(uneven_rows(test_sizes, "test: "), "test")
    produced = split.run(SplitConfig(val_fraction=0.2, test_fraction=0.3, seed=5))
    frames = read_splits()
    pd.testing.assert_frame_equal(frames["test"], given)
    total = sum(CLASS_SIZES.values())
    assert len(frames["train"]) + len(frames["val"]) == total
    assert len(frames["val"]) == 44  # 0.2 of the training file; test_fraction is ignored
    for label, size in CLASS_SIZES.items():
        assert abs((frames["val"]["label"] == label).sum() - size * 0.2) <= 1
        assert abs((frames["train"]["label"] == label).sum() - size * 0.8) <= 1
    assert produced.metrics["test_source"] == "given"
    meta = json.loads((SPLITS / "meta.json").read_text())
    assert set(meta["inputs"]) == {"train", "test"}
    assert meta["config"] == {"val_fraction": 0.2, "test_fraction": 0.3, "seed": 5, "oos_val_fraction": 0.5}


def test_case_and_space_variants_never_cross_splits(in_tmp_dir):
    rows = uneven_rows()
    # Three spellings of one question per class; validate keeps them (they are not exact duplicates).
    for label in CLASS_SIZES:
        rows += [
            {"text": f"Where is my {label} money", "label": label},
            {"text": f"where is my  {label} MONEY", "label": label},
            {"text": f"WHERE IS MY {label} money ", "label": label},
        ]
    write_validated(rows)
    for seed in range(6):
        split.run(SplitConfig(seed=seed))
        frames = read_splits()
        homes: dict[str, set[str]] = {}
        for name, frame in frames.items():
            for text in frame["text"]:
                homes.setdefault(normalize_text(text).casefold(), set()).add(name)
        assert all(len(names) == 1 for names in homes.values())
        assert sum(len(frame) for frame in frames.values()) == len(rows)


def test_given_test_sharing_a_text_with_train_is_refused_with_examples(in_tmp_dir):
    train = uneven_rows()
    write_validated(train)
    test_rows = uneven_rows({label: 3 for label in CLASS_SIZES}, "test: ")
    test_rows[4]["text"] = "  " + train[7]["text"].upper()
    write_validated(test_rows, "test")
    with pytest.raises(StageError) as raised:
        split.run(SplitConfig())
    assert "1 texts appear in more than one split" in raised.value.message
    assert "test (source row 6)" in raised.value.detail
    assert "source row 9" in raised.value.detail
    assert not SPLITS.exists() and not REPORTS.exists() and not METRICS.exists()


def test_too_small_class_fails_cleanly_and_keeps_previous_outputs(in_tmp_dir, capsys):
    Path("params.yaml").write_text("split:\n  val_fraction: 0.1\n  test_fraction: 0.1\n  seed: 1\n")
    write_validated(uneven_rows())
    assert split.main([]) == 0
    before = {path: sha256_path(path) for path in (SPLITS, REPORTS, METRICS)}

    write_validated(uneven_rows({**CLASS_SIZES, "refund": 9, "card": 7}))
    assert split.main([]) == 1
    err = capsys.readouterr().err
    first_line = err.splitlines()[0]
    assert first_line.startswith("split: error: class 'card' has 7 distinct texts")
    assert "at least 10 per class" in first_line and "val_fraction=0.1, test_fraction=0.1" in first_line
    assert "refund: 9" in err
    assert "Traceback" not in err
    assert {path: sha256_path(path) for path in (SPLITS, REPORTS, METRICS)} == before


def test_minimum_per_class_follows_the_fractions():
    assert split.min_per_class({"val": 0.1, "test": 0.1}) == 10
    assert split.min_per_class({"val": 0.2, "test": 0.2}) == 5
    assert split.min_per_class({"val": 0.45, "test": 0.45}) == 20  # two must be left for train
    assert split.min_per_class({"val": 0.25}) == 4


def test_missing_validated_data_asks_for_validate(in_tmp_dir, capsys):
    Path("params.yaml").write_text("{}\n")
    assert split.main([]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "split: error: data/validated/train.parquet: not found; "
        "run the validate stage first (python -m stages.validate)"
    )


def test_drift_reports_and_metrics(in_tmp_dir):
    write_validated(uneven_rows())
    produced = split.run(SplitConfig(seed=2))
    for name in ("val_vs_train", "test_vs_train"):
        assert (REPORTS / f"{name}.html").stat().st_size > 10_000
        report = json.loads((REPORTS / f"{name}.json").read_text())
        assert report["rows"]["reference"] == produced.metrics["rows"]["train"]
        assert produced.metrics["drift_share"][name] == report["drift_share"]
        assert report["drifted_columns"] == []  # a stratified split of one table does not drift
    assert sorted(p.name for p in SPLITS.iterdir()) == [
        "meta.json", "test.parquet", "train.parquet", "val.parquet"
    ]
    assert sorted(produced.outputs) == ["metrics", "reports", "splits"]


@pytest.mark.slow
def test_banking77_sized_split_and_evidently_time(in_tmp_dir, banking77):
    # Built with pandas as validate would leave it: normalised, exact duplicates and test overlap dropped.
    def load(name: str) -> pd.DataFrame:
        frame = pd.read_csv(banking77 / f"{name}.csv").rename(columns={"category": "label"})
        frame["text"] = frame["text"].map(normalize_text)
        frame["source_row"] = range(2, len(frame) + 2)
        return frame

    train, test = load("train"), load("test")
    train = train.drop_duplicates(["text", "label"])
    train = train[~train["text"].isin(set(test["text"]))]
    Path("data/validated").mkdir(parents=True)
    train.to_parquet("data/validated/train.parquet", index=False)
    test.to_parquet("data/validated/test.parquet", index=False)

    started = time.perf_counter()
    produced = split.run(SplitConfig(val_fraction=0.1, seed=42))
    stage_seconds = time.perf_counter() - started
    frames = read_splits()
    assert len(frames["test"]) == 3080
    assert len(frames["train"]) + len(frames["val"]) == len(train) == 9992
    assert all(frame["label"].nunique() == 77 for frame in frames.values())

    started = time.perf_counter()
    write_drift_report(frames["train"], frames["test"], Path("timing"), "test_vs_train", "timing")
    drift_seconds = time.perf_counter() - started
    print(
        f"\nsplit on banking77: {stage_seconds:.1f} s; one Evidently report (train {len(frames['train'])} rows"
        f" vs test 3080): {drift_seconds:.2f} s; drift_share {produced.metrics['drift_share']}"
    )
    assert drift_seconds < 30
