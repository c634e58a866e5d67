"""The thin `main()` every stage shares: load params.yaml, call the stage, turn known failures into one line."""

import argparse
import json
import logging
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from tuneforge.base.errors import StageError, report_failure
from tuneforge.base.layout import PARAMS_FILE
from tuneforge.base.outputs import RUN_ID_ENV, RUN_PARAMETERS_ENV, Produced
from tuneforge.params import Params, load_params
from tuneforge.tasks import get_task, require


def quiet_libraries() -> None:
    """Keep the console for our own messages: libraries' progress chatter and warnings go to debug level."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "evidently", "urllib3", "filelock", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def stage_environment(
    *, run_id: str | None = None, entrypoint: str | None = None, run_parameters: dict | None = None
) -> dict[str, str]:
    """The environment `dvc repro` runs the stages in, for `tuneforge run` and the finetune flow alike.

    DVC runs `python -m stages.X`: PATH starts with the folder of the `python` running tuneforge, which has it
    installed. The run's id (TUNEFORGE_RUN_ID: `run_id`, else one already set, else a new one), and where given,
    the entrypoint and the run's parameters, reach every stage's meta.json and the registry."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if run_id:
        env[RUN_ID_ENV] = run_id
    env.setdefault(RUN_ID_ENV, uuid.uuid4().hex)
    if entrypoint:
        env["TUNEFORGE_ENTRYPOINT"] = entrypoint
    if run_parameters is not None:
        env[RUN_PARAMETERS_ENV] = json.dumps(run_parameters, sort_keys=True)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def stage_main(
    name: str, run_with: Callable[[Params], Produced], argv: Sequence[str] | None = None
) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m stages.{name}", description=f"Run the {name} stage.")
    parser.add_argument("--params", default=str(PARAMS_FILE), help="the pipeline spec (default: params.yaml)")
    args = parser.parse_args(argv)
    quiet_libraries()
    try:
        params = load_params(args.params)
        require(get_task(params.model.task), name)  # a stage the task does not go through refuses it here
        _check_registry(params)  # an unreachable registry fails before any output is replaced
        produced = run_with(params)
        recorded = _record(produced, params)
    except StageError as exc:
        return report_failure(exc, name)
    outputs = ", ".join(str(path) for path in produced.outputs.values())
    print(f"{name}: done -> {outputs}")
    if recorded:
        print(f"{name}: registered {', '.join(f'{ref.name} v{ref.version}' for ref in recorded)}")
    return 0


def _check_registry(params: Params) -> None:
    if params.registry.enabled:
        from registry.connection import opened

        with opened(params.registry):
            pass


def _record(produced: Produced, params: Params) -> list:
    """Every stage registers its outputs with lineage to its inputs, however it was started (DVC, flow, hand)."""
    from registry import record_stage

    return record_stage(produced, config=params.registry)
