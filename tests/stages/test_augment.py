"""Stage `augment`: train split only, provenance on every row, balanced classes, reproducible, atomic."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from stages import augment
from stages.augment import run
from tests.helpers.project import labelled_rows
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import AugmentConfig, BalanceConfig, NoiseConfig
from tuneforge.data.augmentation import BALANCE_PREFIX, augment_frame

METHOD_NAMES = {"char_noise", "word_dropout", "word_swap"}
OFF = NoiseConfig(probability=0.0, rate=0.1)


def imbalanced_train() -> pd.DataFrame:
    """class_0..2 with 30 rows, class_3 with 10; source_row as the split stage carries it (not 0..n)."""
    frame = pd.DataFrame(labelled_rows(classes=4, per_class=30))
    frame = frame[(frame["label"] != "class_3") | (frame.index % 3 == 0)].reset_index(drop=True)
    frame["source_row"] = [2 + 3 * i for i in range(len(frame))]
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)  # classes interleaved


def write_splits(root: Path, train: pd.DataFrame | None = None) -> Path:
    splits = root / "data" / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    (train if train is not None else imbalanced_train()).to_parquet(splits / "train.parquet", index=False)
    return splits


def run_in(root: Path, cfg: AugmentConfig, splits: Path):
    return run(cfg, workspace=Workspace(root, splits=splits))


def output_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for folder in ("data/augmented", "reports")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("default")
    splits = write_splits(root)
    produced = run_in(root, AugmentConfig(), splits)
    return (
        root,
        produced,
        pd.read_parquet(splits / "train.parquet"),
        pd.read_parquet(produced.outputs["train"]),
    )


def test_every_row_records_its_source_and_method(default_run):
    _, _, original, out = default_run
    assert list(out.columns) == ["text", "label", "source_row", "origin", "method"]
    originals = out[out["method"] == "original"]
    pd.testing.assert_frame_equal(originals[["text", "label", "source_row"]], original)
    assert originals["origin"].tolist() == list(range(len(original)))

    added = out[out["method"] != "original"]
    assert len(added) > 0
    source = original.loc[added["origin"]]
    assert added["label"].tolist() == source["label"].tolist()
    assert added["source_row"].tolist() == source["source_row"].tolist()
    assert (added["text"].to_numpy() != source["text"].to_numpy()).all()
    for method in added["method"]:
        names = method.removeprefix(BALANCE_PREFIX).split("+")
        assert set(names) <= METHOD_NAMES and len(names) == len(set(names)), method
    assert not out["text"].duplicated().any()


def test_default_balancing_evens_out_classes_at_the_largest_count_after_augmentation(default_run):
    root, produced, original, out = default_run
    counts = out["label"].value_counts()
    assert counts.nunique() == 1
    unbalanced = out[~out["method"].str.startswith(BALANCE_PREFIX)]["label"].value_counts()
    assert counts.iloc[0] == unbalanced.max() > original["label"].value_counts().max()
    assert out["method"].str.startswith(BALANCE_PREFIX).sum() > 0
    # The minority class is made up with variants of its own rows, spread over all of them.
    balance = out[out["method"].str.startswith(BALANCE_PREFIX) & (out["label"] == "class_3")]
    assert balance["origin"].nunique() == 10


def test_metrics_meta_and_drift_report_are_written(default_run):
    root, produced, original, out = default_run
    metrics = json.loads((root / "reports/metrics/augment.json").read_text())
    assert metrics["rows_original"] == len(original) == 100
    assert metrics["rows_augmented"] == len(out)
    assert metrics["class_counts_before"] == {"class_0": 30, "class_1": 30, "class_2": 30, "class_3": 10}
    assert set(metrics["class_counts_after"].values()) == {metrics["balance_target"]}
    assert metrics["variants"] + metrics["balance_variants"] == len(out) - len(original)
    for name in METHOD_NAMES:
        assert metrics["per_method"][name] == out["method"].str.contains(name).sum() > 0
    assert metrics["balance_shortfall"] == {}

    report = json.loads((root / "reports/augment/augmented_vs_original.json").read_text())
    assert report["rows"] == {"reference": len(original), "current": len(out)}
    assert 0 <= report["drift_share"] <= 1 and metrics["drift_share"] == report["drift_share"]
    assert "<html" in (root / "reports/augment/augmented_vs_original.html").read_text().lower()

    meta = json.loads((root / "data/augmented/meta.json").read_text())
    assert meta["stage"] == "augment" and meta["metrics"] == metrics
    assert meta["config"] == AugmentConfig().model_dump(by_alias=True)
    assert list(meta["inputs"]) == ["train"] and meta["inputs"]["train"]["path"].endswith("train.parquet")
    assert {path.name for path in produced.outputs.values()} == {
        "train.parquet",
        "meta.json",
        "augmented_vs_original.html",
        "augmented_vs_original.json",
        "augment.json",
    }


def test_same_seed_gives_identical_outputs_and_another_seed_differs(tmp_path):
    splits = write_splits(tmp_path / "in")
    cfg = AugmentConfig(variants_per_row=2)
    first = run_in(tmp_path / "a", cfg, splits)
    second = run_in(tmp_path / "b", cfg, splits)
    assert first.outputs["train"].read_bytes() == second.outputs["train"].read_bytes()
    assert (tmp_path / "a/reports/augment/augmented_vs_original.json").read_bytes() == (
        tmp_path / "b/reports/augment/augmented_vs_original.json"
    ).read_bytes()

    other = augment_frame(pd.read_parquet(splits / "train.parquet"), cfg.model_copy(update={"seed": 14}))[0]
    assert not other.equals(pd.read_parquet(first.outputs["train"]))


def test_a_rows_variants_do_not_depend_on_the_other_rows():
    train = imbalanced_train()
    cfg = AugmentConfig(variants_per_row=2, balance=BalanceConfig(enabled=False))
    full = augment_frame(train, cfg)[0]
    head = augment_frame(train.head(40), cfg)[0]
    # Rows 0..39 get the same variants whether or not rows 40.. exist (no shared rng state).
    pd.testing.assert_frame_equal(full[full["origin"] < 40].reset_index(drop=True), head)


def test_reads_only_the_train_split_never_val_or_test(tmp_path):
    splits = write_splits(tmp_path / "in")
    alone = run_in(tmp_path / "alone", AugmentConfig(), splits)  # val and test absent
    # Present but unreadable: any attempt to read them as Parquet would fail the stage.
    (splits / "val.parquet").write_bytes(b"not parquet")
    (splits / "test.parquet").mkdir()
    opened: list[str] = []
    recording = [True]

    def hook(event, args):
        if recording[0] and event == "open" and isinstance(args[0], str | bytes | Path):
            opened.append(str(Path(args[0] if not isinstance(args[0], bytes) else args[0].decode())))

    sys.addaudithook(hook)  # audit hooks cannot be removed: the flag below switches this one off
    try:
        beside = run_in(tmp_path / "beside", AugmentConfig(), splits)
    finally:
        recording[0] = False
    read_from_splits = {
        Path(path).resolve() for path in opened if Path(path).resolve().parent == splits.resolve()
    }
    assert read_from_splits == {(splits / "train.parquet").resolve()}
    assert alone.outputs["train"].read_bytes() == beside.outputs["train"].read_bytes()


def test_disabled_copies_the_train_split_through(tmp_path):
    splits = write_splits(tmp_path)
    original = pd.read_parquet(splits / "train.parquet")
    produced = run_in(tmp_path, AugmentConfig(enabled=False), splits)
    out = pd.read_parquet(produced.outputs["train"])
    pd.testing.assert_frame_equal(out[["text", "label", "source_row"]], original)
    assert (out["method"] == "original").all() and out["origin"].tolist() == list(range(len(original)))
    assert produced.metrics["rows_augmented"] == produced.metrics["rows_original"] == len(original)
    assert produced.metrics["class_counts_after"] == produced.metrics["class_counts_before"]
    for path in produced.outputs.values():
        assert path.is_file(), path


def test_zero_probabilities_give_only_originals_and_balancing_rows():
    train = imbalanced_train()
    cfg = AugmentConfig(variants_per_row=3, char_noise=OFF, word_dropout=OFF, word_swap=OFF)
    out, extra = augment_frame(train, cfg)
    added = out[out["method"] != "original"]
    assert added["method"].str.startswith(BALANCE_PREFIX).all()
    assert out["label"].value_counts().to_dict() == dict.fromkeys(sorted(train["label"].unique()), 30)
    assert extra["target"] == 30  # nothing was added before balancing: the original largest class

    unbalanced = augment_frame(train, cfg.model_copy(update={"balance": BalanceConfig(enabled=False)}))[0]
    assert (unbalanced["method"] == "original").all() and len(unbalanced) == len(train)


@pytest.mark.parametrize("target", [12, 45])
def test_explicit_target_tops_every_class_up_and_trims_none(target):
    train = imbalanced_train()
    cfg = AugmentConfig(balance=BalanceConfig(target=target))
    out, extra = augment_frame(train, cfg)
    unbalanced = out[~out["method"].str.startswith(BALANCE_PREFIX)]["label"].value_counts()
    counts = out["label"].value_counts()
    for label, count in counts.items():
        assert count == max(target, unbalanced[label])
    assert extra["shortfall"] == {}


def test_a_class_without_enough_distinct_variants_stops_short_and_says_so():
    train = pd.DataFrame(
        {
            "text": ["ok", "yes", "fine"] + [f"a longer sentence number {i}" for i in range(30)],
            "label": ["tiny"] * 3 + ["big"] * 30,
            "source_row": range(2, 35),
        }
    )
    out, extra = augment_frame(train, AugmentConfig(balance=BalanceConfig(target=300)))
    counts = out["label"].value_counts()
    assert counts["big"] == 300 and counts["tiny"] < 300
    assert extra["shortfall"] == {"tiny": 300 - counts["tiny"]}
    assert not out["text"].duplicated().any()


def test_missing_train_split_is_one_clear_line(tmp_path):
    with pytest.raises(StageError, match=r"train\.parquet: not found; run the split stage first"):
        run_in(tmp_path, AugmentConfig(), tmp_path / "data" / "splits")


def test_main_runs_from_params_and_reports_a_missing_split_in_one_line(in_tmp_dir, capsys):
    Path("params.yaml").write_text("augment:\n  seed: 3\n  variants_per_row: 1\n", encoding="utf-8")
    assert augment.main(["--params", "params.yaml"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0] == (
        "augment: error: data/splits/train.parquet: not found; "
        "run the split stage first (python -m stages.split)"
    )
    write_splits(in_tmp_dir)
    assert augment.main(["--params", "params.yaml"]) == 0
    assert json.loads(Path("data/augmented/meta.json").read_text())["config"]["seed"] == 3
    assert Path("reports/metrics/augment.json").is_file()


def test_failure_leaves_previous_outputs_byte_for_byte(tmp_path, monkeypatch):
    splits = write_splits(tmp_path)
    run_in(tmp_path, AugmentConfig(), splits)
    before = output_files(tmp_path)

    # A failure half way, after the new parquet was written to the staging directory.
    def broken_report(*args, **kwargs):
        raise StageError("drift report failed")

    monkeypatch.setattr(augment, "write_drift_report", broken_report)
    with pytest.raises(StageError, match="drift report failed"):
        run_in(tmp_path, AugmentConfig(seed=99, variants_per_row=3), splits)
    monkeypatch.undo()

    (splits / "train.parquet").write_bytes(b"garbage")
    with pytest.raises(StageError, match="not a readable Parquet file"):
        run_in(tmp_path, AugmentConfig(seed=99), splits)
    (splits / "train.parquet").unlink()
    with pytest.raises(StageError, match="run the split stage first"):
        run_in(tmp_path, AugmentConfig(seed=99), splits)

    assert output_files(tmp_path) == before
    leftovers = [p.name for p in tmp_path.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []


def test_train_split_without_provenance_column_is_refused(tmp_path):
    splits = write_splits(tmp_path, imbalanced_train().drop(columns="source_row"))
    with pytest.raises(StageError, match="missing column.*source_row"):
        run_in(tmp_path, AugmentConfig(), splits)
