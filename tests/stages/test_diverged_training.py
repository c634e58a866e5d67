"""A training run whose loss becomes NaN or infinite stops at once, in one line, and keeps and registers nothing
(issue #18, item 2). Before, a learning rate of 1e30 trained to the end on a NaN loss, and the garbage model
was registered, evaluated and distilled like any other."""

import json

import pytest
import yaml

from registry import api
from registry.config import RegistryConfig
from stages import distill, train, tune
from tests.helpers.student import TINY_MODEL, built_project, copy_project, snapshot, tiny_distill
from tests.helpers.student import tiny_train as student_train
from tests.helpers.training import build_tiny_bert, tiny_model, tiny_train, write_classification_data
from tests.helpers.tuning import LR_SPACE, load_trials, tune_settings, write_params
from tuneforge.base.layout import Workspace
from tuneforge.training.training_args import NonFiniteLoss

pytestmark = pytest.mark.usefixtures("one_thread")
DIVERGING_LR = 1e30  # finite, so the spec accepts it; the first optimizer steps overflow the weights


def write_spec(root, base, **train_values):
    spec = {
        "model": tiny_model(base).model_dump(),
        "train": tiny_train(**train_values).model_dump(),
        "registry": {"url": f"sqlite:///{root / 'registry.db'}", "artifacts": str(root / "blobs"),
                     "cache": str(root / "cache")},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(spec))
    return RegistryConfig.model_validate(spec["registry"])


def test_a_diverging_train_run_is_one_line_leaves_the_outputs_and_registers_nothing(in_tmp_dir, capsys):
    root = in_tmp_dir
    write_classification_data(root)
    base = build_tiny_bert(root / "tiny-bert")
    registry = write_spec(root, base)
    assert train.main(["--params", "params.yaml"]) == 0
    outputs = [root / "models/teacher", root / "reports/train", root / "reports/metrics"]
    before = snapshot(*outputs)
    versions = {artifact["name"]: artifact["version"] for artifact in api.artifacts(config=registry)}
    assert versions["train.model"] == 1
    capsys.readouterr()

    write_spec(root, base, learning_rate=DIVERGING_LR)
    code = train.main(["--params", "params.yaml"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("train: error:")]
    assert lines == [
        "train: error: the training loss became nan by step 5: training diverged and was stopped, nothing was "
        "written (lower train.learning_rate, or check train.max_grad_norm and train.precision)"
    ], err
    assert snapshot(*outputs) == before
    assert {artifact["name"]: artifact["version"] for artifact in api.artifacts(config=registry)} == versions
    # Resuming the diverged run would only diverge again: its checkpoints are gone, a corrected spec starts fresh.
    assert not (Workspace(root).checkpoints / "teacher").exists()


def test_the_callback_stops_at_an_infinite_val_loss_too():
    from tuneforge.training.training_args import StopOnNonFiniteLoss

    class State:
        global_step = 10

    callback = StopOnNonFiniteLoss("distill")
    callback.on_log(None, State(), None, logs={"loss": 0.7, "eval_loss": 0.9, "learning_rate": 1e-3})
    with pytest.raises(NonFiniteLoss, match=r"^the val loss became inf by step 10: .*lower distill.learning_rate"):
        callback.on_log(None, State(), None, logs={"eval_loss": float("inf")})


def test_a_diverging_distillation_stops_and_leaves_the_previous_student(tmp_path_factory, tmp_path):
    copy_project(built_project(tmp_path_factory), tmp_path)
    workspace = Workspace(tmp_path)
    outputs = (workspace.student, workspace.reports("distill"), workspace.metrics("distill").parent)
    before = snapshot(*outputs)
    with pytest.raises(NonFiniteLoss, match=r"^the training loss became nan by step \d+: .*distill.learning_rate"):
        distill.run(
            tiny_distill(learning_rate=DIVERGING_LR), student_train(), model_cfg=TINY_MODEL, workspace=workspace
        )
    assert snapshot(*outputs) == before
    assert not (workspace.checkpoints / "student").exists()


def test_a_diverging_tune_trial_is_pruned_and_the_search_goes_on(in_tmp_dir):
    root = in_tmp_dir
    write_classification_data(root)
    base = build_tiny_bert(root / "tiny-bert")
    # Trial 0 is the train section's own (diverging) values; trial 1 samples a sane learning rate.
    settings = tune_settings(root, n_trials=2, pruner="none", space=LR_SPACE, budget={"max_steps": 10})
    write_params(root, base, tune=settings, train={"learning_rate": DIVERGING_LR, "metric": "loss"})
    assert tune.main(["--params", "params.yaml"]) == 0
    trials = load_trials(settings["storage"])
    assert [trial.state.name for trial in trials] == ["PRUNED", "COMPLETE"]
    assert trials[0].user_attrs["diverged"].startswith("the training loss became nan by step 5")
    study = json.loads((root / "reports/tune/study.json").read_text())
    assert study["n_pruned"] == 1 and study["best_trial"] == 1
