"""The finetune flow, really run by Prefect (test harness server) over a real DVC repo of the project.

It must run the dvc.yaml stages in dependency order through DVC, leave `dvc status` clean with the
very dvc.lock a plain `dvc repro` writes, skip what is up to date, apply and record its parameters, stop
on a bad input with the stage's own error line and without retrying it, and publish its artifacts.

One clone per module: the whole pipeline runs once by the flow (`first_run`) and, at the same time, once
by a plain `dvc repro` in a second clone of the same commit (`plain_repro`); every other full-pipeline test
reuses that state. Those are marked slow (minutes); the refusals and the stage order take under a minute.
"""

import asyncio
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

from flows.finetune import finetune, last_error_line, run_assignments, stages_in_dependency_order, stale_stages
from tests.helpers.project import dvc, dvc_environment, git
from tuneforge.base.errors import StageError
from tuneforge.base.outputs import write_meta

pytestmark = pytest.mark.e2e
# Keys of the DVC metrics files (reports/metrics/*.json) that measure the machine and the moment rather
# than the inputs: latency, throughput, memory. Everything else in those files must match run to run.
MEASUREMENT_KEY = re.compile(r"(_ms|_per_s|_per_second|rss_mb|speedup_p\d+|throughput_ratio|_time_s|seconds)$")


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def clone(module_fast_project_clone) -> Path:
    return module_fast_project_clone


@dataclass(frozen=True)
class FirstRun:
    result: dict
    lock: dict
    status: str


@pytest.fixture(scope="module")
def plain_repro(clone, tmp_path_factory):
    """(second clone, its `dvc repro` process): started before the flow's run, so that both run at once."""
    other = tmp_path_factory.mktemp("other") / "clone"
    git(clone.parent, "clone", "-q", str(clone), str(other))  # the committed spec, before any flow override
    log = other.parent / "repro.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro"], cwd=other, env=dvc_environment(), stdout=output,
            stderr=subprocess.STDOUT,
        )
    yield other, process, log
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def first_run(clone, prefect_server, plain_repro) -> FirstRun:
    """The whole pipeline, run once by the flow, with the dvc.lock and `dvc status` it left behind."""
    result = finetune(repo=str(clone))
    return FirstRun(result, yaml.safe_load((clone / "dvc.lock").read_text()), dvc(clone, "status"))


def declared_stages(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]


def entry_path(entry) -> str:
    """A dvc.yaml deps/outs/metrics entry is a path or {path: options}."""
    return next(iter(entry)) if isinstance(entry, dict) else entry


def upstream_pairs(stages: dict) -> set[tuple[str, str]]:
    """(producer, consumer) for every dependency of a stage on another stage's output, from dvc.yaml alone."""
    outs = {
        name: [entry_path(e) for e in stage.get("outs", []) + stage.get("metrics", [])]
        for name, stage in stages.items()
    }
    return {
        (producer, consumer)
        for consumer, stage in stages.items()
        for dep in map(entry_path, stage.get("deps", []))
        for producer, paths in outs.items()
        if producer != consumer and any(dep == out or dep.startswith(out + "/") for out in paths)
    }


def metrics_paths(stages: dict) -> set[str]:
    return {entry_path(entry) for stage in stages.values() for entry in stage.get("metrics", [])}


def without_measurements(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if not MEASUREMENT_KEY.search(k)}


def registry_of(clone: Path, monkeypatch):
    """The clone's registry settings (its URLs are relative to the repo root, where stages run)."""
    from tuneforge.params import load_params

    monkeypatch.chdir(clone)
    return load_params(clone / "params.yaml").registry


# ---- in seconds: the graph and the refusals ----

def test_stage_order_follows_the_dvc_graph(clone):
    order = stages_in_dependency_order(clone)
    stages = declared_stages(clone)
    assert sorted(order) == sorted(stages), "every dvc.yaml stage is a task, none invented"
    pairs = upstream_pairs(stages)
    assert ("validate", "split") in pairs, "the dependencies are read from dvc.yaml's deps and outs"
    for producer, consumer in pairs:
        assert order.index(producer) < order.index(consumer), f"{producer} must run before {consumer}"
    # Nothing has run in this clone yet; DVC names stages by their address relative to this process's cwd.
    assert stale_stages(clone) == set(stages)


def test_a_missing_data_folder_is_refused_before_any_stage_runs(clone):
    params_before = (clone / "params.yaml").read_bytes()
    state = finetune(repo=str(clone), data_dir="no_such_folder", return_state=True)
    assert state.is_failed()
    assert "data.dir: folder not found: no_such_folder" in (state.message or "")
    assert (clone / "params.yaml").read_bytes() == params_before, "a refused override is not written"


def test_an_unsafe_alias_to_promote_to_is_refused_before_any_stage_runs(clone):
    params_before = (clone / "params.yaml").read_bytes()
    state = finetune(repo=str(clone), promote_to="../production", return_state=True)
    assert state.is_failed()
    assert "promotion.promote_to: must be 1-64 letters" in (state.message or "")
    assert (clone / "params.yaml").read_bytes() == params_before


def test_a_stage_that_refuses_its_input_fails_the_flow_with_its_error_line_once(clone):
    params = clone / "params.yaml"
    params_before = params.read_bytes()
    try:
        state = finetune(repo=str(clone), overrides=["validate.min_examples_per_class=500"], return_state=True)
    finally:
        params.write_bytes(params_before)  # the override is valid config: it was written, as dvc exp run -S would
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


