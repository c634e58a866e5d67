"""Stage `augment`: noisy variants of the train split, then class balancing. Never reads val or test.

Input: data/splits/train.parquet only (columns text, label, source_row). Output: data/augmented/train.parquet
with columns
    text, label   the example
    source_row    line of the original in the input data file (carried from the split)
    origin        0-based index of the original row in data/splits/train.parquet
    method        "original"; or the methods that changed the text, joined by "+" in the order applied
                  (e.g. "word_swap+char_noise"); balancing rows carry a "balance:" prefix
                  (e.g. "balance:char_noise")
Originals come first in train order, then the variants in origin order, then the balancing rows by class.

What the variants are and how balancing works is the task's (model.task): for text tasks
tuneforge/data/augmentation.py (noisy variants of each row, then topping every class up to one count,
deterministic per seed); for tagged sentences the entity-preserving variants of
tuneforge/data/token_augmentation.py through the same machinery. A task without augmentation passes the train
split through as "original" rows.
"""

import time
from pathlib import Path

import pandas as pd
import pyarrow

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, write_meta, write_metrics
from tuneforge.base.spec import AugmentConfig, ModelConfig
from tuneforge.data.augmentation import METHOD, ORIGIN, augment_metrics, with_provenance
from tuneforge.data.drift import write_drift_report
from tuneforge.data.io import LABEL, SOURCE_ROW, TEXT
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import task_for

STAGE = "augment"
REPORT_NAME = "augmented_vs_original"


def run(
    cfg: AugmentConfig, *, model_cfg: ModelConfig | None = None, workspace: Workspace = Workspace()
) -> Produced:
    started = time.time()
    task = task_for(model_cfg, STAGE)
    if cfg.enabled and task.augment is None:
        raise ConfigError(f"augment.enabled: model.task {task.name} has no augmentation; set augment.enabled: false")
    train_path = workspace.splits / "train.parquet"
    out_dir, reports, metrics_path = workspace.augmented, workspace.reports(STAGE), workspace.metrics(STAGE)
    original = read_train_split(train_path)

    augmented, extra = task.augment(original, cfg) if cfg.enabled else (with_provenance(original), {})
    metrics = augment_metrics(original, augmented, extra, task.label_counts)

    with atomic_dirs(out_dir, reports) as (out_tmp, reports_tmp):
        augmented.to_parquet(out_tmp / "train.parquet", index=False)
        drift = write_drift_report(
            original[[TEXT, LABEL]],
            augmented[[TEXT, LABEL]],
            reports_tmp,
            REPORT_NAME,
            "Augmented vs original train split",
        )
        metrics["drift_share"] = drift.get("drift_share")
        write_meta(
            out_tmp,
            stage=STAGE,
            config=cfg,
            inputs={"train": train_path},
            metrics=metrics,
            started=started,
            extra={"columns": [TEXT, LABEL, SOURCE_ROW, ORIGIN, METHOD]},
        )
    # After the rename: a failure above leaves the previous metrics beside the previous outputs.
    write_metrics(metrics_path, metrics)
    return Produced(
        stage=STAGE,
        outputs={
            "train": out_dir / "train.parquet",
            "meta": out_dir / "meta.json",
            "report_html": reports / f"{REPORT_NAME}.html",
            "report_json": reports / f"{REPORT_NAME}.json",
            "metrics": metrics_path,
        },
        inputs={"train": train_path},
        metrics=metrics,
    )


def read_train_split(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise StageError(f"{path}: not found; run the split stage first (python -m stages.split)")
    try:
        # Opened here rather than by path inside pyarrow, so every file this stage reads is visible
        # to Python's audit hooks (the test that proves val and test are never read relies on it).
        with open(path, "rb") as handle:
            frame = pd.read_parquet(handle)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise StageError(f"{path}: not a readable Parquet file ({reason})") from None
    missing = [c for c in (TEXT, LABEL, SOURCE_ROW) if c not in frame.columns]
    if missing:
        raise StageError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"columns are: {', '.join(map(str, frame.columns))} (rerun the split stage)"
        )
    if frame.empty:
        raise StageError(f"{path}: has no rows; rerun the split stage")
    for column in (TEXT, LABEL):
        nulls = frame.index[frame[column].isna()]
        if len(nulls):
            row = frame.loc[nulls[0], SOURCE_ROW]
            raise StageError(f"{path}: empty {column} at source row {row}; rerun validate and split")
    return pd.DataFrame(
        {
            TEXT: frame[TEXT].astype(str),
            LABEL: frame[LABEL].astype(str),
            SOURCE_ROW: frame[SOURCE_ROW].astype("int64"),
        }
    ).reset_index(drop=True)


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.augment, model_cfg=p.model), argv)


if __name__ == "__main__":
    raise SystemExit(main())
