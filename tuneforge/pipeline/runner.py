"""The thin `main()` every stage shares: load params.yaml, call the stage, turn known failures into one line."""

import argparse
import logging
import os
import warnings
from collections.abc import Callable, Sequence

from tuneforge.base.errors import StageError, report_failure
from tuneforge.base.layout import PARAMS_FILE
from tuneforge.base.outputs import Produced
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
