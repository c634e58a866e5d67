"""Stage `tune` on a tiny model in this process: pruning, outputs, resuming with more trials, use_tuned, disabled.

Real Optuna (RDB storage on SQLite), the real train stage's fit(), no mocks. Trials are 20 steps of a
random 2-layer BERT on 48 rows, so a trial takes about a second. Worker processes: test_tune_workers.py.
"""

import csv
import json
import time

import optuna
import pytest

from tests.helpers.training import tiny_model, tiny_train
from tests.helpers.tuning import (
    load_trials,
    make_project,
    read_yaml,
    run_tune,
    tune_settings,
)
from tuneforge.base.layout import Workspace
from tuneforge.tuning.files import BEST_PARAMS_NAME

pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.usefixtures("one_thread")]
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@pytest.fixture
def project(in_tmp_dir):
    return in_tmp_dir, make_project(in_tmp_dir)


def train_with_tuned(root, base):
    from stages import train

    return train.run(tiny_model(base), tiny_train(use_tuned=True), workspace=Workspace(root))


def read_trials_csv(root) -> list[dict]:
    with open(root / "reports/tune/trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_six_trials_with_median_pruning_prune_the_lagging_ones(project):
    root, base = project
    settings = tune_settings(root)
    produced = run_tune(root, settings, base, metric="loss")

    trials = load_trials(settings["storage"])
    states = [trial.state for trial in trials]
    assert len(trials) == 6 and all(state in FINISHED for state in states)
    pruned = [trial for trial in trials if trial.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "median pruning stopped no trial"
    for trial in pruned:  # stopped at an evaluation before the last step, recorded with the step
        assert trial.user_attrs["pruned_step"] == trial.last_step < 20
    # include_defaults: trial 0 is the train section's own recipe, measured under the same budget.
    assert trials[0].user_attrs["default_recipe"] is True
    assert trials[0].params == {"learning_rate": pytest.approx(3e-3)}

    rows = read_trials_csv(root)
    assert [int(row["number"]) for row in rows] == list(range(6))
    assert sum(row["state"] == "PRUNED" for row in rows) == len(pruned)
    metrics = json.loads((root / "reports/metrics/tune.json").read_text())
    best = min((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.value)
    assert metrics["best_value"] == pytest.approx(best.value) and metrics["best_trial"] == best.number
    assert metrics["n_pruned"] == len(pruned) and metrics["n_complete"] + metrics["n_pruned"] == 6
    assert metrics["default_value"] == pytest.approx(trials[0].value)
    best_params = read_yaml(root / "models/tune" / BEST_PARAMS_NAME)
    assert best_params["enabled"] is True
    assert best_params["train"] == {"learning_rate": pytest.approx(best.params["learning_rate"])}
    plots = (root / "reports/tune/plots.html").read_text()
    for title in ("Optimisation history", "Parameter importances", "Parallel coordinates"):
        assert title in plots
    assert "plotly" in plots and "Not drawn" not in plots
    meta = json.loads((root / "models/tune/meta.json").read_text())
    assert meta["study"]["study"] == metrics["study"] and meta["study"]["storage"] == settings["storage"]
    assert set(produced.outputs) >= {"best_params", "trials", "study", "summary", "metrics"}
    # Each trial's model and checkpoints were temporary.
    assert not any((root / "models/.checkpoints/tune").iterdir())


def test_more_trials_continue_the_same_study(project):
    root, base = project
    settings = tune_settings(root, n_trials=2, pruner="none")
    run_tune(root, settings, base, metric="loss")
    first = [(trial.number, trial.params, trial.value) for trial in load_trials(settings["storage"])]

    run_tune(root, settings | {"n_trials": 3}, base, metric="loss")

    trials = load_trials(settings["storage"])
    assert [(trial.number, trial.params, trial.value) for trial in trials[:2]] == first
    assert len(trials) == 3 and len(read_trials_csv(root)) == 3


def test_use_tuned_trains_with_the_best_trial_s_values(project):
    root, base = project
    settings = tune_settings(
        root, n_trials=2, sampler="grid", include_defaults=False, pruner="none", metric="accuracy",
        space={"learning_rate": {"type": "categorical", "choices": [1e-5, 1e-2]}},
    )
    run_tune(root, settings, base)
    best = read_yaml(root / "models/tune" / BEST_PARAMS_NAME)
    assert best["train"]["learning_rate"] in (1e-5, 1e-2)

    train_with_tuned(root, base)

    meta = json.loads((root / "models/teacher/meta.json").read_text())
    assert meta["config"]["train"]["learning_rate"] == best["train"]["learning_rate"] != tiny_train().learning_rate
    assert meta["tuned"]["study"] == best["study"] and meta["tuned"]["keys"] == ["learning_rate"]
    assert "tuned_params" in meta["inputs"]


def test_disabled_search_writes_a_file_saying_so_and_trains_nothing(project):
    root, base = project
    started = time.monotonic()
    produced = run_tune(root, tune_settings(root, enabled=False), base)
    assert time.monotonic() - started < 5

    best = read_yaml(root / "models/tune" / BEST_PARAMS_NAME)
    assert best["enabled"] is False and best["train"] == {}
    assert json.loads((root / "reports/metrics/tune.json").read_text()) == {"enabled": False}
    assert not (root / "study").exists(), "no study database is opened"
    assert not (root / "reports/tune/plots.html").exists()
    assert produced.inputs == {}

    from tuneforge.base.errors import ConfigError

    with pytest.raises(ConfigError, match="says the search is disabled"):
        train_with_tuned(root, base)
    assert not (root / "models/teacher").exists()


def test_params_yaml_mirrors_the_tune_defaults():
    from tests.helpers.project import REPO_ROOT
    from tuneforge.params import Params, load_params

    shipped = load_params(REPO_ROOT / "params.yaml").model_dump(by_alias=True)
    assert shipped["tune"] == Params().model_dump(by_alias=True)["tune"]
    assert shipped["train"]["use_tuned"] is False