def test_data_dir_and_promote_to_are_assignments_that_win_and_stay_strings():
    assert run_assignments(["promotion.promote_to=staging", "split.seed=7"], "null", "7") == [
        "promotion.promote_to=staging", "split.seed=7", 'data.dir="null"', 'promotion.promote_to="7"',
    ]
    assert run_assignments(None, None, None) == []


def test_a_declared_run_and_its_parameters_are_written_to_meta_json(tmp_path, monkeypatch):
    parameters = {"overrides": ["split.seed=7"], "data_dir": None, "promote_to": "production"}
    monkeypatch.setenv("TUNEFORGE_RUN_ID", "run-1")
    monkeypatch.setenv("TUNEFORGE_RUN_PARAMETERS", json.dumps(parameters))
    write_meta(tmp_path, stage="split", config={}, inputs={}, metrics={}, started=0.0)
    assert json.loads((tmp_path / "meta.json").read_text())["run"] == {"id": "run-1", "parameters": parameters}

    monkeypatch.setenv("TUNEFORGE_RUN_PARAMETERS", "[1, 2]")
    with pytest.raises(StageError, match="TUNEFORGE_RUN_PARAMETERS: not a JSON object"):
        write_meta(tmp_path, stage="split", config={}, inputs={}, metrics={}, started=0.0)
    monkeypatch.delenv("TUNEFORGE_RUN_ID")
    monkeypatch.delenv("TUNEFORGE_RUN_PARAMETERS")
    write_meta(tmp_path, stage="split", config={}, inputs={}, metrics={}, started=0.0)
    assert "run" not in json.loads((tmp_path / "meta.json").read_text()), "dvc repro by hand declares no run"


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


# ---- the whole pipeline (slow): one flow run, one plain `dvc repro` in another clone ----

@pytest.mark.slow
def test_the_flow_runs_every_stage_through_dvc_and_leaves_it_up_to_date(clone, first_run):
    assert list(first_run.result) == stages_in_dependency_order(clone)
    assert all(outcome["ran"] for outcome in first_run.result.values())
    assert first_run.result["validate"]["metrics"]["success"] is True
    assert "Data and pipelines are up to date" in first_run.status
    assert stale_stages(clone) == set()


@pytest.mark.slow
def test_dvc_lock_is_what_a_plain_dvc_repro_writes_for_every_stage(clone, first_run, plain_repro):
    other, process, log = plain_repro
    assert process.wait(timeout=900) == 0, f"dvc repro failed:\n{log.read_text()[-3000:]}"
    flow_lock = first_run.lock["stages"]
    repro_lock = yaml.safe_load((other / "dvc.lock").read_text())["stages"]
    stages = declared_stages(clone)
    assert set(flow_lock) == set(repro_lock) == set(stages)
    # DVC metrics files (cache: false) also carry measurements of the run; they are compared without them.
    metrics = metrics_paths(stages)
    for name in stages:
        flow, repro = flow_lock[name], repro_lock[name]
        assert (flow["cmd"], flow.get("deps"), flow.get("params")) == \
            (repro["cmd"], repro.get("deps"), repro.get("params")), f"{name}: same inputs"
        hashes = [{(out["path"], out["md5"]) for out in lock.get("outs", []) if out["path"] not in metrics}
                  for lock in (flow, repro)]
        assert hashes[0] == hashes[1], f"{name}: the outputs hash differently from a plain dvc repro"
        for out in flow.get("outs", []):
            if out["path"] in metrics:
                assert without_measurements(clone / out["path"]) == without_measurements(other / out["path"]), \
                    f"{name}: {out['path']}"


@pytest.mark.slow
def test_a_rerun_of_an_up_to_date_pipeline_runs_nothing(clone, first_run):
    second = finetune(repo=str(clone))
    assert list(second) == list(first_run.result)
    assert not any(outcome["ran"] for outcome in second.values()), "up-to-date stages are DVC's to skip"


@pytest.mark.slow
def test_artifacts_are_keyed_per_stage_and_for_final_metrics(clone, first_run):
    async def latest():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    artifacts = {artifact.key: artifact for artifact in asyncio.run(latest())}
    assert {f"stage-{stage}" for stage in first_run.result} | {"finetune-metrics"} <= set(artifacts)
    assert "| accuracy |" in artifacts["stage-evaluate"].data


@pytest.mark.slow
def test_promote_to_and_overrides_apply_to_this_run_and_are_recorded_in_the_registry(clone, first_run, monkeypatch):
    from registry import api

    overrides = ["promotion.max_drift_share=0.9"]
    state = finetune(repo=str(clone), overrides=overrides, promote_to="production", return_state=True)
    result = state.result()
    stages = declared_stages(clone)
    reading_promotion = [name for name in stages if "promotion" in stages[name].get("params", [])]
    assert [name for name, outcome in result.items() if outcome["ran"]] == reading_promotion, \
        "only the stages that read the changed params rerun"
    promotion = yaml.safe_load((clone / "params.yaml").read_text())["promotion"]
    assert promotion["promote_to"] == "production" and promotion["max_drift_share"] == 0.9
    assert "Data and pipelines are up to date" in dvc(clone, "status")

    registry = registry_of(clone, monkeypatch)
    version = result["register"]["metrics"]["version"]
    assert result["register"]["metrics"]["promoted_to"] == "production"
    assert api.show("intents@production", config=registry)["version"] == version

    flow_run_id = str(state.state_details.flow_run_id)
    shown = api.show("register.reports", config=registry)
    assert shown["run"]["id"] == flow_run_id, "the stage's artifacts belong to the flow run in the registry"
    assert shown["metadata"]["run"] == {
        "id": flow_run_id, "parameters": {"overrides": overrides, "data_dir": None, "promote_to": "production"},
    }
