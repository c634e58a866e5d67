"""The task layer: model.task selects one Task; a stage the task does not go through refuses it in one line."""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from stages import augment, evaluate, monitor, split, validate
from tuneforge.base.errors import ConfigError
from tuneforge.base.spec import AugmentConfig, SplitConfig
from tuneforge.params import Params
from tuneforge.tasks import TASKS, get_task, require
from tuneforge.tasks.interface import STAGE_NEEDS
from tuneforge.training.training_args import check_metric


def test_every_task_of_the_spec_has_a_module():
    spec_tasks = set(Params.model_fields["model"].annotation.model_fields["task"].annotation.__args__)
    assert spec_tasks == set(TASKS)
    for name, task in TASKS.items():
        assert task.name == name and task.primary_metric == task.metrics[0]
        assert task.stages <= set(STAGE_NEEDS)
        # A task trains once it goes past the data stages.
        assert {"train", "tune"} <= task.stages or task.stages <= {"validate", "split", "augment"}, name


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


def test_token_classification_goes_through_validate_to_evaluate():
    token = get_task("token-classification")
    for stage in ("validate", "split", "augment", "train", "tune", "evaluate"):
        require(token, stage)
    for stage in ("distill", "export", "register", "monitor"):
        with pytest.raises(ConfigError) as refused:
            require(token, stage)
        assert refused.value.message == (
            f"model.task: token-classification is not supported by the {stage} stage yet (it goes through: augment, "
            "evaluate, split, train, tune, validate)"
        )
    assert (token.primary_metric, token.peft_task_type, token.model_head) == ("f1", "TOKEN_CLS", "token")


@pytest.mark.parametrize("stage", [validate, evaluate])
def test_a_stage_refuses_a_task_it_does_not_support_with_one_line(stage, in_tmp_dir, capsys):
    (in_tmp_dir / "params.yaml").write_text("model: {task: causal-lm}\nregistry: {enabled: false}\n")
    assert stage.main(["--params", "params.yaml"]) == 2
    name = stage.__name__.rsplit(".", 1)[1]
    err = capsys.readouterr().err
    assert err == f"{name}: error: model.task: causal-lm is not supported by the {name} stage yet " \
                  "(it goes through: train, tune)\n"
    assert sorted(p.name for p in in_tmp_dir.iterdir()) == ["params.yaml"]  # nothing written


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_task_sets_everything_the_stages_it_goes_through_ask_for(name):
    task = get_task(name)
    missing = [
        f"{stage}: {field}" for stage in sorted(task.stages) for field in STAGE_NEEDS[stage]
        if getattr(task, field) in (None, (), frozenset())
    ]
    assert not missing, f"{name} goes through stages without what they need: {missing}"
    assert task.parity_metric is None or task.parity_metric in task.metrics


def test_the_split_stage_stratifies_by_the_tasks_key(in_tmp_dir, monkeypatch):
    """A task whose stratum is not the label: split keeps every stratum in every split, by that key."""
    rows = [{"text": f"{'short' if i % 4 else 'a much longer text'} number {i}", "label": ["a", "b"][i % 2]}
            for i in range(80)]
    frame = pd.DataFrame(rows).assign(source_row=range(2, 82))
    Path("data/validated").mkdir(parents=True)
    frame.to_parquet("data/validated/train.parquet", index=False)

    def length_bucket(rows: pd.DataFrame) -> pd.Series:
        return rows["text"].str.startswith("a much").map({True: "long", False: "short"})

    by_length = replace(get_task("sequence-classification"), stratify_key=length_bucket)
    monkeypatch.setattr(split, "task_for", lambda model_cfg, stage: by_length)
    produced = split.run(SplitConfig(val_fraction=0.25, test_fraction=0.25, seed=0))
    assert produced.metrics["classes"] == 2
    for name in ("train", "val", "test"):
        part = pd.read_parquet(f"data/splits/{name}.parquet")
        share = length_bucket(part).eq("long").mean()
        assert share == pytest.approx(0.25, abs=0.02), (name, share)  # 20 of 80 rows are long


def test_a_task_without_augmentation_refuses_augment_enabled_and_passes_rows_through(in_tmp_dir, monkeypatch):
    rows = pd.DataFrame({"text": [f"text {i}" for i in range(6)], "label": ["a", "b"] * 3, "source_row": range(2, 8)})
    Path("data/splits").mkdir(parents=True)
    rows.to_parquet("data/splits/train.parquet", index=False)
    unaugmented = replace(get_task("sequence-classification"), augment=None)
    monkeypatch.setattr(augment, "task_for", lambda model_cfg, stage: unaugmented)
    with pytest.raises(ConfigError, match=r"^augment.enabled: model.task sequence-classification has no augmentation"):
        augment.run(AugmentConfig(variants_per_row=3))
    assert not Path("data/augmented").exists()
    augment.run(AugmentConfig(enabled=False))
    out = pd.read_parquet("data/augmented/train.parquet")
    assert list(out["text"]) == list(rows["text"]) and set(out["method"]) == {"original"}


def test_the_monitor_refuses_a_signal_the_task_has_not(monkeypatch):
    params = Params.model_validate(
        {"registry": {"enabled": False}, "monitor": {"signals": ["descriptors"], "min_drifted_signals": 1}}
    )
    silent = replace(get_task("sequence-classification"), drift_signals=frozenset())
    monkeypatch.setattr(monitor, "task_for", lambda model_cfg, stage: silent)
    with pytest.raises(ConfigError, match=r"^monitor.signals: descriptors does not apply to model.task "):
        monitor.check(params, "nowhere", register=False)
