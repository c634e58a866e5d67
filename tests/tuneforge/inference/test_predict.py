"""`tuneforge predict` and tuneforge/inference/onnx_predictor.py: models/onnx run by onnxruntime + tokenizers."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.project import REPO_ROOT
from tests.helpers.student import (
    LABELS,
    built_project,
    one_torch_thread,  # noqa: F401 (the fixture pytestmark uses)
)
from tuneforge.base import integrity
from tuneforge.base.errors import StageError
from tuneforge.cli import app
from tuneforge.inference import onnx_predictor as predict

runner = CliRunner()
TEXTS = ["my card is stuck at the atm", "where is my refund please", "a wire transfer to my payee"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")

@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return built_project(tmp_path_factory) / "models/onnx"


@pytest.fixture
def onnx_copy(onnx_dir, tmp_path):
    return shutil.copytree(onnx_dir, tmp_path / "onnx")


def test_predictions_carry_labels_scores_and_a_ranked_top_k(onnx_dir):
    model = predict.load(onnx_dir)
    results = predict.predict(model, TEXTS, top_k=3)
    assert [r["label"] for r in results] == ["card", "refund", "transfer"]
    for result in results:
        scores = [top["score"] for top in result["top"]]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1, abs=1e-4)
        assert result["score"] == scores[0] and {top["label"] for top in result["top"]} == set(LABELS)
    assert predict.predict(model, []) == []


def test_plain_tokenizers_encode_exactly_like_transformers(onnx_dir):
    from transformers import AutoTokenizer

    model = predict.load(onnx_dir, variant="fp32")
    reference = AutoTokenizer.from_pretrained(onnx_dir)
    texts = [*TEXTS, "Ünïcödé   spacing\tand CAPS", "word " * 60]  # the last one is truncated at 32 tokens
    ours = predict.encode(model, texts)
    theirs = reference(texts, padding=True, truncation=True, max_length=32, return_tensors="np")
    for name in model.input_names:
        assert np.array_equal(ours[name], theirs[name]), name
    assert ours["input_ids"].shape == (5, 32)


def test_int8_and_fp32_agree_on_clear_cases(onnx_dir):
    fp32, int8 = predict.load(onnx_dir, variant="fp32"), predict.load(onnx_dir, variant="int8")
    assert np.abs(predict.logits(fp32, TEXTS) - predict.logits(int8, TEXTS)).max() < 0.5
    assert [r["label"] for r in predict.predict(fp32, TEXTS)] == [r["label"] for r in predict.predict(int8, TEXTS)]


def test_cli_prints_labels_with_scores_from_arguments_and_a_file(onnx_dir, tmp_path):
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("where is my refund please\n\n  a wire transfer to my payee  \n", encoding="utf-8")
    result = runner.invoke(app, ["predict", str(onnx_dir), TEXTS[0], "--file", str(texts_file)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["card", "refund", "transfer"]

    result = runner.invoke(app, ["predict", str(onnx_dir), *TEXTS, "--json", "--top-k", "2", "--fp32"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [row["label"] for row in rows] == ["card", "refund", "transfer"] and len(rows[0]["top"]) == 2
    assert all(0 < row["score"] <= 1 for row in rows)


def cli_error(*args) -> str:
    result = runner.invoke(app, ["predict", *map(str, args)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_corrupt_onnx_file_is_one_line_in_a_fresh_process(onnx_copy):
    (onnx_copy / "model.int8.onnx").write_bytes((onnx_copy / "model.int8.onnx").read_bytes()[:5000])
    done = subprocess.run(
        [sys.executable, "-m", "tuneforge.cli", "predict", str(onnx_copy), "hello", "--no-verify"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {onnx_copy / 'model.int8.onnx'}: not a valid ONNX model ([ONNXRuntimeError] : 7 : "
        f"INVALID_PROTOBUF : Load model from {onnx_copy / 'model.int8.onnx'} failed:Protobuf parsing failed.)"
    ]


def test_bad_directories_are_one_line_each(onnx_copy, tmp_path):
    assert cli_error(tmp_path / "nowhere", "x") == f"error: {tmp_path / 'nowhere'}: no such model directory"
    assert "nothing to classify" in cli_error(onnx_copy)

    # Hand-made folders (--no-verify): each check after the hashes still refuses in one line.
    (onnx_copy / "model.onnx").write_text("not a model")
    assert "model.onnx: not a valid ONNX model" in cli_error(onnx_copy, "x", "--fp32", "--no-verify")

    (onnx_copy / "labels.json").write_text(json.dumps({"labels": ["card", "refund"]}))
    assert cli_error(onnx_copy, "x", "--no-verify").endswith("the model has 3 outputs but labels.json names 2")

    (onnx_copy / "labels.json").write_text("{broken")
    assert 'not a label file ({"labels": [...]})' in cli_error(onnx_copy, "x", "--no-verify")

    (onnx_copy / "labels.json").write_text(json.dumps({"labels": LABELS}))
    (onnx_copy / "tokenizer.json").unlink()
    assert f"{onnx_copy}: no usable tokenizer (no tokenizer.json)" in cli_error(onnx_copy, "x", "--no-verify")
    assert "labels.json: sha256" in cli_error(onnx_copy, "x")  # rewritten above: not the exported bytes


def test_a_tokenizer_larger_than_the_model_is_refused(onnx_copy):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(onnx_copy / "tokenizer.json"))
    tokenizer.add_tokens(["chargebackify", "swiftpay"])
    tokenizer.save(str(onnx_copy / "tokenizer.json"))
    with pytest.raises(StageError, match=r"tokenizer.json: sha256 \w+\.\.\. does not match"):
        predict.load(onnx_copy)
    with pytest.raises(StageError, match="tokenizer does not match the model: it has 30524 tokens .* below 30522"):
        predict.load(onnx_copy, verify=False)


def test_texts_file_must_exist_and_be_utf8(tmp_path):
    with pytest.raises(StageError, match="no such file"):
        predict.read_texts(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(StageError, match="not UTF-8 text"):
        predict.read_texts(tmp_path / "latin1.txt")


def shift_class_bias(model_path, by: float = 8.0) -> None:
    """Change the model's weights and nothing else: the output bias favours the first label. The graph
    stays a valid model of the same size and shape, so only a hash tells it from the exported one."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    last = next(node for node in model.graph.node if model.graph.output[0].name in node.output)  # Add(x, bias)
    bias = next(t for t in model.graph.initializer if t.name in last.input)
    values = numpy_helper.to_array(bias).copy()
    values[0] += by
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(model, str(model_path))


