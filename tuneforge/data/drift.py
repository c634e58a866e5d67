"""Evidently drift reports: one HTML page for people and one JSON file for gates, per comparison.

A comparison looks at the label distribution and at three text descriptors computed by Evidently
(length in characters, word count, percentage of non-letter characters). The raw text column is
not itself tested: Evidently's text drift trains a classifier, which is slow and adds nothing a
gate can act on here. Sentiment and OOV descriptors are left out on purpose: they download NLTK
data at run time.

Evidently picks each column's test by size and type (chi-square / K-S / Z-test for small samples,
Jensen-Shannon / Wasserstein distances above 1,000 rows); the JSON records which one it used.
"""

import html
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from tuneforge.base.errors import StageError
from tuneforge.base.outputs import atomic_write_text
from tuneforge.data.io import LABEL, TEXT

# The text descriptors every comparison computes (split, augment, distill, export and the drift monitor):
# column name -> Evidently descriptor class in evidently.descriptors. Named, not imported: Evidently takes
# seconds to import and only the stages that write reports pay for it (text_descriptors).
TEXT_DESCRIPTORS = {
    "text_length": "TextLength", "word_count": "WordCount", "non_letter_pct": "NonLetterCharacterPercentage",
}
DESCRIPTORS = tuple(TEXT_DESCRIPTORS)
DRIFT_COLUMNS = (LABEL, *DESCRIPTORS)
# Share of drifted columns at which Evidently calls the whole dataset drifted (its default).
DATASET_DRIFT_SHARE = 0.5
# Evidently orders categories through a Python set (hash-seeded per process), so sums over labels differ
# in the last bits between runs; 12 significant digits keep the JSON byte-identical and lose nothing.
SIGNIFICANT_DIGITS = 12

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DASHBOARD_ID = re.compile(r"metric_[0-9a-f]{32}")
_LIBRARY_SCRIPT = "<script>var global = globalThis</script>"


def write_drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, out_dir: Path, name: str, title: str
) -> dict:
    """Compare `current` with `reference`; write out_dir/<name>.html and .json; return the summary.

    The JSON holds the summary keys at the top level (title, rows, drift_share, dataset_drift,
    drifted_columns, columns: {column: {method, threshold, score, drifted}}) beside Evidently's own
    `metrics` and `tests`. Frames need columns text and label; other columns are ignored.
    """
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"drift report name {name!r}: use 1-64 letters, digits, '_', '-' or '.'")
    for role, frame in (("reference", reference), ("current", current)):
        missing = [column for column in (TEXT, LABEL) if column not in frame.columns]
        if missing:
            raise StageError(f"drift report '{name}': {role} data has no column {', '.join(missing)}")
        if frame.empty:
            raise StageError(f"drift report '{name}': {role} data has no rows")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = _run_report(_prepare(reference), _prepare(current))
        evidently_json = json.loads(snapshot.json())
        page = snapshot.get_html_str(as_iframe=False)

    evidently_json = _rounded(evidently_json)
    summary = _summarise(evidently_json, title, reference_rows=len(reference), current_rows=len(current))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / f"{name}.html", _titled(_stable_ids(page), title, summary))
    atomic_write_text(
        out_dir / f"{name}.json",
        json.dumps({**summary, **evidently_json}, indent=2, sort_keys=True, allow_nan=False) + "\n",
    )
    return summary


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    # Only what the report compares; a fresh index so Evidently never sees gaps or duplicates.
    return pd.DataFrame(
        {
            TEXT: frame[TEXT].fillna("").astype(str).to_numpy(),
            LABEL: frame[LABEL].astype(str).to_numpy(),
        }
    )


def _run_report(reference: pd.DataFrame, current: pd.DataFrame):
    # Evidently takes seconds to import: only stages that write reports pay for it.
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(categorical_columns=[LABEL], text_columns=[TEXT])

    def dataset(frame: pd.DataFrame):
        return Dataset.from_pandas(frame, data_definition=definition, descriptors=text_descriptors())

    report = Report(
        [DataDriftPreset(columns=list(DRIFT_COLUMNS), drift_share=DATASET_DRIFT_SHARE)],
        include_tests=True,  # the per-column tests carry Evidently's own drifted / not drifted verdict
    )
    return report.run(dataset(current), dataset(reference))


def text_descriptors(column: str = TEXT) -> list:
    """Evidently descriptor objects computing TEXT_DESCRIPTORS of `column`, each under its column name."""
    from evidently import descriptors

    return [getattr(descriptors, kind)(column, alias=name) for name, kind in TEXT_DESCRIPTORS.items()]


def _summarise(evidently_json: dict, title: str, *, reference_rows: int, current_rows: int) -> dict:
    columns: dict[str, dict[str, Any]] = {}
    drift_share = None
    for metric in evidently_json["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {
                "method": config["method"],
                "threshold": config["threshold"],
                "score": metric["value"],
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            drift_share = metric["value"]["share"]
    for test in evidently_json["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    drifted = [column for column in DRIFT_COLUMNS if columns[column]["drifted"]]
    return {
        "title": title,
        "rows": {"reference": reference_rows, "current": current_rows},
        "drift_share": drift_share,
        "dataset_drift": drift_share >= DATASET_DRIFT_SHARE,
        "drifted_columns": drifted,
        "columns": columns,
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def _stable_ids(page: str) -> str:
    """Replace Evidently's random widget and dashboard ids with ones numbered by first appearance.

    Only ids found in the data block (before the embedded JavaScript library) are renamed, so the
    library's own code is never touched.
    """
    data_block = page.split(_LIBRARY_SCRIPT, 1)[0]
    renames: dict[str, str] = {}
    for found in _DASHBOARD_ID.findall(data_block):
        renames.setdefault(found, f"metric_{len(renames):032x}")
    for found in _UUID.findall(data_block):
        renames.setdefault(found, f"00000000-0000-4000-8000-{len(renames):012x}")
    if not renames:
        return page
    pattern = re.compile("|".join(re.escape(old) for old in renames))
    return pattern.sub(lambda match: renames[match.group(0)], page)


def _titled(page: str, title: str, summary: dict) -> str:
    drifted = ", ".join(summary["drifted_columns"]) or "none"
    rows = summary["rows"]
    heading = (
        f'<h1 style="font-family: sans-serif; margin: 16px 24px 0">{html.escape(title)}</h1>\n'
        f'<p style="font-family: sans-serif; margin: 4px 24px">reference {rows["reference"]:,} rows, '
        f'current {rows["current"]:,} rows; drifted columns: {html.escape(drifted)}</p>\n'
    )
    return with_heading(page, title, heading)


def with_heading(page: str, title: str, heading: str) -> str:
    """An Evidently page with a <title> and `heading` (HTML, escaped by the caller) at the top of its body:
    Evidently's own page has neither, and every saved report says what it compares."""
    charset = '<meta charset="UTF-8">'
    page = page.replace(charset, f"{charset}\n<title>{html.escape(title)}</title>", 1)
    return page.replace("<body>", f"<body>\n{heading}", 1)
