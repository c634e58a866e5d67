"""CI's reduced version of the banking77 quality recipe: `tuneforge run --config configs/banking77.yaml` in a
clone of the project, on a small stratified subset of banking77 written here, with a tiny model and a few steps.

The whole chain must run through register, and what the recipe sets must be what ran: the published test
file stays the test split, no augmentation, the recipe's training keys reach the teacher, and the version is
registered under the recipe's model name.
"""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.helpers.project import REPO_ROOT, build_tiny_bert_with_minilm_tokenizer

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import run_all  # noqa: E402

pytestmark = pytest.mark.e2e
CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 6, 40, 10


def write_banking77_subset(banking77, target):
    """The first CLASSES intents: up to TRAIN_PER_CLASS training and TEST_PER_CLASS test rows of each."""
    target.mkdir()
    train = pd.read_csv(banking77 / "train.csv")
    kept = sorted(train["category"].unique())[:CLASSES]
    for name, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        frame = train if name == "train" else pd.read_csv(banking77 / "test.csv")
        frame[frame["category"].isin(kept)].groupby("category").head(per_class).to_csv(target / f"{name}.csv",
                                                                                        index=False)
    return target


def test_the_recipe_runs_through_register_with_its_keys_in_effect(project_clone, banking77, tmp_path):
    subset = write_banking77_subset(banking77, tmp_path / "banking77-subset")
    tiny = build_tiny_bert_with_minilm_tokenizer(tmp_path / "tiny-bert")
    shrink = [f"data.dir={subset}", f"model.base={tiny}", "train.max_steps=6", "train.eval_steps=3",
              "train.batch_size=16", "distill.max_steps=6", "distill.num_layers=1",  # the tiny BERT has 2 layers
              "export.benchmark_runs=5", "export.benchmark_warmup=1"]
    command = [sys.executable, "-m", "tuneforge.cli", "run", "--config", "configs/banking77.yaml"]
    for assignment in shrink:
        command += ["--set", assignment]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(project_clone))  # one thread: a shared CI box
    env.pop("TUNEFORGE_RUN_ID", None)
    done = subprocess.run(command, cwd=project_clone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def metrics(stage):
        return json.loads((project_clone / f"reports/metrics/{stage}.json").read_text())

    stages = yaml.safe_load((project_clone / "dvc.yaml").read_text())["stages"]
    missing = [stage for stage in stages if not (project_clone / f"reports/metrics/{stage}.json").is_file()]
    assert missing == [], "every stage of dvc.yaml ran and wrote its metrics"

    recipe = yaml.safe_load((project_clone / "configs/banking77.yaml").read_text())
    params = yaml.safe_load((project_clone / "params.yaml").read_text())
    overridden = {assignment.split("=")[0] for assignment in shrink}
    for key, value in flat(recipe).items():
        if key not in overridden:
            assert flat(params)[key] == value, f"{key}: the recipe's value is in params.yaml"
    assert params["data"]["test_file"] == "test.csv" and params["data"]["label_column"] == "category"
    assert metrics("validate")["success"] is True and metrics("validate")["classes"] == CLASSES

    # The published test file is the test split, whole; val comes out of the training file only.
    assert metrics("split")["test_source"] == "given"
    assert metrics("split")["rows"]["test"] == CLASSES * TEST_PER_CLASS == metrics("evaluate")["test_rows"]
    # augment.enabled: false in the recipe: the training split passes through unchanged.
    augment = metrics("augment")
    assert augment["rows_augmented"] == augment["rows_original"] == metrics("split")["rows"]["train"]

    # The recipe's training keys reached the teacher (its meta.json records the config it trained with).
    teacher_meta = json.loads((project_clone / "models/teacher/meta.json").read_text())
    trained = flat({"train": teacher_meta["config"]["train"]})
    for key, value in flat(recipe).items():
        if key.startswith("train.") and key not in overridden:
            assert trained[key] == value, key
    assert trained["train.max_steps"] == 6 and trained["train.eval_steps"] == 3, "the test's --set wins"

    registered = json.loads((project_clone / "reports/register/model_version.json").read_text())
    assert registered["model"] == recipe["registry"]["model_name"] == "banking77"
    assert {"teacher", "student", "onnx_int8", "metrics"} <= set(registered["roles"])
    export = metrics("export")
    assert export["parity_passed"] is True and 0 <= export["accuracy"] <= 1

    # What the benchmark runner reports for a recipe run: CPU and wall time from every stage's meta.json.
    cost = run_all.run_cost(project_clone, None)
    assert set(cost["stages"]) >= {"validate", "split", "augment", "train", "evaluate", "distill", "export"}
    assert cost["cpu"] > 0 and cost["wall"] > 0 and teacher_meta["cpu_time_s"] > 0
    assert run_all.quality(project_clone)["int8"]["accuracy"] == export["accuracy"]


def flat(mapping: dict, prefix: str = "") -> dict:
    """{"train": {"epochs": 5}} -> {"train.epochs": 5}."""
    flattened = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flattened.update(flat(value, f"{prefix}{key}."))
        else:
            flattened[f"{prefix}{key}"] = value
    return flattened