def test_changed_weights_are_refused_naming_the_file_unless_no_verify(onnx_copy):
    model_path = onnx_copy / "model.int8.onnx"
    before = [r["label"] for r in predict.predict(predict.load(onnx_copy), TEXTS)]
    shift_class_bias(model_path)

    line = cli_error(onnx_copy, *TEXTS)
    assert line.startswith(f"error: {model_path}: sha256 ") and "does not match" in line
    assert f"recorded in {onnx_copy / 'meta.json'}" in line and line.endswith("refusing to load it")
    # The same folder as a hand-made one loads, and answers differently: what the check stands between.
    tampered = predict.predict(predict.load(onnx_copy, verify=False), TEXTS)
    assert [r["label"] for r in tampered] != before and {r["label"] for r in tampered} == {LABELS[0]}
    # The fp32 graph beside it is intact and still loads verified.
    assert [r["label"] for r in predict.predict(predict.load(onnx_copy, variant="fp32"), TEXTS)] == before


def test_folders_without_recorded_hashes_need_no_verify(onnx_copy):
    meta = json.loads((onnx_copy / "meta.json").read_text())
    del meta["files"]["labels.json"]
    (onnx_copy / "meta.json").write_text(json.dumps(meta))
    assert cli_error(onnx_copy, "x") == (
        f"error: {onnx_copy / 'labels.json'}: not among the files {onnx_copy / 'meta.json'} records; "
        "refusing to load it"
    )
    (onnx_copy / "meta.json").unlink()
    assert "--no-verify" in cli_error(onnx_copy, "x")
    result = runner.invoke(app, ["predict", str(onnx_copy), TEXTS[0], "--json", "--no-verify"])
    assert result.exit_code == 0 and json.loads(result.output)["label"] == "card"


