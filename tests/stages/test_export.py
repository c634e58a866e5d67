"""Stage `export`: the shippable directory, padding handled by the graph, and both parity gates both ways."""

import json
import shutil

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import yaml
from onnx import numpy_helper
from transformers import BertConfig, BertForMaskedLM

from stages import export
from tests.helpers.student import (
    LABELS,
    TINY_MODEL,
    built_project,
    copy_project,
    one_torch_thread,  # noqa: F401 (the fixture pytestmark uses)
    snapshot,
    tiny_export,
)
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.spec import RejectConfig
from tuneforge.export import onnx_export, parity
from tuneforge.inference import onnx_predictor as predict
from tuneforge.inference.outputs import ARGMAX, labels_from_logits
from tuneforge.tasks import get_task
from tuneforge.training.student import load_student

pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return built_project(tmp_path_factory)


@pytest.fixture
def copy(project, tmp_path):
    return copy_project(project, tmp_path)


def corrupt_classifier(path, scale: float) -> None:
    """Scale the classification head's float weight (fp32 graph) or its weight's scale (int8 graph)."""
    model = onnx.load(str(path))
    found = [i for i in model.graph.initializer
             if i.name in ("model.classifier.weight", "model.classifier.weight_Transposed_scale")]
    assert len(found) == 1, "no classifier weight found"
    array = numpy_helper.to_array(found[0])
    found[0].CopyFrom(numpy_helper.from_array((array * scale).astype(np.float32), found[0].name))
    onnx.save(model, str(path))


