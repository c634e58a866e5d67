"""Acceptance on real token-classification data: WNUT 2017 read in place through configs/wnut17.yaml (CoNLL as
shipped, no code), then validate, split and augment. The published dev and test files stay the val and test splits;
the counts were measured by the data layer (tests/tuneforge/data/test_wnut17.py)."""

import json

import pandas as pd
import pytest
import yaml

from stages import augment, split, validate
from tests.helpers.project import BANKING77, REPO_ROOT
from tuneforge.base.layout import Workspace
from tuneforge.data.bio import entity_types, ill_formed
from tuneforge.params import parse_params
from tuneforge.params.overrides import merge

WNUT17 = BANKING77.parent / "wnut17"
TYPES = ["corporation", "creative-work", "group", "location", "person", "product"]


@pytest.fixture
def wnut17_params():
    if not (WNUT17 / "train.conll").is_file():
        pytest.skip("../shared/datasets/wnut17 is not beside the repo")
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    merge(raw, yaml.safe_load((REPO_ROOT / "configs" / "wnut17.yaml").read_text()))
    raw["data"]["dir"] = str(WNUT17)
    raw["registry"]["enabled"] = False
    return parse_params(raw)


@pytest.mark.slow
def test_wnut17_validates_splits_and_augments_through_its_overlay(in_tmp_dir, wnut17_params):
    params, root = wnut17_params, in_tmp_dir
    workspace = Workspace(root=root, expectations=REPO_ROOT / "expectations")
    validated = validate.run(params.data, params.validate_, model_cfg=params.model, workspace=workspace)
    metrics = validated.metrics
    # 3,394 train sentences less 91 exact duplicates and the 23 rows of 11 sentences tagged two ways (0.7%, within
    # validate.max_duplicate_share); dev and test as published, their few duplicates and conflicts kept.
    assert (metrics["rows_in"], metrics["dropped_duplicates"], metrics["dropped_conflicts"]) == (3394, 91, 23)
    assert (metrics["dropped_val_overlap"], metrics["dropped_test_overlap"]) == (0, 0)
    assert (metrics["rows_out"], metrics["val_rows_out"], metrics["test_rows_out"]) == (3280, 1009, 1287)
    assert metrics["classes"] == 13 and metrics["expectations_evaluated"] == 24
    assert metrics["bio_tags_repaired"] == metrics["val_bio_tags_repaired"] == metrics["test_bio_tags_repaired"] == 0
    assert metrics["label_cardinality"]["test"]["rows_per_mention_count"]["8"] == 2
    labels = json.loads((root / "data/validated/labels.json").read_text())
    assert labels == {"labels": ["O"] + [f"{p}-{kind}" for kind in TYPES for p in "BI"], "source": "inferred"}

    produced = split.run(params.split, model_cfg=params.model, workspace=workspace)
    assert produced.metrics["rows"] == {"train": 3280, "val": 1009, "test": 1287}
    assert produced.metrics["classes"] == 6
    counts = produced.metrics["label_counts"]
    # Mentions per type: dev and test exactly as published (836 and 1,079 entities); train less the dropped rows.
    assert counts["val"] == dict(zip(TYPES, [34, 105, 39, 74, 470, 114], strict=True))
    assert counts["test"] == dict(zip(TYPES, [66, 142, 165, 150, 429, 127], strict=True))
    assert counts["train"] == dict(zip(TYPES, [207, 136, 245, 520, 641, 135], strict=True))  # of 1,975
    test = pd.read_parquet(root / "data/splits/test.parquet")
    assert test["source_row"].iloc[0] == 1 and test["text"].iloc[0].startswith("& gt ; * The soldier was")

    augmented = augment.run(params.augment, model_cfg=params.model, workspace=workspace)
    assert augmented.metrics["rows_original"] == 3280 and augmented.metrics["balance_shortfall"] == {}
    assert augmented.metrics["class_counts_before"] == counts["train"]
    assert augmented.metrics["per_method"]["mention_replacement"] > 0
    out = pd.read_parquet(root / "data/augmented/train.parquet")
    original = pd.read_parquet(root / "data/splits/train.parquet")
    for text, cell, origin in zip(out["text"], out["label"], out["origin"], strict=True):
        tags = json.loads(cell)
        assert len(text.split(" ")) == len(tags) and not ill_formed(tags)
        assert entity_types(tags) == entity_types(json.loads(original["label"].iloc[origin]))


@pytest.mark.slow
def test_wnut17_is_cut_by_entity_type_when_no_val_file_is_given(in_tmp_dir, wnut17_params):
    """Without dev.conll, split cuts val from train by iterative stratification: every type reaches val in about
    its share of train's mentions."""
    data = wnut17_params.data.model_copy(update={"val_file": None})
    workspace = Workspace(root=in_tmp_dir, expectations=REPO_ROOT / "expectations")
    validate.run(data, wnut17_params.validate_, model_cfg=wnut17_params.model, workspace=workspace)
    produced = split.run(wnut17_params.split, model_cfg=wnut17_params.model, workspace=workspace)
    rows, counts = produced.metrics["rows"], produced.metrics["label_counts"]
    assert rows["train"] + rows["val"] == 3280 and abs(rows["val"] - 328) <= 10
    for kind in TYPES:
        whole = counts["train"][kind] + counts["val"][kind]
        assert abs(counts["val"][kind] - 0.1 * whole) <= max(3, 0.1 * 0.1 * whole), (kind, counts["val"][kind])
    assert "## Mentions per entity type: 6 entity types" in (in_tmp_dir / "reports/split/summary.md").read_text()