def test_verify_files_checks_every_recorded_file(onnx_copy):
    hashes = integrity.recorded_hashes(onnx_copy)
    assert {"model.onnx", "model.int8.onnx", "tokenizer.json", "labels.json", "README.md"} <= set(hashes)
    integrity.verify_files(onnx_copy, hashes)
    (onnx_copy / "README.md").write_text("edited")
    with pytest.raises(StageError, match="README.md: sha256 .* does not match"):
        integrity.verify_files(onnx_copy, hashes)
    integrity.verify_files(onnx_copy, hashes, ["model.int8.onnx", "labels.json"])
    with pytest.raises(StageError, match="outside the folder"):
        integrity.verify_files(onnx_copy, {"../x": "0" * 64})


def test_the_torch_loaders_refuse_a_student_folder_that_differs_from_its_record(onnx_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from tuneforge.training.student import load_student

    student = shutil.copytree(onnx_dir.parent / "student", tmp_path / "student")
    recorded = integrity.recorded_hashes(student)  # the distill stage records its files
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(recorded)
    load_student(student)

    weights = load_file(student / "model.safetensors")
    name = next(key for key in weights if key.endswith("classifier.bias"))
    weights[name] = weights[name] + 1.0  # still valid safetensors, same shapes: another model
    save_file(weights, student / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(StageError, match=r"student/model.safetensors: sha256 \w+\.\.\. does not match"):
        load_student(student)

    shutil.copy2(onnx_dir.parent / "student" / "model.safetensors", student / "model.safetensors")
    (student / "model.safetensors.index.json").write_text("{}")
    with pytest.raises(StageError, match=r"model.safetensors.index.json: not among the files .*meta.json records"):
        load_student(student)
    (student / "model.safetensors.index.json").unlink()
    (student / "special_tokens_map.json").unlink(missing_ok=True)
    (student / "tokenizer_config.json").unlink()
    with pytest.raises(StageError, match=r"student/tokenizer_config.json: no such file"):
        load_student(student)


def test_the_exported_temperature_scales_every_score(onnx_copy):
    model = predict.load(onnx_copy, verify=False)
    assert model.calibration["temperature"] > 0  # the export stage fitted one on val
    labels_file = onnx_copy / "labels.json"
    content = json.loads(labels_file.read_text())
    raw_logits = predict.logits(model, TEXTS)
    for temperature in (1.0, 4.0):
        labels_file.write_text(json.dumps(content | {"calibration": {"temperature": temperature}}))
        results = predict.predict(predict.load(onnx_copy, verify=False), TEXTS, top_k=3)
        expected = np.sort(predict_softmax(raw_logits / temperature), axis=1)[:, ::-1]
        got = np.array([[top["score"] for top in result["top"]] for result in results])
        assert np.allclose(got, expected, atol=2e-6)
        assert [r["label"] for r in results] == ["card", "refund", "transfer"]  # the label never changes


def test_a_bad_temperature_in_labels_json_is_one_line(onnx_copy):
    labels_file = onnx_copy / "labels.json"
    content = json.loads(labels_file.read_text())
    labels_file.write_text(json.dumps(content | {"calibration": {"temperature": -2}}))
    with pytest.raises(StageError) as refused:
        predict.load(onnx_copy, verify=False)
    assert refused.value.message == (
        f"{labels_file}: calibration temperature must be a finite number above 0, got -2"
    )


def predict_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