def test_export_writes_a_shippable_directory(project):
    onnx_dir = project / "models/onnx"
    assert sorted(p.name for p in onnx_dir.iterdir()) == [
        "README.md", "labels.json", "meta.json", "model.int8.onnx", "model.onnx", "tokenizer.json",
        "tokenizer_config.json",
    ]
    labels = json.loads((onnx_dir / "labels.json").read_text())
    assert labels.keys() == {"labels", "decision", "calibration"} and labels["labels"] == LABELS
    assert labels["decision"] == "argmax" and labels["calibration"]["temperature"] > 0
    assert (onnx_dir / "model.int8.onnx").stat().st_size < (onnx_dir / "model.onnx").stat().st_size

    meta = json.loads((onnx_dir / "meta.json").read_text())
    assert meta["metrics"]["parity_passed"] is True  # the registry's promotion flag onnx_int8.parity_passed
    assert meta["metrics"]["fp32_max_abs_diff"] <= 1e-3 and meta["metrics"]["fp32_top1_mismatches"] == 0
    assert meta["source"] == "student" and meta["vocabulary"]["pruned"] is True
    assert meta["inputs_of_graph"] == ["input_ids", "attention_mask", "token_type_ids"]
    # The shipped int8 model's temperature, fitted on val: its test NLL and the one it replaces.
    calibration = meta["calibration"]
    assert calibration["fitted"] == labels["calibration"] and calibration["fitted_on"] == "val"
    assert set(calibration["test_raw"]) == set(calibration["test_calibrated"]) == {"ece", "nll"}
    assert meta["metrics"]["ece"] == calibration["test_raw"]["ece"]
    assert meta["metrics"]["ece_calibrated"] == calibration["test_calibrated"]["ece"]
    assert set(meta["files"]) == {"README.md", "labels.json", "model.int8.onnx", "model.onnx", "tokenizer.json",
                                  "tokenizer_config.json"}

    card = (onnx_dir / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["base_model"] == "tiny-bert (test)" and front["library_name"] == "onnx"
    assert front["pipeline_tag"] == "text-classification"
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {m["type"] for m in metrics} == {"accuracy", "f1"}
    assert front["tuneforge"]["checkpoint_metric"] == {"teacher": "macro_f1", "student": "macro_f1"}
    assert all(len(front["tuneforge"]["data_sha256"][k]) == 64 for k in ("train", "val", "test"))
    assert "dvc repro export" in card and "## Parity" in card
    assert front["tuneforge"]["calibration"] == labels["calibration"]
    assert f"divided by the temperature {labels['calibration']['temperature']:g}, fitted on the val split" in card


def test_speed_report_covers_teacher_onnx_and_student(project):
    speed = json.loads((project / "reports/export/speed.json").read_text())
    assert set(speed["models"]) == {
        "teacher_pytorch_fp32", "teacher_onnx_fp32", "teacher_onnx_int8", "student_onnx_fp32", "student_onnx_int8",
    }
    for row in speed["models"].values():
        assert 0 < row["p50_ms"] <= row["p95_ms"] and row["throughput_rows_per_s"] > 0 and row["size_bytes"] > 0
        assert 0 <= row["accuracy"] <= 1 and row["runs"] == 5
    teacher, student = speed["models"]["teacher_pytorch_fp32"], speed["models"]["student_onnx_int8"]
    assert speed["ratios"]["size_ratio"] == pytest.approx(student["size_bytes"] / teacher["size_bytes"], rel=1e-3)
    assert speed["ratios"]["size_ratio"] < 1 / 6  # a pruned vocabulary is most of the tiny model
    assert set(speed["targets"]) == {"accuracy_retention", "speedup_p50", "size_ratio"}
    agreement = json.loads((project / "reports/export/agreement.json").read_text())
    assert agreement["teacher_onnx_fp32"]["teacher_pytorch_fp32"] == 1.0
    drift = json.loads((project / "reports/export/int8_vs_teacher.json").read_text())
    assert drift["rows"] == {"reference": 45, "current": 45}
    assert (project / "reports/export/int8_vs_fp32.html").stat().st_size > 10_000
    assert json.loads((project / "reports/metrics/export.json").read_text())["parity_passed"] is True


def test_a_padded_batch_gives_each_row_the_logits_pytorch_gives_it_alone(project):
    # The graph was traced from a padded batch; here the short texts carry 20+ padding positions.
    classifier, _ = load_student(project / "models/student")
    texts = ["atm", "refund", "my card was swallowed by the atm and the pin is not working since today again"]
    fp32 = predict.load(project / "models/onnx", variant="fp32")
    batch = predict.encode(fp32, texts)
    assert batch["attention_mask"].min() == 0, "the batch must be padded"
    padded = fp32.session.run(None, batch)[0]
    with torch.no_grad():
        alone = np.concatenate([
            classifier.model(**dict(classifier.tokenizer([text], return_tensors="pt"))).numpy() for text in texts
        ])
    assert np.abs(padded - alone).max() < 1e-4


def test_padded_example_refuses_a_batch_without_padding(project):
    classifier, _ = load_student(project / "models/student")
    names = onnx_export.input_names(classifier.tokenizer)
    example = onnx_export.padded_example(classifier.tokenizer, names, 32)
    assert example[names.index("attention_mask")].min() == 0
    with pytest.raises(StageError, match="no padding"):
        onnx_export.padded_example(classifier.tokenizer, names, 3)  # truncation leaves both at 3 tokens


# ---- gate functions, both directions ----

TASK = get_task("sequence-classification")


def predicted(logits: np.ndarray) -> list[str]:
    return labels_from_logits(TASK.outputs, logits, LABELS)


def int8_gate(fp32: np.ndarray, int8: np.ndarray, frame: pd.DataFrame, *, max_f1_drop: float) -> dict:
    return parity.int8_gate(
        fp32, int8, frame, predicted, TASK.score, metric=TASK.parity_metric, max_f1_drop=max_f1_drop, worst_rows=5
    )


def gate_frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"text {i}" for i in range(rows)], "label": [LABELS[i % 3] for i in range(rows)],
                         "source_row": range(2, rows + 2)})


