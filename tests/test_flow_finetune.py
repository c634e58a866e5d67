"""The finetune flow, really run by Prefect (test harness server) over a real DVC repo of the project.

It must run the dvc.yaml stages in dependency order through DVC, leave `dvc status` clean with the
very dvc.lock a plain `dvc repro` writes, skip what is up to date, stop on a bad input with the stage's
own error line and without retrying it, and publish its artifacts.
"""

import asyncio

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from conftest import dvc, git
from flows.finetune import finetune, last_error_line, stages_in_dependency_order

pytestmark = pytest.mark.e2e
DETERMINISTIC_STAGES = ("validate", "split", "augment", "train", "distill")


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def lock_outputs(repo) -> dict:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    stages = lock["stages"].items()
    return {name: [(out["path"], out["md5"]) for out in stage.get("outs", [])] for name, stage in stages}


def content_outputs(outs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(path, md5) for path, md5 in outs if not path.startswith("reports/metrics/")]


def test_stage_order_follows_the_dvc_graph(fast_project_clone):
    order = stages_in_dependency_order(fast_project_clone)
    assert order[:3] == ["validate", "split", "augment"]
    declared = list(yaml.safe_load((fast_project_clone / "dvc.yaml").read_text())["stages"])
    assert sorted(order) == sorted(declared), "every dvc.yaml stage is a task, none invented"


def test_flow_reproduces_through_dvc_exactly_as_dvc_repro(fast_project_clone, tmp_path_factory):
    first = finetune(repo=str(fast_project_clone))
    assert list(first) == stages_in_dependency_order(fast_project_clone)
    assert all(outcome["ran"] for outcome in first.values())
    assert first["validate"]["metrics"]["success"] is True
    assert "Data and pipelines are up to date" in dvc(fast_project_clone, "status")

    # The same project reproduced by plain `dvc repro` in another clone writes the same output hashes.
    other = tmp_path_factory.mktemp("other") / "clone"
    git(fast_project_clone.parent, "clone", "-q", str(fast_project_clone), str(other))
    dvc(other, "repro")
    flow_lock, repro_lock = lock_outputs(fast_project_clone), lock_outputs(other)
    # evaluate, export (a speed report is timing by nature) and register do not hash the same run to run
    # yet: see the note on issue 6. Every stage up to the student must.
    for stage in DETERMINISTIC_STAGES:
        # Metrics files also carry run measurements (peak memory, samples/s); the data and models must match.
        assert content_outputs(flow_lock[stage]) == content_outputs(repro_lock[stage]), stage

    second = finetune(repo=str(fast_project_clone))
    assert not any(outcome["ran"] for outcome in second.values()), "up-to-date stages are DVC's to skip"


def test_overrides_are_written_to_params_like_dvc_exp_run(fast_project_clone):
    result = finetune(repo=str(fast_project_clone), overrides=["split.seed=11"])
    assert result["split"]["ran"]
    assert yaml.safe_load((fast_project_clone / "params.yaml").read_text())["split"]["seed"] == 11


def test_a_missing_data_folder_is_refused_before_any_stage_runs(fast_project_clone):
    params_before = (fast_project_clone / "params.yaml").read_bytes()
    state = finetune(repo=str(fast_project_clone), data_dir="no_such_folder", return_state=True)
    assert state.is_failed()
    assert "data.dir: folder not found: no_such_folder" in (state.message or "")
    assert (fast_project_clone / "params.yaml").read_bytes() == params_before, "a refused override is not written"


def test_a_stage_that_refuses_its_input_fails_the_flow_with_its_error_line_once(fast_project_clone):
    state = finetune(repo=str(fast_project_clone), overrides=["validate.min_examples_per_class=500"], return_state=True)
    assert state.is_failed()
    message = state.message or ""
    assert "stage 'validate' failed: validate: error: examples/intents.csv:" in message
    assert "expectations failed" in message
    assert "Traceback" not in message

    async def task_runs():
        async with get_client() as client:
            runs = await client.read_task_runs()
            return [run for run in runs if run.flow_run_id == state.state_details.flow_run_id]

    runs = asyncio.run(task_runs())
    assert [run.name for run in runs] == ["validate"], "nothing after the failed stage runs"
    assert runs[0].run_count == 1, "a stage that refused its input is not retried"


def test_artifacts_are_keyed_per_stage_and_for_final_metrics(fast_project_clone):
    finetune(repo=str(fast_project_clone))

    async def latest(key):
        async with get_client() as client:
            return await client.read_latest_artifacts()

    keys = {artifact.key for artifact in asyncio.run(latest(None))}
    assert {"stage-validate", "stage-split", "stage-augment", "finetune-metrics"} <= keys


@pytest.mark.parametrize(
    "output, expected",
    [
        ("noise\nvalidate: error: x.csv: file not found\nERROR: failed to reproduce", "validate: error: x.csv"),
        ("ERROR: failed to reproduce 'x'\n", "ERROR: failed to reproduce 'x'"),
        ("a\nlast line\n", "last line"),
        ("", "(no output)"),
    ],
)
def test_last_error_line_prefers_the_stage_message(output, expected):
    assert last_error_line(output).startswith(expected)
