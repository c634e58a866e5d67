"""`tuneforge predict` and tuneforge/inference/onnx_predictor.py: models/onnx run by onnxruntime + tokenizers."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from student_support import (
    LABELS,
    built_project,
    one_torch_thread,  # noqa: F401 (the fixture pytestmark uses)
)
from typer.testing import CliRunner

from conftest import REPO_ROOT
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
        [sys.executable, "-m", "tuneforge.cli", "predict", str(onnx_copy), "hello"],
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

    (onnx_copy / "model.onnx").write_text("not a model")
    assert "model.onnx: not a valid ONNX model" in cli_error(onnx_copy, "x", "--fp32")

    (onnx_copy / "labels.json").write_text(json.dumps({"labels": ["card", "refund"]}))
    assert cli_error(onnx_copy, "x").endswith("the model has 3 outputs but labels.json names 2")

    (onnx_copy / "labels.json").write_text("{broken")
    assert 'not a label file ({"labels": [...]})' in cli_error(onnx_copy, "x")

    (onnx_copy / "labels.json").write_text(json.dumps({"labels": LABELS}))
    (onnx_copy / "tokenizer.json").unlink()
    assert f"{onnx_copy}: no usable tokenizer (no tokenizer.json)" in cli_error(onnx_copy, "x")


def test_a_tokenizer_larger_than_the_model_is_refused(onnx_copy):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(onnx_copy / "tokenizer.json"))
    tokenizer.add_tokens(["chargebackify", "swiftpay"])
    tokenizer.save(str(onnx_copy / "tokenizer.json"))
    with pytest.raises(StageError, match="tokenizer does not match the model: it has 30524 tokens .* below 30522"):
        predict.load(onnx_copy)


def test_texts_file_must_exist_and_be_utf8(tmp_path):
    with pytest.raises(StageError, match="no such file"):
        predict.read_texts(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(StageError, match="not UTF-8 text"):
        predict.read_texts(tmp_path / "latin1.txt")
