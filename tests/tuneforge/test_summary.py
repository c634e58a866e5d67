"""`tuneforge summary`: teacher, student and int8 model side by side, the registry line, paths, next commands.

The stage files are written here with known numbers; the summary must show exactly those numbers.
"""

import json
import shutil
from pathlib import Path

from rich.console import Console

from tests.helpers.project import REPO_ROOT
from tuneforge.summary import model_rows, print_summary


def write(path: str, payload) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload), encoding="utf-8")


def printed() -> str:
    console = Console(record=True, width=200)
    print_summary(console)
    return console.export_text()


def write_finished_run(promotion_moved: bool) -> None:
    shutil.copy(REPO_ROOT / "dvc.yaml", "dvc.yaml")
    write("reports/metrics/evaluate.json", {"accuracy": 0.9512, "macro_f1": 0.9433, "test_rows": 61})
    write("reports/metrics/distill.json", {"student_accuracy": 0.9344, "student_macro_f1": 0.9301,
                                           "teacher_accuracy": 0.9512, "teacher_macro_f1": 0.9433})
    write("reports/metrics/export.json", {"accuracy": 0.9344, "macro_f1": 0.9290, "size_mib": 4.512, "p50_ms": 0.4213})
    write("reports/export/speed.json", {
        "shipped": "student_onnx_int8",
        "models": {"teacher_pytorch_fp32": {"size_mib": 86.71, "p50_ms": 7.034, "accuracy": 0.9512}},
    })
    Path("models/student").mkdir(parents=True)
    Path("models/student/model.safetensors").write_bytes(b"\0" * (3 * 2**20))
    write("reports/register/model_version.json", {
        "model": "intents", "version": 3, "roles": {"teacher": "train.model:3", "onnx_int8": "export.onnx:3"},
        "promotion": {"alias": "staging", "moved": promotion_moved, "gates": [
            {"gate": "min metrics.macro_f1", "passed": promotion_moved},
            {"gate": "int8 parity (onnx_int8.parity_passed)", "passed": True},
        ]},
    })


def test_models_side_by_side_with_the_stages_numbers(in_tmp_dir):
    write_finished_run(promotion_moved=True)
    rows = {row["model"]: row for row in model_rows()}
    assert rows["teacher (PyTorch fp32)"] == {
        "model": "teacher (PyTorch fp32)", "where": "models/teacher", "accuracy": 0.9512, "macro_f1": 0.9433,
        "size_mib": 86.71, "p50_ms": 7.034,
    }
    assert rows["student (PyTorch fp32)"]["size_mib"] == 3.0 and rows["student (PyTorch fp32)"]["p50_ms"] is None
    assert rows["student int8 (ONNX, shipped)"]["p50_ms"] == 0.4213

    text = printed()
    assert "models on the test split (61 rows)" in text
    lines = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
             for line in text.splitlines() if line.startswith("│") and ("PyTorch" in line or "shipped" in line)}
    assert lines["teacher (PyTorch fp32)"] == ["models/teacher", "0.9512", "0.9433", "86.71", "7.034"]
    assert lines["student (PyTorch fp32)"] == ["models/student", "0.9344", "0.9301", "3.00", "—"]
    assert lines["student int8 (ONNX, shipped)"] == ["models/onnx/model.int8.onnx", "0.9344", "0.9290", "4.51",
                                                     "0.421"]
    assert "registry: intents:3 promoted to staging (intents@staging)" in text
    assert "ONNX model: models/onnx/" in text and "reports: reports/<stage>/" in text
    assert 'tuneforge predict models/onnx "my card has not arrived yet"' in text
    assert "tuneforge registry show intents" in text


def test_failed_gates_are_named(in_tmp_dir):
    write_finished_run(promotion_moved=False)
    assert "registry: intents:3 not promoted to staging: gates failed: min metrics.macro_f1" in printed()


def test_before_any_run_nothing_is_invented(in_tmp_dir):
    shutil.copy(REPO_ROOT / "dvc.yaml", "dvc.yaml")
    rows = model_rows()
    assert all(row[key] is None for row in rows for key in ("accuracy", "macro_f1", "size_mib", "p50_ms"))
    text = printed()
    assert "(not run yet)" in text
    assert "registry: no model version registered yet" in text
    assert "tuneforge registry show" not in text
