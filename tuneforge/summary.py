"""What `tuneforge summary` prints after a run: per stage its outputs and headline metrics, the registered
version and its alias, and the commands to try next. It reads only files the stages wrote."""

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from stages.layout import ONNX_DIR, metrics_file, reports_dir

HEADLINE_LIMIT = 6


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


def registry_lines() -> list[str]:
    record = _json(reports_dir("register") / "model_version.json")
    if not record:
        return ["registry: no model version registered yet (the register stage has not run)"]
    name, version, promotion = record["model"], record["version"], record.get("promotion")
    lines = [f"registry: {name}:{version} registered with roles {', '.join(record['roles'])}"]
    if promotion:
        verdict = "promoted to" if promotion["moved"] else "gates failed, not promoted to"
        lines.append(f"registry: {name}:{version} {verdict} {promotion['alias']}")
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
    for line in registry_lines():
        console.print(line, highlight=False)
    record = _json(reports_dir("register") / "model_version.json")
    console.print("reports: reports/<stage>/ (HTML for people, JSON for gates); data: data/; models: models/")
    console.print("next:")
    for command in next_commands(record["model"] if record else None):
        console.print(f"  {command}", highlight=False, markup=False)
