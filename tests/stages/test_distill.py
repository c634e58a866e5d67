"""Stage `distill`: layer selection, vocabulary pruning, the loss, teacher logits computed once, the outputs."""

import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from stages import distill
from tests.helpers.student import (
    LABELS,
    TINY_MODEL,
    build_teacher,
    built_project,
    copy_project,
    labelled_frame,
    minilm_tokenizer,
    one_torch_thread,  # noqa: F401 (the fixture pytestmark uses)
    snapshot,
    tiny_distill,
    tiny_train,
    write_data,
)
from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import DistillConfig
from tuneforge.params import parse_params
from tuneforge.training.kd import distillation_loss
from tuneforge.training.student import (
    choose_layers,
    default_layer_count,
    load_student,
    prune_vocabulary,
    spread_layers,
    student_from_config,
    student_from_layers,
    used_token_ids,
    with_id_map,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return built_project(tmp_path_factory)


@pytest.fixture(scope="module")
def tokenizer():
    return minilm_tokenizer()


def random_bert(layers: int = 4, vocab_size: int = 30522) -> BertForSequenceClassification:
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, num_labels=3,
    )
    return BertForSequenceClassification(config).eval()


def logits_of(model, tokenizer, texts):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    return out if isinstance(out, torch.Tensor) else out.logits


# ---- choosing layers ----

@pytest.mark.parametrize(
    "total, keep, expected",
    [(6, 2, [0, 5]), (6, 3, [0, 2, 5]), (12, 4, [0, 4, 7, 11]), (4, 1, [3]), (3, 3, [0, 1, 2])],
)
def test_layers_are_spread_over_the_depth_with_first_and_last(total, keep, expected):
    assert spread_layers(total, keep) == expected


def test_default_is_a_third_of_the_layers_rounded_up():
    assert [default_layer_count(n) for n in (2, 3, 4, 6, 12, 24)] == [1, 1, 2, 2, 4, 8]
    assert choose_layers(6, None, None) == [0, 5]
    assert choose_layers(6, [4, 1], None) == [1, 4]


def test_layer_choices_out_of_range_are_refused():
    with pytest.raises(ConfigError, match=r"distill.layers: \[6\] out of range: the teacher has 6 layers"):
        choose_layers(6, [0, 6], None)
    with pytest.raises(ConfigError, match="distill.num_layers: must be between 1 and the teacher's 6 layers"):
        choose_layers(6, None, 7)
    with pytest.raises(ConfigError, match="distill.layers: keep at least one layer"):
        parse_params({"distill": {"layers": []}})
    with pytest.raises(ConfigError, match="distill.layers: must be distinct layer indices"):
        parse_params({"distill": {"layers": [1, 1]}})


# ---- building the student ----

def test_student_keeps_exactly_the_chosen_layers_and_the_rest_of_the_teacher():
    teacher = random_bert(layers=4)
    student = student_from_layers(teacher, [0, 3])
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    ts, ss = teacher.state_dict(), student.state_dict()
    for new, old in enumerate([0, 3]):
        for name in ("attention.self.query.weight", "output.dense.weight", "output.LayerNorm.bias"):
            assert torch.equal(ss[f"bert.encoder.layer.{new}.{name}"], ts[f"bert.encoder.layer.{old}.{name}"])
    for name in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight", "classifier.weight"):
        assert torch.equal(ss[name], ts[name])


def test_a_student_keeping_every_layer_is_the_teacher(tokenizer):
    teacher = random_bert(layers=3)
    student = student_from_layers(teacher, [0, 1, 2])
    texts = ["my card is stuck", "a transfer to my friend has not arrived yet"]
    assert torch.equal(logits_of(student, tokenizer, texts), logits_of(teacher, tokenizer, texts))


