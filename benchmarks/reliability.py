"""Reliability runs: feed the pipeline bad inputs and check that every refusal is clean.

    python benchmarks/reliability.py [--json PATH] [--markdown PATH] [--quick] [--cases NAME,...] [--workdir DIR]

In a temporary git clone of the project (a tiny BERT, a few steps) the whole pipeline first runs once
successfully, so that there are outputs and registry rows to protect. Then each case writes one bad input
(a data file, a params.yaml edit, a model folder, a registry reference), runs one command the way a user
types it (`tuneforge run`, `tuneforge stage X`, `python -m stages.X`, `dvc repro`, `tuneforge registry ...`,
`tuneforge predict ...`) and puts the clone's inputs back. A case is clean when the command exits non-zero,
prints exactly one error line that names the problem (the file, row or key the case expects), shows no
traceback, and leaves every stage output (data/, models/, reports/, dvc.lock), params.yaml as the command
found it, and the registry (every table's rows, every blob) unchanged. The script prints a table and exits
1 if any case is not clean.

`--quick` reproduces only the stages before train (validate, split, augment, ...) and runs QUICK_CASES, a
few cases of every kind that need no trained model: the reduced version CI runs (the full run: ~12 minutes here).
The cases themselves are in benchmarks/reliability_cases.py.
"""

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# Run as a script or loaded by a test: stages/ and the case catalogue beside this file are importable.
sys.path[:0] = [str(REPO_ROOT), str(Path(__file__).resolve().parent)]

from reliability_cases import CASES, QUICK_CASES, Case  # noqa: E402

from tests.helpers.tiny_models import build_tiny_bert_with_minilm_tokenizer  # noqa: E402
from tuneforge.base.outputs import sha256_file  # noqa: E402

TRACEBACK = "Traceback (most recent call last)"
# Our own error lines: `error: ...` (tuneforge, tuneforge registry) or `<stage>: error: ...` (a stage).
ERROR_LINE = re.compile(r"^(?:[a-z_]+: )?error: ")
# DVC adds its own summary line (`ERROR: failed to reproduce 'validate': ...`) after a stage's line.
DVC_ERROR_LINE = re.compile(r"^ERROR: ")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
OUTPUT_DIRS = ("data", "models", "reports")
REGISTRY_DB = Path(".tuneforge/registry.db")
BLOB_ROOT = Path(".tuneforge/artifacts")
# The same fast spec as tests/conftest.py fast_project_clone: the whole pipeline in a few minutes.
FAST_SPEC = [
    "train.max_steps=6", "train.eval_steps=3", "train.batch_size=16", "distill.max_steps=6",
    "export.benchmark_runs=5", "export.benchmark_warmup=1",
    # A random tiny model cannot reach a real quality bar: at 0 the register stage promotes intents:1 to staging.
    # Set, not emptied: an override merges into the shipped {metrics.macro_f1: 0.5}, so `{}` would keep it.
    "promotion.min_metrics={metrics.macro_f1: 0.0}",
]


# ---- running them ---------------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    category: str
    command: str
    expect: list[str]  # what the error line must name
    exit_code: int
    message: str  # the error line (ours; DVC's own summary line only when there is none)
    error_lines: int  # how many of our error lines appeared
    names_problem: bool  # the message names what the case expects
    traceback: bool
    changed: list[str] = field(default_factory=list)  # snapshot keys that changed, against the case's design
    allowed: list[str] = field(default_factory=list)  # changes the refusal makes by design
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (self.exit_code != 0 and self.error_lines == 1 and self.names_problem and not self.traceback
                and not self.changed)

    def to_json(self) -> dict:
        return {**asdict(self), "clean": self.clean, "why_not_clean": why_not(self)}


def environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TUNEFORGE_RUN_ID", None)
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1", GX_ANALYTICS_ENABLED="false",
        TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
        PREFECT_HOME=str(workdir / "prefect-home"), COLUMNS="200",
    )
    return env


def git(clone: Path, *args: str) -> str:
    identity = ["-c", "user.name=tuneforge-reliability", "-c", "user.email=reliability@tuneforge.invalid"]
    return subprocess.run(["git", *identity, *args], cwd=clone, check=True, capture_output=True).stdout.decode()


