"""CI's reduced GoEmotions recipe: `tuneforge run --config configs/goemotions.yaml` in a clone of the project, on a
subset of GoEmotions written here in the shipped format (headerless TSV, label ids, labels.txt), with a tiny model
and a few steps. The whole multi-label chain runs through register, and the shipped model predicts label sets.
"""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers.project import BANKING77, build_tiny_bert_with_minilm_tokenizer
from tuneforge.data.label_sets import label_lists

pytestmark = pytest.mark.e2e
GOEMOTIONS = BANKING77.parent / "goemotions"
PER_LABEL = {"train.tsv": 14, "dev.tsv": 3, "test.tsv": 3}


def write_goemotions_subset(target):
    """Up to PER_LABEL rows carrying each label, from each file, as the dataset ships them."""
    if not (GOEMOTIONS / "train.tsv").is_file():
        pytest.skip("../shared/datasets/goemotions is not beside the repo")
    target.mkdir()
    shutil.copy(GOEMOTIONS / "labels.txt", target / "labels.txt")
    for name, per_label in PER_LABEL.items():
        frame = pd.read_csv(GOEMOTIONS / name, sep="\t", header=None, names=["text", "ids", "id"], dtype=str,
                            quoting=3, keep_default_na=False)
        ids = frame["ids"].str.split(",")
        keep = set()
        for label in range(28):
            keep |= set(ids[ids.map(lambda row, label=label: str(label) in row)].index[:per_label])
        frame.loc[sorted(keep)].to_csv(target / name, sep="\t", header=False, index=False, quoting=3)
    return target


def test_the_goemotions_recipe_runs_the_multi_label_chain_through_register(project_clone, tmp_path):
    subset = write_goemotions_subset(tmp_path / "goemotions-subset")
    tiny = build_tiny_bert_with_minilm_tokenizer(tmp_path / "tiny-bert")
    shrink = [f"data.dir={subset}", f"model.base={tiny}", "validate.min_examples_per_class=5",
              "train.max_steps=6", "train.eval_steps=3", "train.batch_size=16", "distill.max_steps=6",
              "distill.num_layers=1", "export.benchmark_runs=5", "export.benchmark_warmup=1"]
    command = [sys.executable, "-m", "tuneforge.cli", "run", "--config", "configs/goemotions.yaml"]
    for assignment in shrink:
        command += ["--set", assignment]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(project_clone))
    env.pop("TUNEFORGE_RUN_ID", None)
    done = subprocess.run(command, cwd=project_clone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def metrics(stage):
        return json.loads((project_clone / f"reports/metrics/{stage}.json").read_text())

    names = (subset / "labels.txt").read_text().split()
    assert metrics("validate")["classes"] == 28
    split = pd.read_parquet(project_clone / "data/splits/test.parquet")
    assert {label for row in label_lists(split["label"]) for label in row} <= set(names)
    assert metrics("split")["test_source"] == "given" and metrics("split")["val_source"] == "given"
    evaluated = metrics("evaluate")
    assert {"macro_f1", "micro_f1", "samples_f1", "hamming_loss", "mean_average_precision"} <= set(evaluated)
    export = metrics("export")
    assert export["parity_passed"] is True
    shipped = json.loads((project_clone / "models/onnx/labels.json").read_text())
    assert shipped["decision"] == "thresholds" and shipped["labels"] == names
    assert len(json.loads((project_clone / "models/onnx/thresholds.json").read_text())["labels"]) == 28
    registered = json.loads((project_clone / "reports/register/model_version.json").read_text())
    assert registered["model"] == "goemotions" and {"teacher", "student", "onnx_int8"} <= set(registered["roles"])

    predicted = subprocess.run(
        [sys.executable, "-m", "tuneforge.cli", "predict", "models/onnx", "I love this so much", "--json"],
        cwd=project_clone, env=env, capture_output=True, text=True, timeout=120,
    )
    assert predicted.returncode == 0, predicted.stderr
    result = json.loads(predicted.stdout)
    assert isinstance(result["label"], list) and set(result["label"]) <= set(names)
