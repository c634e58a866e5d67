"""The fine-tuning flow: every stage of dvc.yaml as a Prefect task, each reproduced through DVC.

The stage list and its order come from dvc.yaml (a stage added there appears here with no code
change), and each task runs `dvc repro --single-item STAGE`, so outputs, dvc.lock and skipping are
DVC's: after a flow run `dvc status` is clean, and dvc.lock is what `dvc repro` would have written.
"""

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from stages.errors import StageError
from stages.io import check_data_files
from stages.layout import PARAMS_FILE, metrics_file
from stages.overrides import apply_to_params_file

STAGE_RETRIES = 2


class StageFailed(RuntimeError):
    """A stage's command failed; the message is the stage and its own one-line error, not a traceback.

    `refused_input` is true when the stage itself said `<stage>: error: ...` (bad data or params):
    retrying cannot help. Anything else (a crash, a killed process, a DVC lock) may pass on retry.
    """

    def __init__(self, stage: str, error_line: str, refused_input: bool):
        super().__init__(f"stage '{stage}' failed: {error_line}")
        self.stage, self.error_line, self.refused_input = stage, error_line, refused_input


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    ran: bool
    metrics: dict


def stages_in_dependency_order(repo: Path) -> list[str]:
    """dvc.yaml's stages, dependencies first; ties keep the order dvc.yaml declares them in."""
    import networkx
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        declared = [stage.name for stage in dvc_repo.index.stages]
        graph = networkx.relabel_nodes(dvc_repo.index.graph, lambda stage: stage.name).reverse()
    graph.add_nodes_from(declared)
    return list(networkx.lexicographical_topological_sort(graph, key=declared.index))


def _stage_environment(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    # DVC runs `python -m stages.X`: the interpreter running this flow has tuneforge installed.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["TUNEFORGE_ENTRYPOINT"] = "prefect"
    env["TUNEFORGE_RUN_ID"] = str(flow_run.get_id() or uuid.uuid4().hex)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def last_error_line(output: str) -> str:
    """The stage's own `name: error: ...` line if it printed one, else the last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in (": error: ", "ERROR"):  # the stage's own line first, then DVC's
        for line in lines:
            if marker in line:
                return line
    return lines[-1] if lines else "(no output)"


def _is_transient(task, task_run, state) -> bool:
    """Retry a stage that crashed or was killed; never one that refused its input."""
    try:
        state.result()
    except StageFailed as failure:
        return not failure.refused_input
    except Exception:  # noqa: BLE001 - anything else (a lost worker, a killed process) may pass on retry
        return True
    return False


def _read_metrics(repo: Path, stage: str) -> dict:
    path = repo / metrics_file(stage)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _stage_markdown(stage: str, ran: bool, metrics: dict, repo: Path) -> str:
    headline = {k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool)}
    rows = "\n".join(f"| {key} | {value} |" for key, value in sorted(headline.items()))
    reports = sorted((repo / "reports" / stage).glob("*.html")) if (repo / "reports" / stage).is_dir() else []
    links = "\n".join(f"- [{path.name}]({path.resolve().as_uri()})" for path in reports)
    status = "ran" if ran else "up to date (skipped by DVC)"
    return (
        f"# Stage `{stage}`: {status}\n\n| metric | value |\n| --- | --- |\n{rows}\n\n"
        f"## Reports\n{links or '(none)'}\n"
    )


@task(task_run_name="{stage}", retries=STAGE_RETRIES, retry_delay_seconds=5, retry_condition_fn=_is_transient)
def reproduce_stage(stage: str, repo: str) -> StageOutcome:
    """`dvc repro --single-item STAGE`: DVC decides whether it must run and records it in dvc.lock."""
    logger = get_run_logger()
    repo_path = Path(repo)
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "--single-item", stage],
        cwd=repo_path,
        env=_stage_environment(repo_path),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        line = last_error_line(result.stderr + "\n" + result.stdout)
        raise StageFailed(stage, line, refused_input=line.startswith(f"{stage}: error: "))
    ran = f"Running stage '{stage}'" in result.stdout
    metrics = _read_metrics(repo_path, stage)
    logger.info("%s: %s", stage, "ran" if ran else "up to date")
    create_markdown_artifact(
        _stage_markdown(stage, ran, metrics, repo_path),
        key=f"stage-{stage}".replace("_", "-").lower(),
        description=f"What stage {stage} produced",
    )
    return StageOutcome(stage=stage, ran=ran, metrics=metrics)


@flow(name="finetune", log_prints=True)
def finetune(overrides: list[str] | None = None, data_dir: str | None = None, repo: str = ".") -> dict:
    """Run every dvc.yaml stage in dependency order.

    overrides: spec keys for this run in dotted form (`split.seed=7`), written to params.yaml the way
    `dvc exp run --set-param` does; data_dir: an alternative `data.dir`.
    """
    repo_path = Path(repo).resolve()
    assignments = list(overrides or []) + ([f"data.dir={data_dir}"] if data_dir else [])
    try:
        apply_to_params_file(
            repo_path / PARAMS_FILE, assignments, verify=lambda params: check_data_files(params.data, repo_path)
        )
    except StageError as exc:
        raise ValueError(exc.message) from None
    outcomes = [reproduce_stage(stage, str(repo_path)) for stage in stages_in_dependency_order(repo_path)]
    table = [
        {"stage": outcome.stage, "metric": key, "value": value}
        for outcome in outcomes
        for key, value in sorted(outcome.metrics.items())
        if isinstance(value, int | float | bool)
    ]
    create_table_artifact(table, key="finetune-metrics", description="Final metrics of every stage")
    return {outcome.stage: {"ran": outcome.ran, "metrics": outcome.metrics} for outcome in outcomes}


if __name__ == "__main__":
    finetune()