def project_files() -> list[str]:
    """What a clone would hold: tracked files plus untracked ones git does not ignore."""
    listing = git(REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [name for name in listing.split("\0") if name and (REPO_ROOT / name).is_file()]


def make_clone(workdir: Path) -> Path:
    from tuneforge.params.overrides import apply_to_params_file

    clone = workdir / "clone"
    for name in project_files():
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    base = build_tiny_bert_with_minilm_tokenizer(workdir / "tiny-bert")
    apply_to_params_file(clone / "params.yaml", [f"model.base={base}", *FAST_SPEC])
    git(clone, "init", "-q")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "snapshot with a fast spec")
    return clone


def stages_before_train(clone: Path) -> list[str]:
    """dvc.yaml's stages up to train: all that the model cases' `dvc repro train` would otherwise run first."""
    stages = list(yaml.safe_load((clone / "dvc.yaml").read_text(encoding="utf-8"))["stages"])
    return stages[: stages.index("train")]


def run_pipeline(clone: Path, env: dict[str, str], quick: bool) -> float:
    command = ["dvc", "repro", *stages_before_train(clone)] if quick else ["tuneforge", "run"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"the pipeline did not run cleanly ({' '.join(command)}):\n{done.stdout}\n{done.stderr}")
    git(clone, "add", "-A")  # dvc.lock and the metrics files: the state every case must leave as it found it
    git(clone, "commit", "-q", "-m", "pipeline outputs")
    return time.perf_counter() - started


def snapshot(clone: Path) -> dict[str, str]:
    """sha256 of every output file, dvc.lock, params.yaml and blob; every registry table's row count and hash."""
    state = {}
    for top in OUTPUT_DIRS:
        for path in sorted((clone / top).rglob("*")):
            if path.is_file():
                state[f"file:{path.relative_to(clone)}"] = sha256_file(path)
    for name in ("dvc.lock", "params.yaml"):
        if (clone / name).is_file():
            state[f"file:{name}"] = sha256_file(clone / name)
    blobs = clone / BLOB_ROOT
    for path in sorted(blobs.rglob("*")) if blobs.is_dir() else []:
        if path.is_file():
            state[f"blob:{path.relative_to(blobs)}"] = sha256_file(path)
    if (clone / REGISTRY_DB).is_file():
        with sqlite3.connect(f"file:{clone / REGISTRY_DB}?mode=ro", uri=True) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in sorted(tables):
                rows = db.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
                digest = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
                state[f"db:{table}"] = f"{len(rows)} rows sha256:{digest}"
    return state


def describe_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changes = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if key not in after:
            changes.append(f"{key} removed")
        elif key not in before:
            changes.append(f"{key} added")
        elif key.startswith("db:"):
            changes.append(f"{key} {before[key].split(' sha')[0]} -> {after[key].split(' sha')[0]}")
        else:
            changes.append(f"{key} modified")
    return changes


def restore_inputs(clone: Path) -> None:
    """Put back every tracked file the case changed and remove every file it added (the outputs are ignored)."""
    status = git(clone, "status", "--porcelain", "-z", "--untracked-files=all")
    for entry in filter(None, status.split("\0")):
        code, name = entry[:2], entry[3:]
        path = clone / name
        if code == "??":
            path.unlink()
        else:
            path.write_bytes(subprocess.run(["git", "show", f"HEAD:{name}"], cwd=clone, check=True,
                                            capture_output=True).stdout)
    shutil.rmtree(clone / "bad", ignore_errors=True)
    if git(clone, "status", "--porcelain"):
        raise SystemExit(f"could not restore the clone's inputs:\n{git(clone, 'status', '--porcelain')}")


def error_lines(stderr: str) -> tuple[list[str], list[str]]:
    lines = [ANSI.sub("", line).rstrip() for line in stderr.splitlines()]
    return [line for line in lines if ERROR_LINE.match(line)], [line for line in lines if DVC_ERROR_LINE.match(line)]