def test_fp32_gate_passes_within_the_limit_and_fails_beyond_it():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(30, 3)).astype(np.float32)
    frame = gate_frame(30)
    passed = parity.fp32_gate(reference, reference + 5e-4, frame, predicted, max_abs_diff=1e-3, worst_rows=3)
    assert passed["passed"] and passed["max_abs_diff"] == pytest.approx(5e-4, rel=1e-3)

    shifted = reference.copy()
    shifted[7, 0] += 0.01
    with pytest.raises(StageError) as caught:
        parity.fp32_gate(reference, shifted, frame, predicted, max_abs_diff=1e-3, worst_rows=3)
    assert "max |logit difference| 0.01" in caught.value.message
    assert caught.value.detail.splitlines()[1].startswith("9 ")  # source row of test row 7, listed first


def test_fp32_gate_fails_on_a_changed_label_even_within_the_limit():
    reference = np.array([[1.0, 1.0002, 0.0], [2.0, 0.0, 0.0]], dtype=np.float32)
    flipped = np.array([[1.0003, 1.0002, 0.0], [2.0, 0.0, 0.0]], dtype=np.float32)
    with pytest.raises(StageError, match="1 row\\(s\\) with a different predicted label"):
        parity.fp32_gate(reference, flipped, gate_frame(2), predicted, max_abs_diff=1e-3, worst_rows=3)


def test_int8_gate_passes_a_small_drop_and_fails_a_large_one():
    frame = gate_frame(100)
    truth = np.array([LABELS.index(label) for label in frame["label"]])
    fp32 = np.eye(3, dtype=np.float32)[truth] * 5
    assert int8_gate(fp32, fp32 + 0.01, frame, max_f1_drop=1.0)["passed"]

    worse = fp32.copy()
    worse[:10] = np.roll(worse[:10], 1, axis=1)  # 10 rows now wrong: macro-F1 drops about 10 points
    with pytest.raises(StageError) as caught:
        int8_gate(fp32, worse, frame, max_f1_drop=1.0)
    assert "int8 macro_f1" in caught.value.message and "limit export.max_f1_drop 1" in caught.value.message
    listed = [int(line.split()[0]) for line in caught.value.detail.splitlines()[1:]]
    assert len(listed) == 5 and all(2 <= row < 12 for row in listed)  # the newly wrong rows come first
    assert int8_gate(fp32, worse, frame, max_f1_drop=20.0)["passed"]


# ---- the stage, with deliberately broken exports ----

def test_a_corrupted_fp32_graph_fails_the_stage_and_leaves_previous_outputs(copy, monkeypatch):
    real_export = onnx_export.export_fp32

    def broken_export(module, tokenizer, path, **kwargs):
        real_export(module, tokenizer, path, **kwargs)
        corrupt_classifier(path, 1.01)

    before = snapshot(copy / "models/onnx", copy / "reports/export", copy / "reports/metrics")
    monkeypatch.setattr(onnx_export, "export_fp32", broken_export)
    with pytest.raises(StageError) as caught:
        export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy))
    assert caught.value.message.startswith("parity gate failed: fp32 ONNX vs PyTorch on 45 test rows")
    assert caught.value.detail.splitlines()[0].split() == ["row", "label", "max_abs_diff", "pytorch", "onnx", "text"]
    assert len(caught.value.detail.splitlines()) == 1 + 10
    assert snapshot(copy / "models/onnx", copy / "reports/export", copy / "reports/metrics") == before
    assert not list(copy.glob("models/.onnx.tmp-*")) and not list(copy.glob("reports/.export.tmp-*"))


def test_a_broken_int8_graph_fails_the_stage(copy, monkeypatch):
    real_quantize = onnx_export.quantize_int8

    def broken_quantize(source, target, **kwargs):
        real_quantize(source, target, **kwargs)
        corrupt_classifier(target, -1.0)  # flips the head: the int8 model now predicts badly

    monkeypatch.setattr(onnx_export, "quantize_int8", broken_quantize)
    shutil.rmtree(copy / "models/onnx")
    with pytest.raises(StageError, match="parity gate failed: int8 macro_f1"):
        export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy))
    assert not (copy / "models/onnx").exists()


