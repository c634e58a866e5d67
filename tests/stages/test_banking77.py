"""Acceptance on real data: banking77 read in place through validate -> split -> augment.

The published test file stays the test split (3,080 rows); only the training file is split into
train/val; no text is shared across splits; every drift report exists as HTML and JSON.
"""

import json

import pandas as pd
import pytest
import yaml

from stages import augment, split, validate
from tests.helpers.project import REPO_ROOT
from tuneforge.base.layout import Workspace
from tuneforge.data.textnorm import normalize_text
from tuneforge.params import parse_params
from tuneforge.params.overrides import merge


@pytest.fixture
def banking77_params(banking77):
    """The shipped spec with the shipped banking77 overlay, its data folder made absolute for a temp dir."""
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    merge(raw, yaml.safe_load((REPO_ROOT / "configs" / "banking77.yaml").read_text()))
    raw["data"]["dir"] = str(banking77)
    return parse_params(raw)


def test_banking77_data_stages(in_tmp_dir, banking77_params):
    params = banking77_params
    workspace = Workspace(expectations=REPO_ROOT / "expectations")
    validated = validate.run(params.data, params.validate_, workspace=workspace)
    assert validated.metrics["success"] is True
    split.run(params.split)
    augment.run(params.augment)

    frames = {name: pd.read_parquet(f"data/splits/{name}.parquet") for name in ("train", "val", "test")}
    assert len(frames["test"]) == 3080, "the published test file is the test split, row for row"
    assert frames["test"]["text"].tolist() == pd.read_parquet("data/validated/test.parquet")["text"].tolist()
    # 10,003 rows less 4 exact duplicates and 7 texts that also occur in the test file.
    assert len(frames["train"]) + len(frames["val"]) == 10003 - 4 - 7
    assert 0.09 <= len(frames["val"]) / (len(frames["train"]) + len(frames["val"])) <= 0.11
    for name, frame in frames.items():
        assert frame["label"].nunique() == 77, name

    seen: dict[str, str] = {}
    for name, frame in frames.items():
        for text in frame["text"]:
            key = normalize_text(text).casefold()
            assert seen.setdefault(key, name) == name, f"{text!r} is in {seen[key]} and {name}"

    reports = ("reports/split/val_vs_train", "reports/split/test_vs_train", "reports/augment/augmented_vs_original")
    for report in reports:
        assert (in_tmp_dir / f"{report}.html").stat().st_size > 10_000
        summary = json.loads((in_tmp_dir / f"{report}.json").read_text())
        assert 0.0 <= summary["drift_share"] <= 1.0

    # The recipe turns augmentation off (more clean epochs paid more on CPU): train passes through unchanged.
    assert params.augment.enabled is False
    augmented = pd.read_parquet("data/augmented/train.parquet")
    assert augmented["text"].tolist() == frames["train"]["text"].tolist()
    assert augmented["label"].tolist() == frames["train"]["label"].tolist()
