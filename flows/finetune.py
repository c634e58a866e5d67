"""The fine-tuning flow: every stage of dvc.yaml as a Prefect task, each reproduced through DVC.

The stage list and its order come from dvc.yaml (a stage added there appears here with no code
change), and each task runs `dvc repro --single-item STAGE`, so outputs, dvc.lock and skipping are
DVC's: after a flow run `dvc status` is clean, and dvc.lock is what `dvc repro` would have written.
DVC's status is asked once up front (in this process): until a stage actually runs, a stage it reports up
to date is skipped without starting DVC again, which is most of what a cached re-run would cost.

What a run was asked for (its overrides, data_dir, promote_to) reaches every stage as the JSON object in
TUNEFORGE_RUN_PARAMETERS, with the flow run's id as TUNEFORGE_RUN_ID: each stage writes both into its
meta.json (`run`), which the registry stores with the artifacts of that run.
"""

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from tuneforge.base.errors import StageError
from tuneforge.base.layout import PARAMS_FILE, metrics_file
from tuneforge.base.secrets import for_records, mask_text
from tuneforge.data.io import check_data_files
from tuneforge.params.overrides import apply_to_params_file
from tuneforge.pipeline.environment import stage_environment
from tuneforge.pipeline.run_lock import checkout_lock

STAGE_RETRIES = 2


class StageFailed(RuntimeError):
    """A stage's command failed; the message is the stage and its own one-line error, not a traceback.

    `refused_input` is true when the stage itself said `<stage>: error: ...` (bad data or params):
    retrying cannot help. Anything else (a crash, a killed process, a DVC lock) may pass on retry.
    """

    def __init__(self, stage: str, error_line: str, refused_input: bool):
        error_line = mask_text(error_line)  # the stages mask their own lines; DVC's quote commands as typed
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


def stale_stages(repo: Path) -> set[str]:
    """The stages `dvc status` reports changed (deps, params, outputs or command) right now.

    DVC names them by address (relative to the working directory, `../x/dvc.yaml:train` outside it); a
    name that maps to no stage makes every stage stale, so that DVC is asked for each one."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        names = {stage.addressing: stage.name for stage in dvc_repo.index.stages}
        reported = set(dvc_repo.status())
    return {names[key] for key in reported} if reported <= set(names) else set(names.values())


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
def reproduce_stage(
    stage: str, repo: str, run_parameters: dict | None = None, up_to_date: bool = False
) -> StageOutcome:
    """`dvc repro --single-item STAGE`: DVC decides whether it must run and records it in dvc.lock.

    `up_to_date`: DVC's status already said so and nothing upstream has run since; DVC is not asked again.
    """
    logger = get_run_logger()
    repo_path = Path(repo)
    ran = False
    if not up_to_date:
        result = subprocess.run(
            [sys.executable, "-m", "dvc", "repro", "--single-item", stage],
            cwd=repo_path,
            env=stage_environment(
                run_id=str(flow_run.get_id() or uuid.uuid4().hex), entrypoint="prefect",
                run_parameters=run_parameters or {},
            ),
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


def run_assignments(overrides: list[str] | None, data_dir: str | None, promote_to: str | None) -> list[str]:
    """The flow's parameters as params.yaml assignments; data_dir and promote_to come last, so they win.

    Their values are JSON-quoted: a folder or alias named `null`, `yes` or `7` stays that string."""
    assignments = list(overrides or [])
    if data_dir:
        assignments.append(f"data.dir={json.dumps(data_dir)}")
    if promote_to is not None:
        assignments.append(f"promotion.promote_to={json.dumps(promote_to)}")
    return assignments


@flow(name="finetune", log_prints=True)
def finetune(
    overrides: list[str] | None = None,
    data_dir: str | None = None,
    promote_to: str | None = None,
    repo: str = ".",
) -> dict:
    """Run every dvc.yaml stage in dependency order.

    overrides: spec keys for this run in dotted form (`split.seed=7`), written to params.yaml the way
    `dvc exp run --set-param` does; data_dir: an alternative `data.dir`; promote_to: the alias the register
    stage moves to the new version when its gates pass (`promotion.promote_to`, checked as a safe alias
    name). Like `dvc exp run -S`, they stay in params.yaml after the run, so `dvc status` is clean.
    """
    repo_path = Path(repo).resolve()
    assignments = run_assignments(overrides, data_dir, promote_to)
    # What the run was asked for, as recorded (meta.json, the registry): an override's URL password masked.
    run_parameters = for_records({"overrides": list(overrides or []), "data_dir": data_dir, "promote_to": promote_to})
    try:
        # The checkout's run lock, from writing params.yaml until the last stage: a `tuneforge run` or another
        # flow run in this checkout is refused meanwhile. The stages DVC starts do not take it.
        with checkout_lock(repo_path, command=f"finetune flow run {flow_run.get_id()}"):
            apply_to_params_file(
                repo_path / PARAMS_FILE, assignments,
                verify=lambda params: check_data_files(params.data, repo_path),
            )
            return _reproduce_all(repo_path, run_parameters)
    except StageError as exc:
        raise ValueError(exc.message) from None


def _reproduce_all(repo_path: Path, run_parameters: dict) -> dict:
    """Every stage in dependency order, each through DVC; the metrics table artifact; the outcomes."""
    order, stale = stages_in_dependency_order(repo_path), stale_stages(repo_path)
    outcomes: list[StageOutcome] = []
    for stage in order:
        # Once a stage has run, its outputs may have changed what later stages depend on: DVC decides again.
        up_to_date = stage not in stale and not any(outcome.ran for outcome in outcomes)
        outcomes.append(reproduce_stage(stage, str(repo_path), run_parameters, up_to_date))
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