def test_a_student_from_a_smaller_config_copies_what_fits():
    teacher = random_bert(layers=4)
    student = student_from_config(teacher, {"num_hidden_layers": 1, "intermediate_size": 16})
    assert student.config.num_hidden_layers == 1 and student.config.intermediate_size == 16
    ss, ts = student.state_dict(), teacher.state_dict()
    assert torch.equal(ss["bert.embeddings.word_embeddings.weight"], ts["bert.embeddings.word_embeddings.weight"])
    assert torch.equal(ss["bert.encoder.layer.0.attention.self.query.weight"],
                       ts["bert.encoder.layer.0.attention.self.query.weight"])
    assert ss["bert.encoder.layer.0.intermediate.dense.weight"].shape == (16, 32)  # fresh: shapes differ
    with pytest.raises(ConfigError, match="distill.student_config"):
        student_from_config(teacher, {"hidden_size": 30})  # not a multiple of the 4 attention heads


# ---- vocabulary pruning ----

def test_pruned_and_unpruned_students_give_identical_logits_on_in_vocabulary_text(tokenizer):
    model = random_bert(layers=2)
    training_texts = ["my card is stuck at the atm", "where is my refund", "a wire transfer to my payee"]
    keep = used_token_ids(tokenizer(training_texts)["input_ids"], tokenizer.all_special_ids)
    unpruned = student_from_layers(model, [0, 1])
    pruned = student_from_layers(model, [0, 1])
    id_map = prune_vocabulary(pruned, keep, unk_id=tokenizer.unk_token_id)

    assert pruned.get_input_embeddings().num_embeddings == len(keep) < 40
    assert len(id_map) == tokenizer.vocab_size
    in_vocabulary = ["my card is stuck", "where is my wire transfer", "the atm is my payee"]
    expected = logits_of(unpruned, tokenizer, in_vocabulary)
    assert torch.allclose(logits_of(with_id_map(pruned, id_map), tokenizer, in_vocabulary), expected, atol=1e-6)

    # A word the training data never used reads as the unknown token, exactly as if the text said [UNK].
    unseen = logits_of(with_id_map(pruned, id_map), tokenizer, ["my card is haunted"])
    as_unknown = logits_of(unpruned, tokenizer, ["my card is [UNK]"])
    assert torch.allclose(unseen, as_unknown, atol=1e-6)


def test_pruning_needs_the_unknown_token_and_a_matching_tokenizer():
    model = random_bert(layers=1, vocab_size=100)
    with pytest.raises(StageError, match="unknown token id 5 must be kept"):
        prune_vocabulary(model, [0, 1, 2], unk_id=5)
    with pytest.raises(StageError, match="token id 150 is beyond the model's 100 embedding rows"):
        prune_vocabulary(model, [0, 1, 150], unk_id=1)


# ---- the loss ----

def test_distillation_loss_is_alpha_ce_plus_t_squared_kl():
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 5), torch.randn(8, 5)
    labels = torch.randint(0, 5, (8,))
    t = 3.0
    ce = F.cross_entropy(student, labels)
    p_teacher = F.softmax(teacher / t, dim=-1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / t, dim=-1))).sum(-1).mean()
    got = distillation_loss(student, teacher, labels, alpha=0.3, temperature=t)
    assert torch.allclose(got, 0.3 * ce + 0.7 * t**2 * kl, atol=1e-6)
    assert torch.allclose(distillation_loss(student, teacher, labels, alpha=1.0, temperature=t), ce)
    # Matching the teacher exactly leaves only the hard-label term.
    assert torch.allclose(distillation_loss(teacher, teacher, labels, alpha=0.5, temperature=t),
                          0.5 * F.cross_entropy(teacher, labels), atol=1e-6)


# ---- the stage ----

