"""The task layer: model.task selects one Task; a stage the task does not go through refuses it in one line."""

import pytest

from stages import evaluate, validate
from tuneforge.base.errors import ConfigError
from tuneforge.params import Params
from tuneforge.tasks import TASKS, get_task, require
from tuneforge.training.training_args import check_metric


def test_every_task_of_the_spec_has_a_module():
    spec_tasks = set(Params.model_fields["model"].annotation.model_fields["task"].annotation.__args__)
    assert spec_tasks == set(TASKS)
    for name, task in TASKS.items():
        assert task.name == name and task.primary_metric == task.metrics[0]
        assert {"train", "tune"} <= task.stages


def test_the_primary_metrics_and_peft_task_types():
    classification, language_model = get_task("sequence-classification"), get_task("causal-lm")
    assert (classification.primary_metric, classification.peft_task_type) == ("accuracy", "SEQ_CLS")
    assert (language_model.primary_metric, language_model.peft_task_type) == ("loss", "CAUSAL_LM")
    assert classification.trains_a_head and not language_model.trains_a_head


def test_a_metric_of_another_task_is_refused_by_its_key():
    with pytest.raises(ConfigError, match=r"^train.metric: perplexity does not apply to model.task "
                                          r"sequence-classification \(use one of: accuracy, macro_f1, loss\)$"):
        check_metric(get_task("sequence-classification"), "perplexity", "train.metric")


def test_require_names_the_task_and_the_stages_it_goes_through():
    require(get_task("sequence-classification"), "validate")
    with pytest.raises(ConfigError) as refused:
        require(get_task("causal-lm"), "evaluate")
    assert refused.value.message == (
        "model.task: causal-lm is not supported by the evaluate stage yet (it goes through: train, tune)"
    )


@pytest.mark.parametrize("stage", [validate, evaluate])
def test_a_stage_refuses_a_task_it_does_not_support_with_one_line(stage, in_tmp_dir, capsys):
    (in_tmp_dir / "params.yaml").write_text("model: {task: causal-lm}\nregistry: {enabled: false}\n")
    assert stage.main(["--params", "params.yaml"]) == 2
    name = stage.__name__.rsplit(".", 1)[1]
    err = capsys.readouterr().err
    assert err == f"{name}: error: model.task: causal-lm is not supported by the {name} stage yet " \
                  "(it goes through: train, tune)\n"
    assert sorted(p.name for p in in_tmp_dir.iterdir()) == ["params.yaml"]  # nothing written