def test_export_of_the_teacher_is_gated_too(copy):
    produced = export.run(
        tiny_export(source="teacher", max_abs_diff=1e-4), model_cfg=TINY_MODEL, workspace=Workspace(copy)
    )
    meta = json.loads((copy / "models/onnx/meta.json").read_text())
    assert meta["source"] == "teacher" and meta["vocabulary"]["pruned"] is False
    assert produced.metrics["parity_passed"] and produced.metrics["fp32_max_abs_diff"] < 1e-4
    speed = json.loads((copy / "reports/export/speed.json").read_text())
    assert set(speed["models"]) == {"teacher_pytorch_fp32", "teacher_onnx_fp32", "teacher_onnx_int8"}


# ---- bad input ----

def test_a_model_class_the_exporter_cannot_handle_is_named():
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=64)
    with pytest.raises(StageError, match="sequence classifiers .* only, not BertForMaskedLM"):
        onnx_export.check_exportable(BertForMaskedLM(config), "models/student")


def test_an_exporter_failure_is_one_line_naming_the_class(copy, monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::fancy' to ONNX opset version 17 is not supported.\nmore")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    with pytest.raises(StageError) as caught:
        export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy))
    assert caught.value.message == (
        f"{copy / 'models/student'}: cannot export BertForSequenceClassification (bert) to ONNX: "
        "Exporting the operator 'aten::fancy' to ONNX opset version 17 is not supported."
    )


def test_a_missing_tokenizer_is_refused(copy):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (copy / "models/student" / name).unlink()
    with pytest.raises(StageError, match=r"models/student: no usable tokenizer \(no tokenizer.json\)"):
        export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy))


def test_a_mismatched_tokenizer_is_refused(copy):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(copy / "models/student")
    tokenizer.add_tokens(["chargebackify", "swiftpay"])
    tokenizer.save_pretrained(copy / "models/student")
    # Not the tokenizer the distill stage wrote and recorded in meta.json: refused before it is read.
    refused = r"models/student/\S+: (sha256 \w+\.\.\. does not match|not among the files)"
    with pytest.raises(StageError, match=refused):
        export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy))
    meta = json.loads((copy / "models/student/meta.json").read_text())
    del meta["files"]  # as a folder from before files were recorded: the tokenizer's own check refuses it
    (copy / "models/student/meta.json").write_text(json.dumps(meta))
    with pytest.raises(StageError, match="tokenizer does not match the model: it has 30524 tokens"):
        export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy))


def test_stage_main_prints_the_failure_in_one_line(copy, monkeypatch, capsys):
    monkeypatch.chdir(copy)
    (copy / "params.yaml").write_text("model: {max_seq_length: 32}\nexport: {max_abs_diff: 1e-30}\n")
    (copy / "models/onnx/model.onnx").unlink()
    assert export.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("export: error: parity gate failed: fp32 ONNX vs PyTorch") and "Traceback" not in err
    assert not (copy / "models/onnx/model.onnx").exists()


def test_export_without_calibration_ships_raw_scores(copy):
    export.run(tiny_export(calibrate=False), model_cfg=TINY_MODEL, workspace=Workspace(copy))
    labels = json.loads((copy / "models/onnx/labels.json").read_text())
    assert "calibration" not in labels
    meta = json.loads((copy / "models/onnx/meta.json").read_text())
    assert meta["calibration"]["fitted"] == {} and meta["calibration"]["test_raw"] == meta["calibration"][
        "test_calibrated"]
    assert "val" not in meta["inputs"]
    assert "as trained (no calibration was fitted)" in (copy / "models/onnx/README.md").read_text()


