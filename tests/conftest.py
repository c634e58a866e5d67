"""Shared test setup: no network, no analytics, Prefect state in a temporary home, small data builders."""

import csv
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BANKING77 = REPO_ROOT.parent / "shared" / "datasets" / "banking77"

os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    DVC_NO_ANALYTICS="1",
    GX_ANALYTICS_ENABLED="false",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    TOKENIZERS_PARALLELISM="false",
)


@pytest.fixture(autouse=True)
def _isolated_prefect_home(tmp_path_factory, monkeypatch):
    # Prefect keeps its database and task cache under PREFECT_HOME: never share it between tests.
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch) -> Path:
    """Run the test inside an empty directory, as a stage runs inside the repo root."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def labelled_rows(classes: int = 4, per_class: int = 30, prefix: str = "") -> list[dict]:
    """Distinct, realistic-looking texts: every class shares words with the others."""
    subjects = ["my card", "the transfer", "my account", "the payment", "this app", "my refund"]
    verbs = ["is stuck", "was declined", "shows twice", "has not arrived", "keeps failing", "looks wrong"]
    rows = []
    for label in range(classes):
        for i in range(per_class):
            text = f"{prefix}{subjects[i % 6]} {verbs[(i // 6 + label) % 6]} since {label}-{i} days"
            rows.append({"text": text, "label": f"class_{label}"})
    return rows


@pytest.fixture
def banking77() -> Path:
    if not (BANKING77 / "train.csv").is_file():
        pytest.skip("../shared/datasets/banking77 is not beside the repo")
    return BANKING77
