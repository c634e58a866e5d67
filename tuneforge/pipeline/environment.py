"""The environment the stages run in under `dvc repro`, for `tuneforge run` and the finetune flow alike.

Kept apart from runner.py: the CLI and the server import it, and they must not load the task layer (torch).
"""

import json
import os
import sys
import uuid
from pathlib import Path

from tuneforge.base.outputs import RUN_ID_ENV, RUN_PARAMETERS_ENV


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