def test_stage_writes_a_student_that_is_smaller_and_keeps_the_teachers_accuracy(project):
    student_dir = project / "models/student"
    assert sorted(p.name for p in student_dir.iterdir()) == [
        "config.json", "meta.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "vocab_map.safetensors",
    ], "safetensors only, never pickled weights"
    meta = json.loads((student_dir / "meta.json").read_text())
    assert meta["student"]["kept_layers"] == [0, 3]  # a third of 4 layers, rounded up, first and last
    assert meta["vocabulary"]["pruned"] and meta["vocabulary"]["kept"] < 200 < meta["vocabulary"]["tokenizer_size"]
    assert meta["parameters"]["student"] < meta["parameters"]["teacher"] / 20
    assert meta["best"]["metric"] == "macro_f1" and meta["best"]["step"] in (10, 20, 30)
    assert set(meta["inputs"]) == {"teacher", "train", "val", "test"}

    metrics = json.loads((project / "reports/metrics/distill.json").read_text())
    assert metrics["teacher_accuracy"] >= 0.9
    assert metrics["student_accuracy"] >= 0.9 * metrics["teacher_accuracy"]
    assert metrics["accuracy_retention"] == pytest.approx(metrics["student_accuracy"] / metrics["teacher_accuracy"])
    retention = json.loads((project / "reports/distill/retention.json").read_text())
    assert retention["test"]["rows"] == 45 and len(retention["test"]["student_predicted"]) == 45
    drift = json.loads((project / "reports/distill/student_vs_teacher.json").read_text())
    assert drift["rows"] == {"reference": 45, "current": 45} and "label" in drift["columns"]
    history = pd.read_csv(project / "reports/distill/history.csv")
    assert list(history["step"]) == [10, 20, 30]

    classifier, id_map = load_student(student_dir)
    assert classifier.labels == LABELS and id_map is not None
    logits = logits_of(classifier.model, classifier.tokenizer, ["my card is stuck at the atm", "refund please"])
    assert [LABELS[i] for i in logits.argmax(1)] == ["card", "refund"]


def test_teacher_logits_are_computed_once_not_per_epoch(tmp_path):
    write_data(tmp_path)
    build_teacher(tmp_path / "models/teacher", labelled_frame(40, 1), steps=5)
    teacher_calls = []

    def count(module, args, output):
        if isinstance(module, BertForSequenceClassification) and module.config.num_hidden_layers == 4:
            teacher_calls.append(1)

    handle = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        # 120 training rows in batches of 16: 8 steps an epoch, so 40 steps are 5 epochs.
        distill.run(
            tiny_distill(max_steps=40, prune_vocab=False), tiny_train(eval_steps=20), model_cfg=TINY_MODEL,
            workspace=Workspace(tmp_path),
        )
    finally:
        handle.remove()
    # Once over train (2 batches of 64) and val (1) before training, then over test for the retention report.
    assert len(teacher_calls) == 2 + 1 + 1
    meta = json.loads((tmp_path / "models/student/meta.json").read_text())
    assert meta["teacher_logits"]["rows"] == 150 and meta["global_step"] == 40
    assert not (tmp_path / "models/student/vocab_map.safetensors").exists()


def test_a_failing_run_leaves_the_previous_outputs_untouched(project, tmp_path):
    copy_project(project, tmp_path)
    before = snapshot(tmp_path / "models/student", tmp_path / "reports/distill")
    with pytest.raises(ConfigError, match="distill.layers"):
        distill.run(tiny_distill(layers=[0, 9]), tiny_train(), model_cfg=TINY_MODEL, workspace=Workspace(tmp_path))
    assert snapshot(tmp_path / "models/student", tmp_path / "reports/distill") == before


def test_missing_teacher_and_unknown_labels_are_one_line_errors(tmp_path):
    write_data(tmp_path)
    with pytest.raises(StageError, match="no such model directory; run the train stage first"):
        distill.run(tiny_distill(), tiny_train(), model_cfg=TINY_MODEL, workspace=Workspace(tmp_path))
    build_teacher(tmp_path / "models/teacher", labelled_frame(40, 1), steps=1)
    frame = pd.read_parquet(tmp_path / "data/splits/test.parquet")
    frame.loc[0, "label"] = "crypto"
    frame.to_parquet(tmp_path / "data/splits/test.parquet", index=False)
    with pytest.raises(StageError, match=r"test.parquet: label\(s\) not in the label set: crypto"):
        distill.run(tiny_distill(), tiny_train(), model_cfg=TINY_MODEL, workspace=Workspace(tmp_path))


def test_stage_main_prints_one_line_and_exits_non_zero(in_tmp_dir, capsys):
    (in_tmp_dir / "params.yaml").write_text("distill: {num_layers: 2}\n")
    write_data(in_tmp_dir)
    assert distill.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("distill: error: models/teacher: no such model directory") and "Traceback" not in err


def test_default_config_is_valid_and_documented():
    cfg = DistillConfig()
    assert cfg.layers is None and cfg.num_layers is None and cfg.prune_vocab and 0 < cfg.alpha < 1
