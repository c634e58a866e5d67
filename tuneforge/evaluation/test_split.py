"""The test split as the evaluate and export stages read it: text, label (and source_row), every label known."""

from pathlib import Path

import pandas as pd

from tuneforge.base.errors import StageError


def read_test_split(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise StageError(f"{path}: not found; run the split stage first (python -m stages.split)")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise StageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    missing = [column for column in ("text", "label") if column not in frame.columns]
    if missing:
        raise StageError(f"{path}: no column {', '.join(missing)}; columns are: {', '.join(map(str, frame.columns))}")
    if frame.empty:
        raise StageError(f"{path}: has no rows")
    empty = frame["text"].isna() | frame["label"].isna()
    if empty.any():
        rows = _rows_named(frame, empty)
        raise StageError(f"{path}: {int(empty.sum())} row(s) without text or label (rows {rows})")
    columns = {"text": frame["text"].astype(str), "label": frame["label"].astype(str)}
    if "source_row" in frame.columns:
        columns["source_row"] = frame["source_row"]
    return pd.DataFrame(columns).reset_index(drop=True)


def check_labels_known(
    label_counts: pd.Series, labels: list[str], model_dir: Path, test_path: Path,
    counted: tuple[str, str] = ("rows", "label"),
) -> None:
    """`label_counts`: rows per label of the split (the task's label_counts), or what `counted` names (the task's
    `counted`: mentions per entity type), checked against the names the model's labels stand for (`labels`)."""
    unknown = label_counts[~label_counts.index.isin(labels)]
    if unknown.empty:
        return
    what, per = counted
    named = ", ".join(f"{label!r} ({count} {what})" for label, count in unknown.head(5).items())
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    raise StageError(
        f"{test_path}: {len(unknown)} {per}(s) unknown to the model (id2label of {model_dir / 'config.json'}): "
        f"{named}{more}"
    )


def _rows_named(frame: pd.DataFrame, mask: pd.Series) -> str:
    where = frame.loc[mask, "source_row"] if "source_row" in frame.columns else frame.index[mask]
    shown = ", ".join(str(row) for row in list(where)[:5])
    return shown + (", ..." if int(mask.sum()) > 5 else "")