def test_export_with_rejection_ships_the_threshold_and_predict_answers_out_of_scope(copy):
    export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy),
               reject=RejectConfig(enabled=True, keep_in_scope=0.9))
    shipped = json.loads((copy / "models/onnx/labels.json").read_text())["calibration"]
    assert shipped["reject_label"] == "out_of_scope" and 0 < shipped["reject_below"] <= 1
    classifier = predict.load(copy / "models/onnx")
    val = pd.read_parquet(copy / "data/splits/val.parquet")
    # The int8 model's calibrated val scores, batched as the stage ran them: at least 90% are kept.
    val_logits = predict.logits(classifier, list(val["text"]), batch_size=tiny_export().batch_size)
    top = ARGMAX.scores(val_logits, {"temperature": shipped.get("temperature", 1.0)}).max(axis=1)
    assert (top >= shipped["reject_below"]).mean() >= 0.9
    answers = predict.predict(classifier, list(val["text"]), batch_size=tiny_export().batch_size)
    assert [row["label"] == "out_of_scope" for row in answers] == list(top < shipped["reject_below"])
    metrics = json.loads((copy / "reports/metrics/export.json").read_text())
    assert metrics["reject_below"] == shipped["reject_below"] and 0 <= metrics["test_rejected_share"] <= 1
    assert "is answered `out_of_scope`" in (copy / "models/onnx/README.md").read_text()


def test_predict_answers_out_of_scope_below_the_shipped_threshold(copy):
    """The tiny model is sure of every val row, so the fitted threshold rejects none: set one by hand."""
    labels_file = copy / "models/onnx/labels.json"
    labels_file.write_text(json.dumps(json.loads(labels_file.read_text()) | {
        "calibration": {"temperature": 1.0, "reject_below": 0.93, "reject_label": "none_of_these"}}))
    classifier = predict.load(copy / "models/onnx", verify=False)
    texts = list(pd.read_parquet(copy / "data/splits/test.parquet")["text"])
    top = ARGMAX.scores(predict.logits(classifier, texts, batch_size=8), {}).max(axis=1)
    answers = predict.predict(classifier, texts, batch_size=8)
    assert 0 < (top < 0.93).sum() < len(texts), "some rows on each side of the threshold"
    for row, score in zip(answers, top, strict=True):
        assert (row["label"] == "none_of_these") == (score < 0.93)
        assert row["top"][0]["label"] != "none_of_these"  # the classes stay listed



def test_export_with_out_of_scope_rows_fits_on_them_and_reports_what_the_shipped_model_rejects(copy):
    """reject.fit oos: the int8 model's threshold is fitted with the out-of-scope val rows, and the open-set
    metrics on the out-of-scope test rows are those of the shipped files, run through `tuneforge predict`."""
    texts = [f"zebra {word} umbrella {i}" for i, word in enumerate(["violin", "glacier", "pepper", "orbit"] * 8)]
    oos = pd.DataFrame({"text": texts, "label": "", "source_row": range(2, len(texts) + 2)})
    oos.iloc[:12].to_parquet(copy / "data/splits/oos_val.parquet", index=False)
    oos.iloc[12:].reset_index(drop=True).to_parquet(copy / "data/splits/oos_test.parquet", index=False)
    export.run(tiny_export(), model_cfg=TINY_MODEL, workspace=Workspace(copy),
               reject=RejectConfig(enabled=True, fit="oos"))
    metrics = json.loads((copy / "reports/metrics/export.json").read_text())
    classifier = predict.load(copy / "models/onnx")
    batch = tiny_export().batch_size
    test = pd.read_parquet(copy / "data/splits/test.parquet")
    answered = [row["label"] for row in predict.predict(classifier, list(test["text"]), batch_size=batch)]
    oos_answered = [row["label"] for row in predict.predict(classifier, texts[12:], batch_size=batch)]
    caught = sum(answer == "out_of_scope" for answer in oos_answered)
    assert metrics["oos_rows"] == 20 and metrics["oos_recall"] == pytest.approx(caught / 20)
    truth = [*test["label"], *["out_of_scope"] * 20]
    assert metrics["accuracy_with_oos"] == pytest.approx(np.mean(np.array(truth) == np.array(answered + oos_answered)))
    assert "out-of-scope test rows it rejects" in (copy / "models/onnx/README.md").read_text()
    assert metrics["test_rejected_share"] == pytest.approx(np.mean([a == "out_of_scope" for a in answered]))
