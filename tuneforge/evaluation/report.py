"""The Evidently classification report: HTML for people, JSON for gates.

Current data is the evaluated model's predictions on the test split; when a production model was
evaluated on the same split its predictions are the reference, so the report shows both side by side.

Labels reach Evidently as integer codes (their sorted order) with the names as display labels: Evidently
collects the classes in a Python set, whose order for strings changes with every process's hash seed, and
the per-label heatmap of the HTML followed it. Integers hash to themselves, so the same predictions now
give the same page, byte for byte (the JSON, keyed by name, is the same either way).
"""

import json
import warnings
from pathlib import Path

import pandas as pd

from tuneforge.base.outputs import atomic_write_text

# Evidently's HTML carries random widget ids and its JSON hash-ordered float sums: the drift reports
# already make both reproducible, the same way is used here.
from tuneforge.data.drift import _rounded, _stable_ids

TARGET, PREDICTION = "target", "prediction"


def write_classification_report(
    current: pd.DataFrame, reference: pd.DataFrame | None, out_dir: Path, name: str = "classification"
) -> dict:
    """Frames have columns label and predicted. Writes out_dir/<name>.html and .json; returns Evidently's
    metrics as {metric type: value} (accuracy, precision, recall, f1 and their per-label forms)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = _labels(current, reference)
        codes = {label: code for code, label in enumerate(labels)}
        snapshot = _run(
            _prepare(current, codes), None if reference is None else _prepare(reference, codes), labels
        )
        payload = _rounded(json.loads(snapshot.json()))
        page = snapshot.get_html_str(as_iframe=False)
    summary = {
        metric["config"]["type"].rsplit(":", 1)[-1]: metric["value"] for metric in payload["metrics"]
    }
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / f"{name}.html", _stable_ids(page))
    atomic_write_text(
        out_dir / f"{name}.json",
        json.dumps({"summary": summary, **payload}, indent=2, sort_keys=True, allow_nan=False) + "\n",
    )
    return summary


def _labels(current: pd.DataFrame, reference: pd.DataFrame | None) -> list[str]:
    frames = [current] if reference is None else [current, reference]
    return sorted({str(label) for frame in frames for column in ("label", "predicted") for label in frame[column]})


def _prepare(frame: pd.DataFrame, codes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({
        TARGET: frame["label"].astype(str).map(codes).to_numpy(),
        PREDICTION: frame["predicted"].astype(str).map(codes).to_numpy(),
    })


def _run(current: pd.DataFrame, reference: pd.DataFrame | None, labels: list[str]):
    # Evidently takes seconds to import: only stages that write reports pay for it.
    from evidently import DataDefinition, Dataset, MulticlassClassification, Report
    from evidently.presets import ClassificationPreset

    definition = DataDefinition(
        classification=[
            MulticlassClassification(target=TARGET, prediction_labels=PREDICTION, labels=dict(enumerate(labels)))
        ],
        categorical_columns=[TARGET, PREDICTION],
    )

    def dataset(frame: pd.DataFrame):
        return Dataset.from_pandas(frame, data_definition=definition)

    report = Report([ClassificationPreset()])
    return report.run(dataset(current), None if reference is None else dataset(reference))
