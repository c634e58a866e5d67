"""CI's reduced version of `make demo`: the same two commands, `tuneforge run` on params.yaml's defaults then
`tuneforge summary`, in a clone of the project, with only the model made tiny and the steps few.

The summary must end the demo with the teacher, student and int8 model side by side (the numbers the stages
wrote), the registered version and what happened to its alias, where the ONNX model and reports are, and
the commands to try next.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def tuneforge(clone, *args: str) -> str:
    # One torch thread (a shared CI box); a wide terminal so rich does not wrap the tables.
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="220", PYTHONPATH=str(clone))
    env.pop("TUNEFORGE_RUN_ID", None)
    done = subprocess.run([sys.executable, "-m", "tuneforge.cli", *args], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"tuneforge {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def cells(summary: str, model: str) -> list[str]:
    line = next(line for line in summary.splitlines() if line.startswith("│ " + model))
    return [cell.strip() for cell in line.split("│")[2:-1]]


def test_demo_commands_run_the_chain_and_end_with_the_summary(fast_project_clone):
    clone = fast_project_clone
    tuneforge(clone, "run")
    summary = tuneforge(clone, "summary")

    def metrics(stage):
        return json.loads((clone / f"reports/metrics/{stage}.json").read_text())

    evaluate, distill, export = metrics("evaluate"), metrics("distill"), metrics("export")
    speed = json.loads((clone / "reports/export/speed.json").read_text())["models"]["teacher_pytorch_fp32"]
    assert f"models on the test split ({evaluate['test_rows']} rows)" in summary
    assert cells(summary, "teacher (PyTorch fp32)") == [
        "models/teacher", f"{evaluate['accuracy']:.4f}", f"{evaluate['macro_f1']:.4f}", f"{speed['size_mib']:.2f}",
        f"{speed['p50_ms']:.3f}",
    ]
    student = cells(summary, "student (PyTorch fp32)")
    assert student[:3] == ["models/student", f"{distill['student_accuracy']:.4f}", f"{distill['student_macro_f1']:.4f}"]
    assert float(student[3]) > 0 and student[4] == "—", "no stage times the PyTorch student"
    assert cells(summary, "student int8 (ONNX, shipped)") == [
        "models/onnx/model.int8.onnx", f"{export['accuracy']:.4f}", f"{export['macro_f1']:.4f}",
        f"{export['size_mib']:.2f}", f"{export['p50_ms']:.3f}",
    ]

    registered = json.loads((clone / "reports/register/model_version.json").read_text())
    name, version, promotion = registered["model"], registered["version"], registered["promotion"]
    assert f"registry: {name}:{version} registered with roles" in summary
    outcome = "promoted to" if promotion["moved"] else "not promoted to"
    assert f"registry: {name}:{version} {outcome} {promotion['alias']}" in summary
    assert "ONNX model: models/onnx/" in summary and (clone / "models/onnx/model.int8.onnx").is_file()
    assert "reports: reports/<stage>/" in summary
    assert 'tuneforge predict models/onnx "my card has not arrived yet"' in summary
    assert f"tuneforge registry show {name}" in summary