def run_case(case: Case, clone: Path, env: dict[str, str]) -> Result:
    if case.prepare:
        case.prepare(clone)
    before = snapshot(clone)  # after prepare: params.yaml as the case wrote it is what the command must leave
    started = time.perf_counter()
    try:
        done = subprocess.run(shlex.split(case.command), cwd=clone, env=env, capture_output=True, text=True,
                              timeout=600)
        exit_code, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code, stdout, stderr = 124, str(exc.stdout or ""), f"(timed out after {exc.timeout} s)"
    seconds = time.perf_counter() - started
    after = snapshot(clone)
    changes = describe_changes(before, after)
    allowed = [change for change in changes if change.split(" ")[0] in case.allowed_changes]
    restore_inputs(clone)
    ours, dvcs = error_lines(stderr)
    message = (ours or dvcs or [""])[0]
    return Result(
        name=case.name, category=case.category, command=case.command, expect=list(case.expect),
        exit_code=exit_code, message=message, error_lines=len(ours),
        names_problem=all(word.lower() in message.lower() for word in case.expect),
        traceback=TRACEBACK in stdout or TRACEBACK in stderr,
        changed=[change for change in changes if change not in allowed], allowed=allowed, seconds=round(seconds, 2),
    )


# ---- reporting ------------------------------------------------------------------------------------------

def changed_cell(result: Result) -> str:
    if result.changed:
        return "; ".join(result.changed[:3]) + (f" (+{len(result.changed) - 3})" if len(result.changed) > 3 else "")
    if result.allowed:
        return f"no ({', '.join(result.allowed)}: the decision is logged by design)"
    return "no"


def print_table(results: list[Result], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in ("case", "command", "exit", "error line", "traceback", "changed", "clean"):
        table.add_column(column, overflow="fold")
    for result in results:
        table.add_row(
            result.name, result.command, str(result.exit_code), result.message,
            "yes" if result.traceback else "no", changed_cell(result),
            "[green]yes[/green]" if result.clean else f"[red]NO[/red] ({why_not(result)})",
        )
    Console(width=max(200, shutil.get_terminal_size().columns)).print(table)


def why_not(result: Result) -> str:
    reasons = []
    if result.exit_code == 0:
        reasons.append("exit 0")
    if result.error_lines != 1:
        reasons.append(f"{result.error_lines} error lines")
    if not result.names_problem:
        reasons.append("does not name the problem")
    if result.traceback:
        reasons.append("traceback")
    if result.changed:
        reasons.append("changed outputs/registry")
    return ", ".join(reasons)


def markdown(results: list[Result], header: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [header, "", "| case | command | exit | error line | traceback | changed | clean |",
             "| --- | --- | ---: | --- | --- | --- | --- |"]
    for r in results:
        lines.append(
            f"| {r.name} | `{cell(r.command)}` | {r.exit_code} | {cell(r.message)} | "
            f"{'yes' if r.traceback else 'no'} | {cell(changed_cell(r))} | "
            f"{'yes' if r.clean else 'NO: ' + why_not(r)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the results as a Markdown table here")
    parser.add_argument("--quick", action="store_true",
                        help="the stages before train only, and QUICK_CASES: the reduced run of CI")
    parser.add_argument("--cases", help="comma-separated case names to run (default: all)")
    parser.add_argument("--workdir", type=Path, help="keep the clone here (default: a temporary folder)")
    args = parser.parse_args(argv)

    cases = [case for case in CASES if not args.quick or case.name in QUICK_CASES]
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {case.name for case in CASES}
        if unknown:
            parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
        cases = [case for case in cases if case.name in wanted]

    started = time.perf_counter()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tuneforge-reliability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        env = environment(workdir)
        clone = make_clone(workdir)
        pipeline_s = run_pipeline(clone, env, args.quick)
        print(f"pipeline ran once cleanly in {pipeline_s:.0f} s; {len(cases)} bad inputs follow", flush=True)
        results = []
        for case in cases:
            results.append(run_case(case, clone, env))
            print(f"  {case.name}: {'clean' if results[-1].clean else 'NOT CLEAN'} "
                  f"({results[-1].seconds:.1f} s)", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    total_s = time.perf_counter() - started
    clean = sum(result.clean for result in results)
    mode = "quick (stages before train)" if args.quick else "full pipeline"
    title = f"Reliability runs: {clean} of {len(results)} bad inputs refused cleanly ({mode}, {total_s:.0f} s)"
    print_table(results, title)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "mode": mode, "total": len(results), "clean": clean, "seconds": round(total_s, 1),
            "pipeline_seconds": round(pipeline_s, 1), "cases": [result.to_json() for result in results],
        }, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results, f"## {title}"), encoding="utf-8")
    return 0 if clean == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
