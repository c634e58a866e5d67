"""What `tuneforge summary` prints after a run (the end of `make demo`): per stage its outputs and headline
metrics; teacher, student and int8 model side by side (test accuracy, macro-F1, size, batch-1 latency); the
registered version and its alias; where the reports and the ONNX model are; the commands to try next.
It reads only files the stages wrote."""

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from tuneforge.base.layout import ONNX_DIR, STUDENT_DIR, TEACHER_DIR, metrics_file, reports_dir

HEADLINE_LIMIT = 6
MIB = 2**20
NOT_KNOWN = "—"


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _headline(metrics: dict | None) -> str:
    if not metrics:
        return "(not run yet)"
    scalars = [
        (key, value) for key, value in metrics.items()
        if isinstance(value, int | float | str | bool) and not key.endswith("sha256")
    ]
    shown = ", ".join(f"{k}={round(v, 4) if isinstance(v, float) else v}" for k, v in scalars[:HEADLINE_LIMIT])
    return shown + (" ..." if len(scalars) > HEADLINE_LIMIT else "")


def stages_table(dvc_file: Path = Path("dvc.yaml")) -> Table:
    stages = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["stages"]
    table = Table("stage", "outputs", "headline metrics", title="tuneforge pipeline")
    for name, stage in stages.items():
        outs = [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])]
        table.add_row(name, "\n".join(outs), _headline(_json(metrics_file(name))))
    return table


def _weights_mib(directory: Path) -> float | None:
    files = list(directory.glob("*.safetensors"))
    return sum(path.stat().st_size for path in files) / MIB if files else None


def model_rows() -> list[dict]:
    """Teacher (PyTorch), student (PyTorch) and the shipped int8 model, each with its test-split figures.

    Test accuracy and macro-F1 come from the evaluate, distill and export metrics; size and batch-1 p50
    latency from the export stage's speed report (size of the weights on disk where it has none). A figure
    no stage measured is None.
    """
    evaluate = _json(metrics_file("evaluate")) or {}
    distill = _json(metrics_file("distill")) or {}
    export = _json(metrics_file("export")) or {}
    speed = _json(reports_dir("export") / "speed.json") or {}
    teacher_speed = speed.get("models", {}).get("teacher_pytorch_fp32", {})
    shipped = speed.get("shipped", "student_onnx_int8")
    return [
        {
            "model": "teacher (PyTorch fp32)", "where": str(TEACHER_DIR),
            "accuracy": evaluate.get("accuracy", distill.get("teacher_accuracy")),
            "macro_f1": evaluate.get("macro_f1", distill.get("teacher_macro_f1")),
            "size_mib": teacher_speed.get("size_mib", _weights_mib(TEACHER_DIR)), "p50_ms": teacher_speed.get("p50_ms"),
        },
        {
            "model": "student (PyTorch fp32)", "where": str(STUDENT_DIR),
            "accuracy": distill.get("student_accuracy"), "macro_f1": distill.get("student_macro_f1"),
            "size_mib": _weights_mib(STUDENT_DIR), "p50_ms": None,
        },
        {
            "model": f"{shipped.split('_')[0]} int8 (ONNX, shipped)", "where": f"{ONNX_DIR}/model.int8.onnx",
            "accuracy": export.get("accuracy"), "macro_f1": export.get("macro_f1"),
            "size_mib": export.get("size_mib"), "p50_ms": export.get("p50_ms"),
        },
    ]


def _shown(value: float | None, digits: int) -> str:
    return NOT_KNOWN if value is None else f"{value:.{digits}f}"


def models_table() -> Table:
    test_rows = (_json(metrics_file("evaluate")) or {}).get("test_rows")
    title = "models on the test split" + (f" ({test_rows} rows)" if test_rows else "")
    table = Table("model", "where", "accuracy", "macro-F1", "size MiB", "p50 ms (batch 1)", title=title)
    for row in model_rows():
        table.add_row(row["model"], row["where"], _shown(row["accuracy"], 4), _shown(row["macro_f1"], 4),
                      _shown(row["size_mib"], 2), _shown(row["p50_ms"], 3))
    return table


def registry_lines() -> list[str]:
    record = _json(reports_dir("register") / "model_version.json")
    if not record:
        return ["registry: no model version registered yet (the register stage has not run)"]
    name, version, promotion = record["model"], record["version"], record.get("promotion")
    lines = [f"registry: {name}:{version} registered with roles {', '.join(record['roles'])}"]
    if promotion:
        if promotion["moved"]:
            lines.append(f"registry: {name}:{version} promoted to {promotion['alias']} ({name}@{promotion['alias']})")
        else:
            failed = [gate["gate"] for gate in promotion.get("gates", []) if not gate["passed"]]
            lines.append(f"registry: {name}:{version} not promoted to {promotion['alias']}: gates failed: "
                         + (", ".join(failed) or "see reports/register/model_version.json"))
    return lines


def next_commands(model: str | None) -> list[str]:
    commands = [
        f'tuneforge predict {ONNX_DIR} "my card has not arrived yet"',
        "dvc plots show                      # training history, confusion matrix, reliability",
        "tuneforge run --set split.seed=7    # DVC reruns only what the change affects",
    ]
    if model:
        commands += [f"tuneforge registry show {model}", f"tuneforge registry lineage {model}"]
    return commands + ["tuneforge serve                     # Prefect server, worker and the scheduled deployments"]


def print_summary(console: Console | None = None) -> None:
    console = console or Console()
    console.print(stages_table())
    console.print(models_table())
    for line in registry_lines():
        console.print(line, highlight=False, markup=False)
    record = _json(reports_dir("register") / "model_version.json")
    console.print(f"ONNX model: {ONNX_DIR}/ (model.int8.onnx, model.onnx, tokenizer, labels.json, README.md model "
                  "card)", highlight=False, markup=False)
    console.print("reports: reports/<stage>/ (HTML for people, JSON for gates; speed: reports/export/speed.md); "
                  "metrics: reports/metrics/; data: data/; models: models/", highlight=False, markup=False)
    console.print("next:")
    for command in next_commands(record["model"] if record else None):
        console.print(f"  {command}", highlight=False, markup=False)
