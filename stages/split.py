"""Stage `split`: stratified, seeded train/val/test splits of the validated data.

Input: data/validated/train.parquet, plus data/validated/test.parquet when the spec names a test file
and data/validated/val.parquet when it names a val file. A given file is that split row for row, and train
is split only for the held-out splits still missing: into train/val with a given test file, into
train/test with a given val file, and not at all with both (train is then every validated training row).
Output: data/splits/{train,val,test}.parquet (text, label, source_row) + meta.json, drift reports
reports/split/{val_vs_train,test_vs_train}.{html,json}, and metrics reports/metrics/split.json.

Rows whose texts are equal after normalisation and casefolding are split as one unit, so case or
whitespace variants of a text can never end up on both sides; the stratified unit is the distinct text,
labelled by its first row. The leakage check afterwards still compares every split with every other
(it catches a given val or test file that shares texts with train or with the other).
"""

import math
import time
from pathlib import Path

import pandas as pd
import pyarrow
from sklearn.model_selection import train_test_split

from tuneforge.base.errors import StageError
from tuneforge.base.layout import SPLIT_NAMES, Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, write_meta, write_metrics
from tuneforge.base.spec import ModelConfig, SplitConfig
from tuneforge.data.drift import write_drift_report
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.textnorm import text_key
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import task_for

STAGE = "split"
COLUMNS = [TEXT, LABEL, SOURCE_ROW]
MIN_TRAIN_PER_CLASS = 2  # a class with fewer training examples is not worth stratifying for
_KEY = "_text_key"
_STRATUM = "_stratum"
_SHOWN_EXAMPLES = 5


def run(cfg: SplitConfig, *, model_cfg: ModelConfig | None = None, workspace: Workspace = Workspace()) -> Produced:
    started = time.time()
    stratify_key = task_for(model_cfg, STAGE).stratify_key
    out_dir, reports, metrics_path = workspace.splits, workspace.reports(STAGE), workspace.metrics(STAGE)
    train_path = workspace.validated / "train.parquet"
    if not train_path.is_file():
        raise StageError(f"{train_path}: not found; run the validate stage first (python -m stages.validate)")
    labelled = read_validated(train_path)
    given_paths = {name: workspace.validated / f"{name}.parquet" for name in ("val", "test")}
    given_paths = {name: path for name, path in given_paths.items() if path.is_file()}
    given = {name: read_validated(path) for name, path in given_paths.items()}

    splits = split_frame(labelled, cfg, stratify_key, given=given)
    check_no_shared_text(splits)

    inputs = {"train": train_path} | given_paths
    with atomic_dirs(out_dir, reports) as (splits_tmp, reports_tmp):
        for name, frame in splits.items():
            frame.to_parquet(splits_tmp / f"{name}.parquet", index=False)
        drift = {
            f"{name}_vs_train": write_drift_report(
                splits["train"], splits[name], reports_tmp, f"{name}_vs_train", f"Split: {name} vs train"
            )["drift_share"]
            for name in ("val", "test")
        }
        metrics = {
            "rows": {name: len(frame) for name, frame in splits.items()},
            "classes": int(stratify_key(labelled).nunique()),
            "val_source": "given" if "val" in given else "split",
            "test_source": "given" if "test" in given else "split",
            "drift_share": drift,
        }
        write_meta(
            splits_tmp, stage=STAGE, config=cfg, inputs=inputs,
            metrics=metrics, started=started,
        )
        write_metrics(metrics_path, metrics)
    return Produced(
        stage=STAGE,
        outputs={"splits": out_dir, "reports": reports, "metrics": metrics_path},
        inputs=inputs,
        metrics=metrics,
    )


def read_validated(path: Path) -> pd.DataFrame:
    """A validated table as text, label, source_row (source_row is the line in the original input file)."""
    try:
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise StageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise StageError(f"{path}: no column {', '.join(missing)}; rerun the validate stage")
    if frame.empty:
        raise StageError(f"{path}: has no rows; rerun the validate stage")
    blank = frame[TEXT].isna() | frame[LABEL].isna()
    if blank.any():
        row = frame.loc[blank, SOURCE_ROW].iloc[0]
        raise StageError(f"{path}: {int(blank.sum())} rows without text or label (first: source row {row})")
    return frame[COLUMNS].astype({TEXT: str, LABEL: str}).reset_index(drop=True)


def held_out_fractions(cfg: SplitConfig, *, given: set[str] = frozenset()) -> dict[str, float]:
    """The held-out splits still to be cut from the training table (none that a file gives), with their shares."""
    wanted = {"val": cfg.val_fraction, "test": cfg.test_fraction}
    return {name: fraction for name, fraction in wanted.items() if name not in given}


