"""Stage `split`: stratified, seeded train/val/test splits of the validated data.

Input: data/validated/train.parquet, plus data/validated/test.parquet when the spec names a test file
and data/validated/val.parquet when it names a val file. A given file is that split row for row, and train
is split only for the held-out splits still missing: into train/val with a given test file, into
train/test with a given val file, and not at all with both (train is then every validated training row).
Output: data/splits/{train,val,test}.parquet (text, label, source_row) + meta.json (and, with data.oos_file,
data/splits/{oos_val,oos_test}.parquet: the out-of-scope rows shared by split.oos_val_fraction), drift reports
reports/split/{val_vs_train,test_vs_train}.{html,json}, rows per label and split in reports/split/summary.md,
and metrics reports/metrics/split.json (with the same counts).

Rows whose texts are equal after normalisation and casefolding are split as one unit, so case or
whitespace variants of a text can never end up on both sides; the stratified unit is the distinct text,
labelled by its first row. How units are cut is the task's (tuneforge/data/splitting.py): stratified by label
for one label per text, iterative stratification for label sets (and for the entity types of tagged sentences),
and every class or label must reach every split. The leakage check afterwards still compares every split with
every other (it catches a given val or test file that shares texts with train or with the other).
"""

import time
from pathlib import Path

import pandas as pd
import pyarrow

from tuneforge.base.errors import StageError
from tuneforge.base.layout import SPLIT_NAMES, Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, atomic_write_text, write_meta, write_metrics
from tuneforge.base.spec import ModelConfig, SplitConfig
from tuneforge.data.drift import write_drift_report
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.data.out_of_scope import split_out_of_scope
from tuneforge.data.splitting import check_class_sizes, min_per_class
from tuneforge.data.textnorm import text_key
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import Task, task_for

__all__ = [
    "check_class_sizes", "check_no_shared_text", "held_out_fractions", "main", "min_per_class", "read_validated",
    "run", "split_frame",
]
STAGE = "split"
COLUMNS = [TEXT, LABEL, SOURCE_ROW]
_KEY = "_text_key"
_SHOWN_EXAMPLES = 5


def run(cfg: SplitConfig, *, model_cfg: ModelConfig | None = None, workspace: Workspace = Workspace()) -> Produced:
    started = time.time()
    task = task_for(model_cfg, STAGE)
    out_dir, reports, metrics_path = workspace.splits, workspace.reports(STAGE), workspace.metrics(STAGE)
    train_path = workspace.validated / "train.parquet"
    if not train_path.is_file():
        raise StageError(f"{train_path}: not found; run the validate stage first (python -m stages.validate)")
    labelled = read_validated(train_path)
    given_paths = {name: workspace.validated / f"{name}.parquet" for name in ("val", "test")}
    given_paths = {name: path for name, path in given_paths.items() if path.is_file()}
    given = {name: read_validated(path) for name, path in given_paths.items()}

    splits = split_frame(labelled, cfg, task, given=given)
    oos_path = workspace.validated / "oos.parquet"
    out_of_scope = {}
    if oos_path.is_file():
        out_of_scope = split_out_of_scope(read_validated(oos_path), cfg.oos_val_fraction, cfg.seed)
        given_paths["oos"] = oos_path
    check_no_shared_text(splits | out_of_scope)

    inputs = {"train": train_path} | given_paths
    with atomic_dirs(out_dir, reports) as (splits_tmp, reports_tmp):
        for name, frame in (splits | out_of_scope).items():
            frame.to_parquet(splits_tmp / f"{name}.parquet", index=False)
        drift = {
            f"{name}_vs_train": write_drift_report(
                splits["train"], splits[name], reports_tmp, f"{name}_vs_train", f"Split: {name} vs train"
            )["drift_share"]
            for name in ("val", "test")
        }
        label_counts = {name: _label_counts(task, frame) for name, frame in splits.items()}
        metrics = {
            "rows": {name: len(frame) for name, frame in (splits | out_of_scope).items()},
            "classes": len(_label_counts(task, labelled)),
            "val_source": "given" if "val" in given else "split",
            "test_source": "given" if "test" in given else "split",
            "drift_share": drift,
            "label_counts": label_counts,
        }
        atomic_write_text(reports_tmp / "summary.md", _summary(metrics, task.counted))
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


def split_frame(
    labelled: pd.DataFrame, cfg: SplitConfig, task: Task, *, given: dict[str, pd.DataFrame] | None = None
) -> dict[str, pd.DataFrame]:
    """train/val/test frames (in input order) from the labelled table; a given val or test frame is kept as is.
    The task says what a row's stratum is (`stratify_key`) and how the distinct texts are cut (`split_units`)."""
    given = given or {}
    fractions = held_out_fractions(cfg, given=set(given))
    keys = labelled[TEXT].map(text_key)
    units = labelled.assign(**{_KEY: keys}).drop_duplicates(_KEY)
    strata = pd.Series(task.stratify_key(units).to_numpy(), index=pd.Index(units[_KEY]))
    if fractions:
        assigned = task.split_units(strata, fractions, cfg.seed)
    else:  # with val and test both given nothing is cut, and validate has checked class sizes
        assigned = {"train": strata.index}
    made = {name: labelled[keys.isin(set(index))].reset_index(drop=True) for name, index in assigned.items()}
    _check_every_class_everywhere(made, set(_label_counts(task, units)), task)
    splits = made | given
    return {name: splits[name] for name in SPLIT_NAMES}


def _label_counts(task: Task, frame: pd.DataFrame) -> dict[str, int]:
    """Rows per class (per label, where a row holds several) by the task's stratum, sorted by name."""
    counts = task.label_counts(task.stratify_key(frame))
    return {str(label): int(count) for label, count in sorted(counts.items())}


def _check_every_class_everywhere(splits: dict[str, pd.DataFrame], labels: set[str], task: Task) -> None:
    # check_class_sizes makes this hold for sklearn's stratified rounding (simulated on 4,800 random
    # class layouts), and iterative stratification hands every label to the split that wants it most;
    # this guard turns a surprise into a clear error rather than a silently missing class.
    for name, frame in splits.items():
        absent = sorted(labels - set(_label_counts(task, frame)))
        if absent:
            raise StageError(
                f"split '{name}' has no example of {len(absent)} classes (e.g. '{absent[0]}')",
                detail="  " + ", ".join(absent[:20]),
            )


def _summary(metrics: dict, counted: tuple[str, str]) -> str:
    """`counted`: what the task's label_counts counts, and per what (rows per label, mentions per entity type)."""
    what, per = counted
    counts = metrics["label_counts"]
    labelled = list(counts)  # out-of-scope rows carry no label of the set: rows only
    lines = [
        "# split", "",
        "| split | rows | source |", "| --- | ---: | --- |",
        *(f"| {name} | {rows} | {metrics.get(f'{name}_source', 'split')} |" for name, rows in metrics["rows"].items()),
        "", f"## {what.capitalize()} per {per}: {metrics['classes']} {per}s", "",
        f"| {per} | " + " | ".join(labelled) + " |", "| --- |" + " ---: |" * len(labelled),
    ]
    for label in sorted(set().union(*counts.values())):
        lines.append(f"| {label} | " + " | ".join(str(counts[name].get(label, 0)) for name in labelled) + " |")
    return "\n".join(lines) + "\n"


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
