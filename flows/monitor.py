"""The drift monitor flow: check a batch of new texts against production and retrain on drift.

Tasks: `check-drift` (stages/monitor.py: three Evidently signals against the production version's model
and training rows, report written and registered), then only when the batch drifted:
`prepare-retrain-data` (tuneforge/monitor/retrain.py: the current training file plus the batch's labelled
rows in a new folder, pinned to production's test split, passed through validate and split first) and
`trigger-finetune` (a run of the `finetune` deployment with that folder as its data; it is scheduled, not
awaited: the work pool's worker runs it). No drift, no retrain. A drifted batch without labels is
reported as needing labels; one whose labelled texts are all in the training data already (a batch
checked again before the retrained model replaced production) triggers nothing.

Every run publishes a Markdown artifact keyed `drift-monitor`: the signals, the verdict and what was done.

    python -m flows.monitor [NEW_DATA] [--no-retrain]     # NEW_DATA: default monitor.incoming_dir
"""

import argparse
import contextlib
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.deployments import run_deployment

from stages import split, validate
from tuneforge.base.errors import StageError
from tuneforge.base.layout import EXPECTATIONS_DIR, PARAMS_FILE, Workspace
from tuneforge.params import Params, load_params

FINETUNE_DEPLOYMENT = "finetune/finetune"
ARTIFACT_KEY = "drift-monitor"


class MonitorFailed(RuntimeError):
    """The check or the retrain data was refused; the message is its one line, not a traceback."""


def _in_repo(repo: str, step, *args):
    """Run step(params, *args) inside the repository: the spec, the registry and data paths are relative to it."""
    with contextlib.chdir(Path(repo)):
        try:
            return step(load_params(PARAMS_FILE), *args)
        except StageError as exc:
            raise MonitorFailed(exc.message) from None


@task(task_run_name="check-drift")
def check_drift(new_data: str | None, repo: str) -> dict:
    from stages.monitor import check

    return _in_repo(repo, check, new_data)


@task(task_run_name="prepare-retrain-data")
def prepare_retrain_data(summary: dict, new_data: str, repo: str) -> dict:
    from stages.monitor import retrain_data

    return _in_repo(repo, lambda *args: retrain_data(*args, check_data=check_with_data_stages), summary, new_data)


@task(task_run_name="trigger-finetune", retries=2, retry_delay_seconds=5)
def trigger_finetune(deployment: str, prepared: dict) -> dict:
    """Schedule a run of the finetune deployment on the merged data; returns its id and name."""
    flow_run = run_deployment(
        name=deployment,
        parameters={"data_dir": prepared["data_dir"], "overrides": prepared["overrides"]},
        timeout=0,  # only schedule it: training takes long, and the worker runs it
    )
    return {"id": str(flow_run.id), "name": flow_run.name, "deployment": deployment}


@flow(name="drift-monitor", log_prints=True)
def drift_monitor(
    new_data: str | None = None,
    repo: str = ".",
    retrain: bool = True,
    finetune_deployment: str = FINETUNE_DEPLOYMENT,
) -> dict:
    """Check `new_data` (a file or folder, relative to `repo`; default monitor.incoming_dir) for drift
    against the production model; when it drifted and brings new labelled rows, trigger `finetune_deployment`
    on the current training data plus those rows."""
    logger = get_run_logger()
    summary = check_drift(new_data, repo)
    outcome = {"drift": summary["drift"], "report": summary["report"]["html"], "retrain_data": None,
               "finetune_flow_run": None}
    failure = None
    if not summary["drift"]:
        outcome["action"] = "no drift: nothing to do"
    elif summary["batch"]["labelled_rows"] == 0:
        outcome["action"] = "drift, but the batch has no labels: label its rows and run the monitor on it again"
    elif not retrain:
        outcome["action"] = "drift; retraining is off for this run (retrain=false)"
    else:
        try:
            prepared = prepare_retrain_data(summary, summary["batch"]["path"], repo)
        except MonitorFailed as exc:
            failure = str(exc)
            outcome["action"] = f"drift, but the retrain data was refused: {failure}"
        else:
            outcome["retrain_data"] = prepared
            if prepared["status"] == "nothing new":
                outcome["action"] = "drift, but every labelled text is in the training data already: nothing to add"
            else:
                run = trigger_finetune(finetune_deployment, prepared)
                outcome["finetune_flow_run"] = run
                outcome["action"] = (
                    f"retrain triggered: {finetune_deployment} flow run {run['name']} on {prepared['data_dir']} "
                    f"(+{prepared['rows']['added']} labelled rows)"
                )
    logger.info(outcome["action"])
    create_markdown_artifact(
        markdown(summary, outcome, Path(repo)), key=ARTIFACT_KEY, description="Drift check of a batch of new data"
    )
    if failure:
        raise MonitorFailed(failure)
    return outcome


def markdown(summary: dict, outcome: dict, repo: Path) -> str:
    from stages.monitor import signal_lines, verdict_line

    batch, production, reference = summary["batch"], summary["production"], summary["reference"]
    rows = "\n".join(
        f"| {line.split(': ', 2)[0]} | {line.split(': ', 2)[1]} | {line.split(': ', 2)[2]} |"
        for line in signal_lines(summary)
    )
    registered = summary.get("registered") or {}
    html = repo / summary["report"]["html"]
    return (
        f"# Drift check: `{batch['path']}` vs `{production['ref']}` ({production['alias']})\n\n"
        f"**{verdict_line(summary)}**\n\n{outcome['action']}\n\n"
        f"| signal | verdict | detail |\n| --- | --- | --- |\n{rows}\n\n"
        f"- batch: {batch['rows']:,} texts ({batch['labelled_rows']:,} labelled), id `{batch['id']}`\n"
        f"- reference: {reference['rows']:,} rows of `{production['ref']}` "
        f"({reference['role']}/{reference['file']})\n"
        f"- report: [{html.name}]({html.resolve().as_uri()})"
        + (f", registered as `{registered['report']}` (event {registered['event']})" if registered else "")
        + "\n"
    )


def check_with_data_stages(params: Params, folder: Path, files: dict[str, str], *, shown_as: Path) -> None:
    """Run validate and split on the folder, its files named by `files` ({data key: file name}), in a scratch
    directory; their refusal is one StageError line."""
    data = params.data.model_copy(update={"dir": str(folder), **files})
    with tempfile.TemporaryDirectory(prefix="tuneforge-monitor-") as scratch:
        workspace = Workspace(root=Path(scratch), expectations=EXPECTATIONS_DIR)  # the checkout's suites
        stage = "validate"
        try:
            validate.run(data, params.validate_, model_cfg=params.model, workspace=workspace)
            stage = "split"
            split.run(params.split, model_cfg=params.model, workspace=workspace)
        except StageError as exc:
            message = exc.message.replace(str(folder), str(shown_as))
            raise StageError(f"merged data {shown_as}: the {stage} stage refuses it: {message}") from None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.monitor", description=__doc__.splitlines()[0])
    parser.add_argument("new_data", nargs="?", help="a file or folder of new texts (default: monitor.incoming_dir)")
    parser.add_argument("--no-retrain", action="store_true", help="only check and report")
    args = parser.parse_args(argv)
    drift_monitor(new_data=args.new_data, retrain=not args.no_retrain)


if __name__ == "__main__":
    main()
