"""Orchestration overhead: a fully cached finetune flow re-run vs a no-op `dvc repro`, side by side.

    python benchmarks/orchestration_overhead.py [--repeats N] [--repo DIR] [--json PATH] [--quick]

Both run over a pipeline that is already up to date, so neither runs a stage: what is measured is what
orchestration adds. Setup: a temporary git clone of this checkout (tracked and untracked, not ignored files)
with the spec switched to a tiny model (random 2-layer BERT, a few steps) on the example data, reproduced
once by `dvc repro`; or --repo DIR, an up-to-date checkout of your own (e.g. after `make demo`), which is
refused unless `dvc status` is clean and is not modified (a cached re-run writes nothing DVC tracks).

Then, alternately, N times each (median reported): `python -m dvc repro` in a new process, and the finetune
flow called in this process, whose tasks each run `dvc repro --single-item STAGE` and skip. The flow runs
on Prefect's ephemeral API: with no PREFECT_API_URL (this script unsets it) the first flow call starts a
temporary local Prefect server in the background and later calls reuse it, as `python -m flows.finetune`
does; that first call is timed apart. PREFECT_HOME is a temporary folder. --quick (CI): 3 repeats.
--json PATH also writes the figures to PATH.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(Path(__file__).resolve().parent)]
# The tiny spec of the tests' fast_project_clone: the whole pipeline in a couple of minutes on a small CPU.
FAST_SPEC = [
    "train.max_steps=6", "train.eval_steps=3", "train.batch_size=16", "distill.max_steps=6",
    "export.benchmark_runs=5", "export.benchmark_warmup=1", "promotion.promote_to=null",
]
SERVER = "Prefect ephemeral API (a temporary local server started by this process on its first flow call)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each (default 5; --quick: 3)")
    parser.add_argument("--repo", type=Path, help="an up-to-date pipeline checkout to measure instead of a tiny clone")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="CI: 3 repeats")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    if repeats < 1:
        raise SystemExit("orchestration_overhead: error: --repeats must be at least 1")

    with tempfile.TemporaryDirectory(prefix="tuneforge-overhead-") as scratch:
        scratch = Path(scratch)
        quiet_prefect(scratch / "prefect-home")
        started = time.perf_counter()
        if args.repo:
            repo, setup = args.repo.resolve(), f"existing checkout {args.repo}"
        else:
            repo, setup = tiny_pipeline(scratch), "temporary clone, tiny model on examples/, built by dvc repro"
        setup_s = time.perf_counter() - started
        require_up_to_date(repo)
        figures = measure(repo, repeats)
    figures.update({"repeats": repeats, "setup": setup, "setup_s": round(setup_s, 1), "prefect_server": SERVER})
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def quiet_prefect(home: Path) -> None:
    """Prefect state in a temporary home, its ephemeral server, no analytics; set before flows/ imports it."""
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.update(
        PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING",
        DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
    )
    os.environ.pop("TUNEFORGE_RUN_ID", None)
    os.environ.pop("TUNEFORGE_RUN_PARAMETERS", None)


def tiny_pipeline(scratch: Path) -> Path:
    """A git clone of this checkout on the tiny spec, reproduced once so that everything is up to date."""
    from quick_data import tiny_bert

    from tuneforge.params.overrides import apply_to_params_file

    clone = scratch / "clone"
    listing = git(REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for name in filter(None, listing.split("\0")):
        if (REPO_ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, clone / name)
    git(clone, "init", "-q")
    base = tiny_bert(scratch / "tiny-bert")
    apply_to_params_file(clone / "params.yaml", [f"model.base={base}", *FAST_SPEC])
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "tiny spec")
    print("orchestration_overhead: building the tiny pipeline once (dvc repro) ...", flush=True)
    dvc_repro(clone, check_nothing_ran=False)
    return clone


def measure(repo: Path, repeats: int) -> dict:
    from flows.finetune import finetune, stages_in_dependency_order

    stages = stages_in_dependency_order(repo)
    started = time.perf_counter()
    flow_rerun(finetune, repo)  # starts the ephemeral server: timed, but not one of the repeats
    first_call = time.perf_counter() - started
    dvc_times, flow_times = [], []
    for _ in range(repeats):  # alternated, so that a change in the machine's load hits both alike
        dvc_times.append(timed(lambda: dvc_repro(repo)))
        flow_times.append(timed(lambda: flow_rerun(finetune, repo)))
    flow, dvc = statistics.median(flow_times), statistics.median(dvc_times)
    return {
        "flow_rerun_s": {"median": round(flow, 3), "runs": [round(t, 3) for t in flow_times]},
        "dvc_repro_noop_s": {"median": round(dvc, 3), "runs": [round(t, 3) for t in dvc_times]},
        "ratio_flow_over_dvc_repro": round(flow / dvc, 2),
        "flow_first_call_s_with_server_start": round(first_call, 3),
        "stages": len(stages),
    }


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def flow_rerun(finetune, repo: Path) -> None:
    outcomes = finetune(repo=str(repo))
    ran = [stage for stage, outcome in outcomes.items() if outcome["ran"]]
    if ran:
        raise SystemExit(f"orchestration_overhead: error: the flow re-run ran {', '.join(ran)}: not up to date")


def dvc_repro(repo: Path, check_nothing_ran: bool = True) -> None:
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    done = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise SystemExit(f"orchestration_overhead: error: dvc repro failed in {repo}:\n{tail}")
    if check_nothing_ran and "Running stage" in done.stdout:
        raise SystemExit(f"orchestration_overhead: error: dvc repro ran stages in {repo}: it was not up to date")


def require_up_to_date(repo: Path) -> None:
    if not (repo / "dvc.yaml").is_file():
        raise SystemExit(f"orchestration_overhead: error: {repo}: no dvc.yaml (not a pipeline checkout)")
    done = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=repo, capture_output=True, text=True)
    if done.returncode != 0 or "Data and pipelines are up to date" not in done.stdout:
        raise SystemExit(
            f"orchestration_overhead: error: {repo}: `dvc status` is not clean; run `dvc repro` there first"
        )


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=tuneforge-benchmark", "-c", "user.email=benchmark@tuneforge.invalid"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def report(figures: dict) -> None:
    flow, dvc = figures["flow_rerun_s"], figures["dvc_repro_noop_s"]
    print(f"\nOrchestration overhead over an up-to-date pipeline of {figures['stages']} stages "
          f"({figures['setup']}); median of {figures['repeats']} runs each, alternated")
    print(f"Prefect: {figures['prefect_server']}; first flow call, server start included: "
          f"{figures['flow_first_call_s_with_server_start']:.2f} s\n")
    print(f"{'':<34}{'median s':>10}   runs (s)")
    rows = (("no-op `dvc repro` (a new process)", dvc), ("cached flow re-run (this process)", flow))
    for name, row in rows:
        print(f"{name:<34}{row['median']:>10.2f}   " + ", ".join(f"{t:.2f}" for t in row["runs"]))
    print(f"\nratio, flow re-run / no-op dvc repro: {figures['ratio_flow_over_dvc_repro']:.2f}x")


if __name__ == "__main__":
    main()