def min_per_class(fractions: dict[str, float]) -> int:
    """Fewest distinct texts a class needs: one in every held-out split and MIN_TRAIN_PER_CLASS in train."""
    needed = [1 / fraction for fraction in fractions.values()]
    needed.append(MIN_TRAIN_PER_CLASS / (1 - sum(fractions.values())))
    return math.ceil(max(needed) - 1e-9)  # 0.1 * 10 is 1 even where floats say 0.9999...


def split_frame(
    labelled: pd.DataFrame, cfg: SplitConfig, stratify_key, *, given: dict[str, pd.DataFrame] | None = None
) -> dict[str, pd.DataFrame]:
    """train/val/test frames (in input order) from the labelled table; a given val or test frame is kept as is.
    `stratify_key`: rows -> each row's stratum (the task's; the label for single-label classification)."""
    given = given or {}
    fractions = held_out_fractions(cfg, given=set(given))
    keys = labelled[TEXT].map(text_key)
    units = labelled.assign(**{_KEY: keys, _STRATUM: stratify_key(labelled)}).drop_duplicates(_KEY)[[_KEY, _STRATUM]]
    if fractions:  # with val and test both given nothing is stratified, and validate has checked class sizes
        check_class_sizes(units[_STRATUM], fractions)

    assigned, rest, remaining = {}, units, 1.0
    for name in ("test", "val"):  # test first: the order (and so the rows) splits have always been cut in
        if name in fractions:
            # Rescaled so each share is of the whole table, not of what an earlier cut left.
            rest, assigned[name] = train_test_split(
                rest, test_size=fractions[name] / remaining, stratify=rest[_STRATUM], random_state=cfg.seed
            )
            remaining -= fractions[name]
    assigned["train"] = rest

    made = {
        name: labelled[keys.isin(set(unit[_KEY]))].reset_index(drop=True) for name, unit in assigned.items()
    }
    _check_every_class_everywhere(made, units[_STRATUM].unique(), stratify_key)
    splits = made | given
    return {name: splits[name] for name in SPLIT_NAMES}


def check_class_sizes(labels: pd.Series, fractions: dict[str, float]) -> None:
    """One StageError naming every class too small to reach every split (smallest first)."""
    needed = min_per_class(fractions)
    counts = labels.value_counts()
    small = counts[counts < needed].sort_values(kind="stable")
    if small.empty:
        return
    shares = ", ".join(f"{name}_fraction={fraction:g}" for name, fraction in fractions.items())
    label, count = small.index[0], int(small.iloc[0])
    others = f" ({len(small) - 1} more classes too small, listed below)" if len(small) > 1 else ""
    raise StageError(
        f"class '{label}' has {count} distinct texts; split needs at least {needed} per class with {shares} "
        f"(one in each held-out split, {MIN_TRAIN_PER_CLASS} in train){others}",
        detail="\n".join(f"  {name}: {int(n)}" for name, n in small.items()) if len(small) > 1 else "",
    )


def _check_every_class_everywhere(splits: dict[str, pd.DataFrame], labels, stratify_key) -> None:
    # check_class_sizes makes this hold for sklearn's stratified rounding (simulated on 4,800 random
    # class layouts); this guard turns a surprise into a clear error rather than a silently missing class.
    for name, frame in splits.items():
        absent = sorted(set(labels) - set(stratify_key(frame)))
        if absent:
            raise StageError(
                f"split '{name}' has no example of {len(absent)} classes (e.g. '{absent[0]}')",
                detail="  " + ", ".join(absent[:20]),
            )


def check_no_shared_text(splits: dict[str, pd.DataFrame]) -> None:
    """StageError listing examples when a text (normalised, casefolded) is in two splits."""
    keyed = pd.concat(
        [frame.assign(split=name, **{_KEY: frame[TEXT].map(text_key)}) for name, frame in splits.items()],
        ignore_index=True,
    )
    spread = keyed.groupby(_KEY, sort=False)["split"].transform("nunique")
    shared = keyed[spread > 1]
    if shared.empty:
        return
    lines = []
    for _, group in list(shared.groupby(_KEY, sort=False))[:_SHOWN_EXAMPLES]:
        places = ", ".join(f"{row.split} (source row {row.source_row})" for row in group.itertuples())
        lines.append(f"  {group[TEXT].iloc[0][:60]!r}: {places}")
    count = shared[_KEY].nunique()
    raise StageError(
        f"{count} texts appear in more than one split (compared after normalising whitespace and case); "
        "a given val or test file must not share texts with the training file (validate.drop_test_overlap) "
        "or with the other given file",
        detail="\n".join(lines),
    )


def main(argv=None) -> int:
    return stage_main(STAGE, lambda params: run(params.split, model_cfg=params.model), argv)


if __name__ == "__main__":
    raise SystemExit(main())
