"""Run every benchmark and write benchmarks/RESULTS.md: the machine, the versions, and per figure the
tuneforge value, the reference measured in the same run, their ratio, the target and whether it is met.

    python benchmarks/run_all.py [--recipe-dir DIR] [--recipe-time-log FILE] [--threads 1] [--out PATH]
    python benchmarks/run_all.py --quick [--out PATH]          # CI: every benchmark in seconds

Where each figure comes from (all measured by this run, or read from the named recipe run's files):
- train throughput and peak RSS: benchmarks/train_throughput.py (the train stage vs a bare PyTorch loop);
- int8 student vs PyTorch fp32 teacher (batch-1 p50 latency, size, accuracy retention):
  benchmarks/export_speed.py --from-run on the recipe run's models, so nothing is trained twice;
- flow overhead: benchmarks/orchestration_overhead.py (fully cached flow re-run vs no-op `dvc repro`);
- quality on banking77: the recipe run's reports/metrics/*.json and each stage's meta.json, against
  PUBLISHED_ANCHORS below, the only typed numbers that reach RESULTS.md (labelled as published);
- data stages: benchmarks/data_stages.py (seconds and rows/s; no reference).
- serving: benchmarks/serving.py on the recipe run's int8 student (models/onnx): the HTTP server's throughput
  and latency at concurrency 1, 8, 64, batching on vs off, and the model-only ceiling.
  `--only serving --serving-model DIR` measures only this section and writes it into the existing RESULTS.md
  (its summary rows and its section replaced, everything else kept), with DIR named in the section.
- reliability: benchmarks/reliability.py (the full run; --quick: its CI subset): every bad-input case, its
  command, the words its error line must name, its exit code, whether it was refused cleanly and the line it
  printed; the summary counts the clean cases. `--only reliability` runs it alone and updates its rows and
  section the same way; `--reliability-json PATH` takes an earlier run's --json instead of running it again.
- GoEmotions: benchmarks/goemotions.py --run-dir DIR on a completed run of configs/goemotions.yaml given as
  --goemotions-dir DIR: teacher and int8 student test macro-F1 with one global threshold vs per-label thresholds
  (fitted on val), against the published BERT-base anchor (Demszky et al. 2020, one threshold), and the run's
  CPU-hours. Without --goemotions-dir it is reported as not run (the recipe takes hours: run it with
  `python benchmarks/goemotions.py`, which prints the clone to pass). `--only goemotions --goemotions-dir DIR`
  measures only this section and writes it into the existing RESULTS.md, as --only serving does.
- open-set banking77: benchmarks/open_set.py --report, the runs kept in benchmarks/open_set_banking77.json (each
  (known share, seed) measured by an earlier `python benchmarks/open_set.py`, hours each): the teacher's and the
  int8 student's accuracy and macro-F1 with the open class, against the published ADB and MSP figures (Zhang et
  al. 2021). `--only open_set` writes just this section and its rows.

The recipe run: --recipe-dir names a checkout where `tuneforge run --config configs/banking77.yaml`
completed. Without it, the runner clones this repository (its committed HEAD) into a new temporary folder
and runs the recipe there, pointing data.dir at ../shared/datasets/banking77 beside this repo: about an hour
on 2 CPU cores. The clone is kept and its path printed; pass it as --recipe-dir to reuse it. The recipe's
CPU time comes from the runner's own measurement (.tuneforge/recipe_run.json in the clone), else from a GNU
`time -v` log given as --recipe-time-log, else from the stages' meta.json (cpu_time_s) when they all have it.

--quick (CI) runs each benchmark on a small subset (benchmarks/quick_data.py) with a random 2-layer BERT and
a few steps, and takes its quality figures from export_speed's tiny pipeline: they prove that every section
is produced, not the product's quality. It never writes benchmarks/RESULTS.md unless --out names it.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# GoEmotions' published anchor (Demszky et al. 2020, BERT-base, one threshold) and the issue's goals, as the script
# that measures them states them.
from goemotions import INT8_MAX_DROP as GOEMOTIONS_INT8_MAX_DROP  # noqa: E402
from goemotions import PUBLISHED as GOEMOTIONS_PUBLISHED  # noqa: E402
from goemotions import TEACHER_GOAL_MACRO_F1 as GOEMOTIONS_TEACHER_GOAL  # noqa: E402
from open_set import PUBLISHED as OPEN_SET_PUBLISHED  # noqa: E402
from open_set import STUDENT_GOAL as OPEN_SET_STUDENT_GOAL  # noqa: E402
from recipe_run import RECIPE_RECORD, benchmark_environment, clone_repository, read_json  # noqa: E402
from recipe_run import run_recipe as run_recipe_in  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"
BANKING77 = REPO_ROOT.parent / "shared" / "datasets" / "banking77"
RESULTS = BENCHMARKS / "RESULTS.md"
QUICK_RESULTS = Path(tempfile.gettempdir()) / "tuneforge-RESULTS.quick.md"
RECIPE_CONFIG = "configs/banking77.yaml"
VERSIONED = ("torch", "transformers", "peft", "onnxruntime", "dvc", "prefect")

# Published banking77 test accuracies (%), the fixed points the measured quality is compared with. Not
# measured here. BERT-base: the banking77 paper (Casanueva et al. 2020, "Efficient Intent Detection with
# Dual Sentence Encoders"); DistilBERT, RoBERTa-base, BERT-large: as commonly reported for banking77.
PUBLISHED_ANCHORS = {"BERT-base": 93.1, "DistilBERT": 92.5, "RoBERTa-base": 93.5, "BERT-large": 93.7}
ANCHOR_SOURCE = ("published, not measured here: BERT-base from the banking77 paper (Casanueva et al. 2020); "
                 "DistilBERT, RoBERTa-base, BERT-large as commonly reported for banking77")
# The goals for the recipe: MiniLM teacher accuracy and the int8 student's distance to it.
TEACHER_GOAL_PERCENT = 92.0
INT8_MAX_DROP_POINTS = 1.0

# Where each stage writes its meta.json (wall time, CPU time where recorded), in pipeline order.
STAGE_META = {
    "validate": "data/validated", "split": "data/splits", "augment": "data/augmented", "train": "models/teacher",
    "evaluate": "reports/evaluate", "distill": "models/student", "export": "models/onnx",
    "register": "reports/register",
}


@dataclass
class BenchmarkRun:
    """One benchmark script's execution: its command, exit code, seconds, stdout, and its --json figures."""

    name: str
    script: str
    command: list[str] = field(default_factory=list)
    status: str = "missing"  # ok | failed | missing
    returncode: int | None = None
    seconds: float = 0.0
    stdout: str = ""
    error: str = ""
    figures: dict | None = None
    read_from: str = ""  # the figures came from this file, written by an earlier run, not from running it here

    def not_run(self) -> str:
        return "not run: missing" if self.status == "missing" else f"not run: failed (exit {self.returncode})"


@dataclass
class Target:
    """A target on the ratio (value / reference), the value itself, or the drop (reference - value)."""

    subject: str  # ratio | value | drop
    op: str  # >= | <=
    bound: float
    shown: str

    def met(self, value: float, reference: float) -> bool:
        observed = {"ratio": value / reference, "value": value, "drop": reference - value}[self.subject]
        return observed >= self.bound if self.op == ">=" else observed <= self.bound


@dataclass
class Row:
    figure: str
    value: str
    reference: str
    ratio: str
    target: str
    result: str


def figure_row(
    figure: str, value: float | None, reference: float | None, reference_label: str, digits: int,
    target: Target | None = None, missing: str = "not run",
) -> Row:
    """A summary row; `missing` (why there is no value) fills it when a benchmark did not produce one."""
    if value is None or reference is None:
        return Row(figure, missing, reference_label, "—", target.shown if target else "—", "not run")
    result = ("pass" if target.met(value, reference) else "FAIL") if target else "—"
    return Row(figure, f"{value:.{digits}f}", f"{reference:.{digits}f} ({reference_label})",
               f"{value / reference:.3f}", target.shown if target else "— (reported)", result)


def run_benchmark(name: str, script: str, arguments: list[str], scratch: Path, timeout: float | None,
                  reports_on_exit: tuple[int, ...] = (0,)) -> BenchmarkRun:
    """Run one benchmark script as a subprocess with --json; a failure is recorded, never raised.

    reports_on_exit: the exit codes after which its --json holds the figures (a script may exit 1 to say that
    a target is missed and still have measured it).
    """
    run = BenchmarkRun(name, script)
    path = BENCHMARKS / script
    if not path.is_file():
        print(f"run_all: {script}: not found, reported as not run", flush=True)
        return run
    json_path = scratch / f"{name}.json"
    run.command = [sys.executable, str(path), *arguments, "--json", str(json_path)]
    print(f"run_all: {shown_command(run.command)}", flush=True)
    began = time.perf_counter()
    try:
        done = subprocess.run(run.command, cwd=REPO_ROOT, env=benchmark_environment(), capture_output=True,
                              text=True, timeout=timeout)
        run.returncode, run.stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        run.returncode, run.stdout, stderr = -1, str(exc.stdout or ""), f"timed out after {timeout:.0f} s"
    run.seconds = time.perf_counter() - began
    if run.returncode in reports_on_exit and json_path.is_file():
        run.status, run.figures = "ok", json.loads(json_path.read_text())
    else:
        run.status = "failed"
        run.error = "\n".join(line for line in stderr.splitlines() if line.strip() and "it/s]" not in line)[-2000:]
        print(f"run_all: {script} failed (exit {run.returncode}):\n{run.error}", file=sys.stderr, flush=True)
    return run


def shown_command(command: list[str]) -> str:
    """The command as a reader would type it: `python benchmarks/x.py ...`, temporary paths kept."""
    parts = ["python", *(str(Path(part).relative_to(REPO_ROOT)) if part.startswith(str(BENCHMARKS)) else part
                         for part in command[1:])]
    return shlex.join(parts)


# --- machine and versions -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
              if line.startswith("model name")] if cpuinfo.is_file() else []
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "CPU": models[0] if models else (platform.processor() or platform.machine()),
        "cores": f"{os.cpu_count()} logical, {usable} usable by this process",
        "RAM": f"{ram:.1f} GiB",
        "GPU": gpu_description(),
        "OS": platform.platform(),
    }


def gpu_description() -> str:
    import torch

    if not torch.cuda.is_available():
        return "none (torch.cuda.is_available() is false)"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"{', '.join(names)} (CUDA {torch.version.cuda})"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["tuneforge commit"] = git_description(REPO_ROOT)
    return found


def git_description(directory: Path) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{commit[:12]} ({git('log', '-1', '--format=%cs')}){dirty}"


# --- the recipe run -----------------------------------------------------------------------------------------------


def run_recipe() -> Path:
    """Clone this repository into a new temporary folder and run the banking77 recipe there; keep the clone."""
    if not (BANKING77 / "train.csv").is_file():
        raise SystemExit(f"run_all: error: {BANKING77}: banking77 not found; give --recipe-dir or --quick")
    clone = clone_repository("tuneforge-recipe-")
    print("run_all: the banking77 recipe takes about an hour on 2 CPU cores", flush=True)
    record = run_recipe_in(clone, RECIPE_CONFIG, [f"data.dir={BANKING77.resolve()}"], "run_all")
    if record["returncode"] != 0:
        raise SystemExit(f"run_all: error: the recipe failed (exit {record['returncode']}) in {clone}")
    print(f"run_all: recipe done in {clone}; reuse it with --recipe-dir {clone}", flush=True)
    return clone


def parse_time_log(text: str) -> dict[str, float]:
    """CPU (user + system) and wall seconds from GNU `time -v` output; empty when the log holds none."""
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    wall = re.search(r"Elapsed \(wall clock\) time \([^)]*\): ([\d:.]+)", text)
    found = {}
    if user and system:
        found["cpu_seconds"] = float(user.group(1)) + float(system.group(1))
    if wall:
        seconds = 0.0
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
        found["wall_seconds"] = seconds
    return found


def stage_times(run_dir: Path) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds per stage from each stage's meta.json (CPU only where the stage recorded it)."""
    times = {}
    for stage, directory in STAGE_META.items():
        meta = read_json(run_dir / directory / "meta.json")
        if meta and "wall_time_s" in meta:
            times[stage] = {"wall": meta["wall_time_s"], "cpu": meta.get("cpu_time_s")}
    return times


def run_cost(run_dir: Path, time_log: Path | None) -> dict:
    """The recipe's CPU and wall time, and where each figure comes from."""
    stages = stage_times(run_dir)
    record = read_json(run_dir / RECIPE_RECORD)
    if record:
        return {"cpu": record["cpu_seconds"], "wall": record["wall_seconds"], "stages": stages,
                "source": f"measured by run_all.py around `{record['command']}` ({RECIPE_RECORD})"}
    if time_log:
        logged = parse_time_log(time_log.read_text(encoding="utf-8", errors="replace"))
        if logged:
            return {"cpu": logged.get("cpu_seconds"), "wall": logged.get("wall_seconds"), "stages": stages,
                    "source": f"GNU time log {time_log}"}
    cpu = [times["cpu"] for times in stages.values()]
    return {
        "cpu": sum(cpu) if cpu and None not in cpu else None,
        "wall": sum(times["wall"] for times in stages.values()) if stages else None, "stages": stages,
        "source": "sum of the stages' meta.json (cpu_time_s, wall_time_s)",
    }


def quality(run_dir: Path) -> dict:
    """Test accuracy and macro-F1 of teacher, PyTorch student and int8 model, from a run's own files."""
    evaluate = read_json(run_dir / "reports/metrics/evaluate.json") or {}
    distill = read_json(run_dir / "reports/metrics/distill.json") or {}
    export = read_json(run_dir / "reports/metrics/export.json") or {}
    speed = read_json(run_dir / "reports/export/speed.json") or {}
    teacher_speed = speed.get("models", {}).get("teacher_pytorch_fp32", {})
    # evaluate scores the teacher on the test split; without that stage, export scored the same model on it.
    return {
        "teacher": {"accuracy": evaluate.get("accuracy", teacher_speed.get("accuracy")),
                    "macro_f1": evaluate.get("macro_f1", teacher_speed.get("macro_f1")),
                    "source": "reports/metrics/evaluate.json" if evaluate else "reports/export/speed.json"},
        "student": {"accuracy": distill.get("student_accuracy"), "macro_f1": distill.get("student_macro_f1"),
                    "source": "reports/metrics/distill.json"},
        "int8": {"accuracy": export.get("accuracy"), "macro_f1": export.get("macro_f1"),
                 "source": "reports/metrics/export.json"},
        "test_rows": evaluate.get("test_rows", speed.get("test_rows")),
    }


def run_description(run_dir: Path) -> dict[str, str]:
    """Path, commit, date and the spec's key settings of a pipeline run, for the reader to check."""
    import yaml

    teacher = read_json(run_dir / "models/teacher/meta.json") or {}
    params = yaml.safe_load((run_dir / "params.yaml").read_text()) if (run_dir / "params.yaml").is_file() else {}
    metrics = sorted((run_dir / "reports/metrics").glob("*.json"))
    finished = max((path.stat().st_mtime for path in metrics), default=None)
    described = {
        "path": str(run_dir),
        "commit": (teacher.get("git_commit") or "unknown")[:12] + " (recorded in models/teacher/meta.json)",
        "finished": datetime.datetime.fromtimestamp(finished, datetime.UTC).isoformat(timespec="minutes")
        if finished else "unknown",
    }
    if params:
        train, distill = params.get("train", {}), params.get("distill", {})
        described.update({
            "data.dir": str(params.get("data", {}).get("dir")),
            "model.base": str(params.get("model", {}).get("base")),
            "train": ", ".join(f"{key}={train.get(key)}" for key in ("method", "epochs", "max_steps", "learning_rate")),
            "distill": ", ".join(f"{key}={distill.get(key)}" for key in ("num_layers", "epochs", "max_steps")),
        })
    return described


# --- figures --------------------------------------------------------------------------------------------------


def train_rows(run: BenchmarkRun) -> list[Row]:
    figures = run.figures or {}
    stage, bare = figures.get("stage", {}), figures.get("bare", {})
    return [
        figure_row("Train throughput (samples/s): train stage vs bare PyTorch loop", stage.get("samples_per_second"),
                   bare.get("samples_per_second"), "bare loop", 1, Target("ratio", ">=", 0.95, ">= 0.95"),
                   run.not_run()),
        figure_row("Train peak RSS (MB): train stage vs bare PyTorch loop", stage.get("peak_rss_mb"),
                   bare.get("peak_rss_mb"), "bare loop", 0, Target("ratio", "<=", 1.10, "<= 1.10"), run.not_run()),
    ]


def export_rows(run: BenchmarkRun) -> list[Row]:
    speed = (run.figures or {}).get("speed", {})
    models = speed.get("models", {})
    shipped, teacher = models.get(speed.get("shipped"), {}), models.get("teacher_pytorch_fp32", {})
    return [
        figure_row("Batch-1 p50 latency (ms): int8 student (ONNX) vs PyTorch fp32 teacher", shipped.get("p50_ms"),
                   teacher.get("p50_ms"), "teacher", 3, Target("ratio", "<=", 1 / 8, "<= 0.125 (>= 8x faster)"),
                   run.not_run()),
        figure_row("Size (MiB): int8 student vs PyTorch fp32 teacher", shipped.get("size_mib"),
                   teacher.get("size_mib"), "teacher", 2, Target("ratio", "<=", 1 / 6, "<= 0.167 (1/6)"),
                   run.not_run()),
        figure_row("Test accuracy (%): int8 student vs PyTorch fp32 teacher (retention)",
                   percent(shipped.get("accuracy")), percent(teacher.get("accuracy")), "teacher", 2,
                   Target("ratio", ">=", 0.99, ">= 0.99"), run.not_run()),
    ]


def flow_figures(figures: dict) -> tuple[float | None, float | None, str | None]:
    """(flow re-run seconds, no-op dvc repro seconds, target) from orchestration_overhead.py's JSON.

    Read by key names, so the script can nest or name its figures freely: the flow's is the first number
    whose dotted key names the flow, DVC's the first naming dvc/repro but not the flow; ratios are skipped.
    """
    numbers = list(flatten(figures))
    flow = next((value for key, value in numbers if "flow" in key and not re.search("ratio|overhead", key)), None)
    dvc = next((value for key, value in numbers
                if re.search("dvc|repro", key) and not re.search("flow|ratio|overhead", key)), None)
    target = next((str(value) for key, value in flatten(figures, numbers_only=False) if key.endswith("target")),
                  None)
    return flow, dvc, target


def flatten(node, prefix: str = "", numbers_only: bool = True):
    """(dotted lowercase key, value) for every leaf; numbers only unless told otherwise."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from flatten(value, f"{prefix}{str(key).lower()}.", numbers_only)
    elif not numbers_only or (isinstance(node, int | float) and not isinstance(node, bool)):
        yield prefix.rstrip("."), node


def flow_rows(run: BenchmarkRun) -> list[Row]:
    flow, dvc, target = flow_figures(run.figures or {})
    parsed = parse_target(target)
    row = figure_row("Orchestration (s): fully cached flow re-run vs no-op `dvc repro`", flow, dvc, "dvc repro", 2,
                     parsed, run.not_run() if run.status != "ok" else "no flow/dvc seconds in its JSON")
    if target and not parsed:
        row.target = f"{target} (as stated by the script)"
    return [row]


def parse_target(text: str | None) -> Target | None:
    """'<= 1.5' / '>= 0.95' as a Target on the ratio; anything else is shown as is, not judged."""
    match = re.fullmatch(r"\s*(<=|>=)\s*([\d.]+)\s*x?\s*", text or "")
    return Target("ratio", match.group(1), float(match.group(2)), text.strip()) if match else None


SERVING_FIGURE = "Serving"


def serving_rows(run: BenchmarkRun) -> list[Row]:
    runs = (run.figures or {}).get("runs", [])
    point = {(row["batching"], row["concurrency"]): row for row in runs}
    on, off = point.get((True, 64), {}), point.get((False, 64), {})
    on8, off8 = point.get((True, 8), {}), point.get((False, 8), {})
    ceiling = (run.figures or {}).get("ceiling", {})
    missing = run.not_run()
    return [
        figure_row("Serving throughput (req/s) at concurrency 64: batching on vs off", on.get("requests_per_s"),
                   off.get("requests_per_s"), "batching off", 1, Target("ratio", ">=", 2.0, ">= 2.0"), missing),
        figure_row("Serving p99 latency (ms) at concurrency 8: batching on vs off", on8.get("p99_ms"),
                   off8.get("p99_ms"), "batching off", 2, Target("value", "<=", 25.0, "<= 25 ms"), missing),
        figure_row("Serving throughput (texts/s) at concurrency 64 vs model-only ceiling", on.get("texts_per_s"),
                   ceiling.get("texts_per_s"), "onnxruntime in process", 1, Target("ratio", ">=", 0.5, ">= 0.5"),
                   missing),
    ]


def serving_section(run: BenchmarkRun) -> list[str]:
    lines = ["## Serving (benchmarks/serving.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run(), ""]
    figures = run.figures
    rows = [["on" if row["batching"] else "off", str(row["concurrency"]), str(row["requests"]), str(row["failed"]),
             f"{row['requests_per_s']:.1f}", f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}", f"{row['p99_ms']:.2f}",
             fmt(row["mean_batch"], 1)] for row in figures["runs"]]
    ceiling = figures["ceiling"]
    return lines + [
        f"Model: {figures['model_dir']}; texts: {figures['texts']}; the real server (`tuneforge serve-model`, "
        f"127.0.0.1, one process, {figures['threads']} onnxruntime threads) and an asyncio HTTP client on the same "
        f"machine, one text per request, at most {figures['requests_per_point']} requests or "
        f"{figures['seconds_per_point']:g} s per point; load average {figures['load_average']:.2f}.", "",
        *table(["batching", "concurrency", "requests", "failed", "req/s", "p50 ms", "p95 ms", "p99 ms",
                "mean batch"], rows),
        f"Model-only ceiling (onnxruntime in process, batches of {ceiling['batch']}, same threads): "
        f"{ceiling['texts_per_s']:.1f} texts/s.", "",
    ]


RELIABILITY_FIGURE = "Reliability"


def run_reliability(json_path: Path | None, quick: list[str], scratch: Path, timeout: float | None) -> BenchmarkRun:
    """benchmarks/reliability.py, or the --json an earlier run of it wrote. It exits 1 when a case is not clean:
    that is a result (the summary says FAIL), not a broken benchmark."""
    if json_path is None:
        return run_benchmark("reliability", "reliability.py", quick, scratch, timeout, reports_on_exit=(0, 1))
    print(f"run_all: reliability: reading {json_path}, not running benchmarks/reliability.py", flush=True)
    return BenchmarkRun("reliability", "reliability.py", status="ok", read_from=str(json_path),
                        figures=json.loads(json_path.read_text(encoding="utf-8")))


def reliability_rows(run: BenchmarkRun) -> list[Row]:
    figures = run.figures or {}
    figure = f"{RELIABILITY_FIGURE}: bad inputs refused cleanly, {figures.get('mode', 'benchmarks/reliability.py')}"
    if run.status != "ok":
        return [Row(figure, run.not_run(), "—", "—", "all clean", "not run")]
    clean, total = figures["clean"], figures["total"]
    return [Row(figure, f"{clean} of {total} cases clean", f"{total} (cases run)",
                f"{clean / total:.3f}" if total else "—", "all clean", "pass" if total and clean == total else "FAIL")]


def reliability_section(run: BenchmarkRun) -> list[str]:
    lines = ["## Reliability (benchmarks/reliability.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run(), ""]
    figures = run.figures
    source = (f"Read from {run.read_from}, the --json of an earlier run" if run.read_from
              else f"Run by `{shown_command(run.command)}`")
    rows = [[case["name"], case["category"], f"`{case['command']}`", ", ".join(case.get("expect", [])),
             str(case["exit_code"]), clean_cell(case), case["message"] or "(no error line)"]
            for case in figures["cases"]]
    by_design = [f"{case['name']} ({', '.join(case['allowed'])})" for case in figures["cases"] if case["allowed"]]
    return lines + [
        f"{figures['clean']} of {figures['total']} bad inputs refused cleanly ({figures['mode']}). {source}: in a "
        f"temporary clone of this checkout (a tiny BERT, a few steps) the pipeline ran once cleanly "
        f"({figures['pipeline_seconds']:.0f} s), then each case wrote one bad input, ran one command and put the "
        f"inputs back; {figures['seconds']:.0f} s in all. Clean: the command exits non-zero, prints exactly one "
        "error line, that line names every expected word, no traceback, and no stage output, dvc.lock, "
        "params.yaml, registry row or blob changed.", "",
        *table(["case", "kind", "command", "expected words", "exit", "clean", "the line it printed"], rows),
        *([f"Changed by design (a refused promotion records its gate decision): {'; '.join(by_design)}.", ""]
          if by_design else []),
    ]


def clean_cell(case: dict) -> str:
    if case["clean"]:
        return "yes"
    changed = f"; changed: {', '.join(case['changed'][:3])}" if case["changed"] else ""
    return f"NO: {case.get('why_not_clean') or 'not clean'}{changed}"


GOEMOTIONS_FIGURE = "GoEmotions"
GOEMOTIONS_HINT = ("give --goemotions-dir DIR, a checkout where `tuneforge run --config configs/goemotions.yaml` "
                   "completed (`python benchmarks/goemotions.py` runs it and prints the clone)")


def run_goemotions(run_dir: Path | None, scratch: Path, timeout: float | None) -> BenchmarkRun:
    if run_dir is None:
        print("run_all: goemotions: no --goemotions-dir, reported as not run", flush=True)
        return BenchmarkRun("goemotions", "goemotions.py", status="missing")
    return run_benchmark("goemotions", "goemotions.py", ["--run-dir", str(run_dir)], scratch, timeout)


def goemotions_rows(run: BenchmarkRun) -> list[Row]:
    models = (run.figures or {}).get("models", {})
    teacher, int8 = models.get("teacher", {}), models.get("int8", {})

    def macro_f1(model: dict, mode: str) -> float | None:
        return model.get(mode, {}).get("macro_f1")

    anchor = GOEMOTIONS_PUBLISHED
    missing = run.not_run()
    return [
        figure_row(f"{GOEMOTIONS_FIGURE} teacher test macro-F1, per-label thresholds vs {anchor['model']} (published, "
                   "one threshold)", macro_f1(teacher, "per_label"), anchor["macro_f1"],
                   f"{anchor['model']}, published", 4,
                   Target("value", ">=", GOEMOTIONS_TEACHER_GOAL, f">= {GOEMOTIONS_TEACHER_GOAL:.2f} (teacher)"),
                   missing),
        figure_row(f"{GOEMOTIONS_FIGURE} teacher test macro-F1: per-label vs global thresholds",
                   macro_f1(teacher, "per_label"), macro_f1(teacher, "global"), "global threshold", 4, None, missing),
        figure_row(f"{GOEMOTIONS_FIGURE} int8 student vs teacher test macro-F1 (per-label thresholds)",
                   macro_f1(int8, "per_label"), macro_f1(teacher, "per_label"), "teacher", 4,
                   Target("drop", "<=", GOEMOTIONS_INT8_MAX_DROP, f"within 1 point ({GOEMOTIONS_INT8_MAX_DROP})"),
                   missing),
    ]


def goemotions_section(run: BenchmarkRun) -> list[str]:
    lines = ["## GoEmotions (benchmarks/goemotions.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run() + (f": {GOEMOTIONS_HINT}" if run.status == "missing" else ""), ""]
    figures = run.figures
    described, cost, check = figures["run"], figures["cost"], figures["cross_check"]
    train, trained = described["train"], described["teacher_trained"]
    distill, distilled = described["distill"], described["student_trained"]
    shown = {"teacher": "teacher (PyTorch fp32)", "int8": "int8 student (ONNX, shipped)"}
    rows = []
    for name, model in figures["models"].items():
        for mode in ("global", "per_label"):
            scores = model[mode]
            how = f"one global threshold ({model['global_threshold']:.2f})" if mode == "global" else "per-label"
            rows.append([shown.get(name, name), how, f"{scores['macro_f1']:.4f}", f"{scores['micro_f1']:.4f}",
                         f"{scores['samples_f1']:.4f}", f"{scores['accuracy']:.4f}"])
    if figures.get("quick"):
        lines += ["Quick mode: a subset of GoEmotions, a random 2-layer BERT, a few steps; not the product's quality.",
                  ""]
    goals = "; ".join(f"{name} {goal['value']:.4f} (goal {goal['goal']}: {'met' if goal['met'] else 'NOT MET'})"
                      for name, goal in figures["goals"].items())
    anchor = GOEMOTIONS_PUBLISHED
    return lines + [
        *table(["run", ""], [
            ["path", described["path"]], ["commit", (described.get("commit") or "unknown")[:12]],
            ["data.dir", described["data_dir"]], ["model.base", described["model_base"]],
            ["train", ", ".join(f"{key}={value}" for key, value in train.items())],
            ["teacher trained", ", ".join(f"{key}={value}" for key, value in trained.items())],
            ["distill", ", ".join(f"{key}={value}" for key, value in distill.items())],
            ["student trained", ", ".join(f"{key}={value}" for key, value in distilled.items())],
        ]),
        f"Test split: {figures['test_rows']} rows, {len(figures['labels'])} labels. Each model's thresholds were "
        f"fitted on its own logits of the {figures['val_rows']} val rows (global: the one threshold maximising val "
        "macro-F1; per-label: each label's F1-maximising threshold, the global one for labels with too few val "
        "positives), then the test rows scored both ways, in one run of `python benchmarks/goemotions.py --run-dir "
        f"{described['path']}` ({figures['measure_seconds']:.0f} s, {figures['device']}, load average "
        f"{figures['load_average']:.2f}).", "",
        *table(["model", "thresholds", "macro-F1", "micro-F1", "samples-F1", "exact set"], rows),
        f"Check: the teacher's per-label macro-F1 is evaluate's own procedure; reports/metrics/evaluate.json says "
        f"{fmt(check['teacher_evaluate_json_macro_f1'], 4)} (|difference| "
        f"{fmt_small(check['teacher_difference'])}); the int8 student's, export's: reports/metrics/export.json says "
        f"{fmt(check['int8_export_json_macro_f1'], 4)} (|difference| {fmt_small(check['int8_difference'])}).", "",
        f"Anchor ({anchor['source']}): {anchor['model']} test macro-F1 {anchor['macro_f1']} with "
        f"{anchor['thresholds']} for every label. Goals: {goals}.", "",
        f"Cost of the recipe run: CPU time {hours(cost['cpu_seconds'])}, wall time {hours(cost['wall_seconds'])} "
        f"({cost['source']}).", "",
        *(table(["stage", "wall s (meta.json)", "CPU s (meta.json)"],
                [[stage, f"{times['wall']:.0f}", fmt(times["cpu"], 0)] for stage, times in cost["stages"].items()])
          if cost["stages"] else []),
    ]


OPEN_SET_FIGURE = "Open-set banking77"


def run_open_set(scratch: Path, timeout: float | None) -> BenchmarkRun:
    """The table of the kept open-set runs (open_set.py --report runs no training)."""
    run = run_benchmark("open_set", "open_set.py", ["--report"], scratch, timeout)
    if run.status == "ok" and not run.figures["table"]:
        run.status, run.error = "missing", "no run kept yet: `python benchmarks/open_set.py` measures them"
    return run


def open_set_rows(run: BenchmarkRun) -> list[Row]:
    rows_by_ratio = {row["ratio"]: row for row in (run.figures or {}).get("table", [])}
    # A share with no kept run yet is not a failure: the table fills over several invocations of open_set.py.
    missing = "not measured yet (python benchmarks/open_set.py)" if run.status == "ok" else run.not_run()
    rows = []
    for ratio, published in sorted(OPEN_SET_PUBLISHED.items()):
        row, (accuracy, macro_f1) = rows_by_ratio.get(ratio, {}), published["ADB"]
        seeds = f"{row.get('teacher_seeds', 0)} seed(s)"
        for name, value, reference in (("accuracy", row.get("teacher_accuracy_with_oos"), accuracy),
                                       ("macro-F1", row.get("teacher_macro_f1_with_oos"), macro_f1)):
            rows.append(figure_row(f"{OPEN_SET_FIGURE}, {ratio:.0%} known: teacher {name} (%) vs ADB ({seeds})",
                                   value, reference, "ADB, published", 2, Target("drop", "<=", 0.0, "> ADB"),
                                   missing))
    row = rows_by_ratio.get(0.75, {})
    accuracy, macro_f1 = OPEN_SET_PUBLISHED[0.75]["ADB"]
    for name, key, reference, goal in (("accuracy", "accuracy_with_oos", accuracy, OPEN_SET_STUDENT_GOAL["accuracy"]),
                                       ("macro-F1", "macro_f1_with_oos", macro_f1, OPEN_SET_STUDENT_GOAL["macro_f1"])):
        rows.append(figure_row(
            f"{OPEN_SET_FIGURE}, 75% known: int8 student {name} (%) vs ADB ({row.get('int8_seeds', 0)} seed(s))",
            row.get(f"int8_{key}"), reference, "ADB, published", 2, Target("value", ">=", goal, f">= {goal:g}"),
            missing))
    return rows


def open_set_section(run: BenchmarkRun) -> list[str]:
    lines = ["## Open-set banking77 (benchmarks/open_set.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run() + (f": {run.error}" if run.status == "missing" else ""), ""]
    figures = run.figures
    goals = [f"- {goal['goal']}: {'met' if goal['met'] else 'NOT MET'}" for goal in figures["goals"]]
    return lines + [
        "The protocol of Zhang et al. 2021: a share of the 77 intents known (drawn by seed), the others only in the "
        "test split as one open class; tuneforge's rejection (maximum calibrated softmax probability, threshold "
        "fitted on known-intent val rows to keep `reject.keep_in_scope`) answers `open`. Each run is "
        "`tuneforge run --config configs/banking77.yaml` with the open-set files; the figures are its stages' own "
        "(evaluate for the teacher, export for the shipped int8 student).", "",
        *figures["markdown"], "", *goals, "",
    ]


def fmt_small(value: float | None) -> str:
    return "not recorded" if value is None else f"{value:.1e}"


def quality_rows(found: dict, missing: str) -> list[Row]:
    teacher, student, int8 = (percent(found[name]["accuracy"]) for name in ("teacher", "student", "int8"))
    rows = []
    for i, (name, anchor) in enumerate(PUBLISHED_ANCHORS.items()):
        goal = Target("value", ">=", TEACHER_GOAL_PERCENT, f">= {TEACHER_GOAL_PERCENT} (teacher)") if i == 0 else None
        rows.append(figure_row(f"Teacher test accuracy (%) vs {name}", teacher, anchor, f"{name}, published", 2,
                               goal, missing))
    rows.append(figure_row("Student (PyTorch) test accuracy (%) vs teacher", student, teacher, "teacher", 2,
                           None, missing))
    rows.append(figure_row("Int8 student test accuracy (%) vs teacher", int8, teacher, "teacher", 2,
                           Target("drop", "<=", INT8_MAX_DROP_POINTS, f"within {INT8_MAX_DROP_POINTS} point"),
                           missing))
    return rows


def percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


# --- RESULTS.md -----------------------------------------------------------------------------------------------


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    # A Markdown row is one line: a newline inside a cell (a case's command may hold one) is shown as \n.
    cells = [[str(cell).replace("|", "\\|").replace("\n", "\\n") for cell in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |"
                                                                          for row in cells), ""]


def render(context: dict) -> str:
    quick, runs = context["quick"], context["runs"]
    lines = [
        "# tuneforge benchmarks", "",
        f"Written by `{context['command']}` on {context['started']} (UTC), in {context['seconds']:.0f} s. "
        "Every figure below was measured by this run or read from the recipe run named under Quality; the only "
        "typed numbers are the published anchors, marked as such. Ratio = tuneforge / reference.", "",
    ]
    if quick:
        lines += ["**Quick mode (CI):** a small subset, a random 2-layer BERT, a few steps. These figures show that "
                  "every benchmark runs and reports; they do not measure the product.", ""]
    lines += ["## Machine", "", *table(["", ""], [[k, v] for k, v in context["machine"].items()]),
              f"Load average (1 min) at start {context['load'][0]:.2f}, at end {context['load'][1]:.2f}.", "",
              "## Versions", "", *table(["package", "version"], [[k, v] for k, v in context["versions"].items()]),
              "## Summary", "",
              *table(["figure", "tuneforge", "reference (same run)", "ratio", "target", "result"],
                     [list(vars(row).values()) for row in context["rows"]])]
    lines += train_section(runs["train_throughput"]) + export_section(runs["export_speed"])
    lines += flow_section(runs["orchestration_overhead"]) + quality_section(context)
    lines += data_section(runs["data_stages"]) + serving_section(runs["serving"])
    lines += reliability_section(runs["reliability"]) + goemotions_section(runs["goemotions"])
    lines += open_set_section(runs["open_set"]) + raw_section(runs)
    return "\n".join(lines).rstrip() + "\n"


def train_section(run: BenchmarkRun) -> list[str]:
    lines = ["## Train throughput (benchmarks/train_throughput.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run(), ""]
    figures = run.figures
    settings = ", ".join(f"{key} {value}" for key, value in figures["settings"].items())
    rows = [[side, f"{figures[side]['samples_per_second']:.1f}", f"{figures[side]['median_samples_per_second']:.1f}",
             f"{figures[side]['peak_rss_mb']:.0f}"] for side in ("stage", "bare")]
    ratios = ", ".join(f"{key} {value:.3f}" for key, value in figures["ratios"].items())
    return lines + [f"Settings: {settings}.", "",
                    *table(["side", "samples/s", "median-step samples/s", "peak RSS MB"], rows),
                    f"Ratios stage/bare: {ratios}.", ""]


def export_section(run: BenchmarkRun) -> list[str]:
    lines = ["## Int8 student vs PyTorch teacher (benchmarks/export_speed.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run(), ""]
    figures, speed = run.figures, run.figures["speed"]
    rows = [[name, f"{row['size_mib']:.2f}", f"{row['p50_ms']:.3f}", f"{row['p95_ms']:.3f}",
             f"{row['throughput_rows_per_s']:.0f}", f"{row['accuracy']:.4f}", f"{row['macro_f1']:.4f}"]
            for name, row in speed["models"].items()]
    return lines + [
        f"Models: {figures['models_from']} (teacher {figures['teacher']}, {figures['teacher_epochs']:g} epochs; "
        f"student keeps teacher layers {figures['kept_layers']}); test rows: {speed['test_rows']} "
        f"({figures['dataset']}); threads: {figures['threads']}; {speed.get('note', '')}.", "",
        *table(["model", "MiB", "p50 ms", "p95 ms", "rows/s", "accuracy", "macro-F1"], rows),
    ]


def flow_section(run: BenchmarkRun) -> list[str]:
    lines = ["## Flow overhead (benchmarks/orchestration_overhead.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run(), ""]
    rows = [[key, f"{value:.4g}"] for key, value in flatten(run.figures)]
    return lines + ["Every number its --json wrote:", "", *table(["figure", "value"], rows)]


def quality_section(context: dict) -> list[str]:
    found, description, cost = context["quality"], context["recipe"], context["cost"]
    lines = ["## Quality on banking77 (recipe: configs/banking77.yaml)", ""]
    if found is None:
        return lines + [context["quality_missing"], ""]
    if context["quality_from_quick_export"]:
        lines += ["Quick mode: read from export_speed's tiny pipeline (random 2-layer BERT, subset), not the recipe.",
                  ""]
    elif "banking77" not in description.get("data.dir", "banking77"):
        lines += [f"Note: this run's data.dir is {description['data.dir']}, not banking77.", ""]
    lines += [*table(["run", ""], [[key, value] for key, value in description.items()])]
    rows = [[name, fmt(found[name]["accuracy"], 4), fmt(found[name]["macro_f1"], 4), found[name]["source"]]
            for name in ("teacher", "student", "int8")]
    lines += [f"Test split: {found['test_rows']} rows.", "",
              *table(["model", "test accuracy", "macro-F1", "read from"], rows),
              f"Anchors ({ANCHOR_SOURCE}): "
              + ", ".join(f"{name} {value}" for name, value in PUBLISHED_ANCHORS.items()) + ". "
              f"Goals: teacher >= {TEACHER_GOAL_PERCENT}%, int8 student within {INT8_MAX_DROP_POINTS} point of it.",
              "", f"Cost: CPU time {hours(cost['cpu'])}, wall time {hours(cost['wall'])} ({cost['source']}).", ""]
    if cost["stages"]:
        rows = [[stage, f"{times['wall']:.0f}", fmt(times["cpu"], 0)] for stage, times in cost["stages"].items()]
        lines += table(["stage", "wall s (meta.json)", "CPU s (meta.json)"], rows)
    return lines


def data_section(run: BenchmarkRun) -> list[str]:
    lines = ["## Data stages (benchmarks/data_stages.py)", ""]
    if run.status != "ok":
        return lines + [run.not_run(), ""]
    figures = run.figures
    rows = [[row["stage"], f"{row['seconds']:.2f}", str(row["rows"]), f"{row['rows_per_second']:.0f}"]
            for row in figures["stages"]]
    return lines + [f"Dataset: {figures['dataset']}; imports {figures['import_seconds']:.2f} s; total "
                    f"{figures['total_seconds']:.2f} s.", "", *table(["stage", "seconds", "rows", "rows/s"], rows)]


def raw_section(runs: dict[str, BenchmarkRun]) -> list[str]:
    lines = ["## Raw output", ""]
    for run in runs.values():
        if run.status == "missing":
            lines += [f"`benchmarks/{run.script}`: not run: missing", ""]
            continue
        if run.read_from:
            lines += [f"`benchmarks/{run.script}`: not run here; its figures were read from {run.read_from}", ""]
            continue
        lines += [f"<details><summary><code>{shown_command(run.command)}</code>: exit {run.returncode}, "
                  f"{run.seconds:.0f} s</summary>", "", "```text", run.stdout.strip(),
                  *(["--- stderr (last lines) ---", run.error] if run.error else []), "```", "", "</details>", ""]
    return lines


def fmt(value: float | None, digits: int) -> str:
    return "not recorded" if value is None else f"{value:.{digits}f}"


def hours(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    return f"{seconds:.0f} s ({seconds / 3600:.2f} h)"


# --- main -----------------------------------------------------------------------------------------------------


def run_serving(model_dir: Path | None, texts_file: Path, quick: list[str], scratch: Path,
                timeout: float | None) -> BenchmarkRun:
    if model_dir is None or not (Path(model_dir) / "model.int8.onnx").is_file():
        print(f"run_all: serving: no int8 model at {model_dir}, reported as not run", flush=True)
        return BenchmarkRun("serving", "serving.py", status="missing")
    texts = ["--texts", str(texts_file.resolve())] if texts_file.is_file() else []
    return run_benchmark("serving", "serving.py", ["--model-dir", str(model_dir), *texts, *quick], scratch, timeout)


# --only: one benchmark measured alone, its rows and section written into the existing RESULTS.md.
ONLY = {
    "serving": (SERVING_FIGURE, serving_rows, serving_section),
    "reliability": (RELIABILITY_FIGURE, reliability_rows, reliability_section),
    "goemotions": (GOEMOTIONS_FIGURE, goemotions_rows, goemotions_section),
    "open_set": (OPEN_SET_FIGURE, open_set_rows, open_set_section),
}


def update_one_section(args, argv: list[str] | None) -> int:
    """Run one benchmark (args.only) alone and replace its summary rows and section in an existing RESULTS.md."""
    out = (args.out or RESULTS).resolve()
    if not out.is_file():
        print(f"run_all: error: {out}: no RESULTS.md to update (run the whole runner first)", file=sys.stderr)
        return 2
    if args.only == "serving" and not args.serving_model:
        print("run_all: error: --only serving needs --serving-model DIR (a models/onnx folder)", file=sys.stderr)
        return 2
    if args.only == "goemotions" and not args.goemotions_dir:
        print("run_all: error: --only goemotions needs --goemotions-dir DIR (a completed run of "
              "configs/goemotions.yaml)", file=sys.stderr)
        return 2
    quick = ["--quick"] if args.quick else []
    with tempfile.TemporaryDirectory(prefix="tuneforge-bench-") as scratch:
        if args.only == "serving":
            run = run_serving(args.serving_model.resolve(), args.serving_texts, quick, Path(scratch), None)
        elif args.only == "goemotions":
            run = run_goemotions(args.goemotions_dir.resolve(), Path(scratch), None)
        elif args.only == "open_set":
            run = run_open_set(Path(scratch), None)
        else:
            run = run_reliability(args.reliability_json, quick, Path(scratch), None)
    if run.status != "ok":
        return 1
    figure, rows_of, section_of = ONLY[args.only]
    command = shlex.join(["python", "benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])])
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    section = section_of(run)
    section[2:2] = [f"{'Written' if run.read_from else 'Measured'} by `{command}` on {started} (UTC); the rest of "
                    "this file comes from the run named at the top.", ""]
    rows = ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in vars(row).values()) + " |"
            for row in rows_of(run)]
    out.write_text(splice_section(out.read_text(encoding="utf-8"), figure, rows, section), encoding="utf-8")
    print(f"run_all: updated the {args.only} rows and section of {out}")
    return 0


def splice_section(text: str, figure: str, rows: list[str], section: list[str]) -> str:
    """`text` with its summary rows named `figure` and its section (`section[0]`) replaced; added when absent:
    the rows at the end of the summary table, the section before the raw output."""
    lines = text.splitlines()
    summary = lines.index("## Summary")
    end = next(i for i in range(summary + 3, len(lines)) if not lines[i].startswith("|"))
    old = [i for i in range(summary, end) if lines[i].startswith(f"| {figure} ") or lines[i].startswith(f"| {figure}:")]
    at = old[0] if old else end
    lines[at:at + len(old)] = rows  # the old rows are consecutive: each benchmark writes its rows together
    if section[0] in lines:
        start = lines.index(section[0])
        stop = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        del lines[start:stop]
    else:
        start = lines.index("## Raw output") if "## Raw output" in lines else len(lines)
    lines[start:start] = section
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI: subsets, a tiny model, seconds per benchmark")
    parser.add_argument("--recipe-dir", type=Path, help="a checkout where the banking77 recipe run completed")
    parser.add_argument("--recipe-time-log", type=Path, help="GNU `time -v` output of that run (its CPU time)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/onnxruntime threads on both sides of each ratio (1: steadier on a shared box)")
    parser.add_argument("--repeats", type=int, default=2, help="train throughput: alternate both sides N times")
    parser.add_argument("--out", type=Path, help=f"default {RESULTS.relative_to(REPO_ROOT)}; --quick: {QUICK_RESULTS}")
    parser.add_argument("--only", choices=sorted(ONLY), help="measure only this benchmark and update its rows and "
                        "section of the existing RESULTS.md")
    parser.add_argument("--serving-model", type=Path, help="models/onnx folder for the serving benchmark "
                        "(default: the recipe run's, or in quick mode export_speed's)")
    parser.add_argument("--serving-texts", type=Path, default=BANKING77 / "test.csv",
                        help="CSV with a text column the serving benchmark sends (default: banking77's test.csv)")
    parser.add_argument("--reliability-json", type=Path, help="the --json of an earlier `benchmarks/reliability.py` "
                        "run: report it instead of running the cases again")
    parser.add_argument("--goemotions-dir", type=Path, help="a checkout where `tuneforge run --config "
                        "configs/goemotions.yaml` completed (benchmarks/goemotions.py measures it; without it the "
                        "GoEmotions section is reported as not run)")
    args = parser.parse_args(argv)
    if args.reliability_json and not args.reliability_json.is_file():
        print(f"run_all: error: {args.reliability_json}: file not found", file=sys.stderr)
        return 2
    if args.goemotions_dir and not (args.goemotions_dir / "reports/metrics").is_dir():
        print(f"run_all: error: {args.goemotions_dir}: no reports/metrics (run `tuneforge run --config "
              "configs/goemotions.yaml` there first)", file=sys.stderr)
        return 2
    if args.only:
        return update_one_section(args, argv)
    out = (args.out or (QUICK_RESULTS if args.quick else RESULTS)).resolve()
    recipe_dir = args.recipe_dir.resolve() if args.recipe_dir else None
    if recipe_dir and not (recipe_dir / "reports/metrics").is_dir():
        print(f"run_all: error: {recipe_dir}: no reports/metrics (run `tuneforge run --config {RECIPE_CONFIG}` "
              "there first)", file=sys.stderr)
        return 2
    if args.recipe_time_log and not args.recipe_time_log.is_file():
        print(f"run_all: error: {args.recipe_time_log}: file not found", file=sys.stderr)
        return 2

    started, began, load_start = datetime.datetime.now(datetime.UTC), time.perf_counter(), os.getloadavg()[0]
    # Read before anything runs: the commit and versions that are measured, not those present at the end.
    measured_machine, measured_versions = machine(), versions()
    threads = ["--threads", str(args.threads)]
    with tempfile.TemporaryDirectory(prefix="tuneforge-bench-") as scratch_name:
        scratch = Path(scratch_name)
        if not args.quick and recipe_dir is None:
            recipe_dir = run_recipe()
        quick = ["--quick"] if args.quick else []
        timeout = 900 if args.quick else None
        export_args = ["--work", str(scratch / "export"), *threads,
                       *(["--from-run", str(recipe_dir)] if recipe_dir and not args.quick else ["--quick"])]
        if args.quick:
            export_args += ["--train-threads", str(args.threads)]
        runs = {
            "data_stages": run_benchmark("data_stages", "data_stages.py", quick, scratch, timeout),
            "train_throughput": run_benchmark(
                "train_throughput", "train_throughput.py",
                [*quick, *threads, "--repeats", str(1 if args.quick else args.repeats)], scratch, timeout),
            "export_speed": run_benchmark("export_speed", "export_speed.py", export_args, scratch, timeout),
            "orchestration_overhead": run_benchmark(
                "orchestration_overhead", "orchestration_overhead.py", quick, scratch, timeout),
        }
        serving_model = args.serving_model or (
            scratch / "export/models/onnx" if args.quick else recipe_dir / "models/onnx" if recipe_dir else None)
        runs["serving"] = run_serving(serving_model, args.serving_texts, quick, scratch, timeout)
        runs["reliability"] = run_reliability(args.reliability_json, quick, scratch, timeout)
        runs["goemotions"] = run_goemotions(args.goemotions_dir.resolve() if args.goemotions_dir else None, scratch,
                                            timeout)
        runs["open_set"] = run_open_set(scratch, timeout)
        # Quality: the recipe run's files; in quick mode without one, export_speed's tiny pipeline.
        quality_dir = recipe_dir or (scratch / "export" if runs["export_speed"].status == "ok" else None)
        found = quality(quality_dir) if quality_dir else None
        context = {
            "quick": args.quick, "runs": runs, "started": started.isoformat(timespec="seconds"),
            "command": shlex.join(["python", "benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])]),
            "machine": measured_machine, "versions": measured_versions, "quality": found,
            "quality_missing": f"not run: {runs['export_speed'].not_run()} (export_speed's pipeline)",
            "recipe": run_description(quality_dir) if quality_dir else {},
            "cost": run_cost(quality_dir, args.recipe_time_log) if quality_dir else {},
        }
        context["quality_from_quick_export"] = bool(quality_dir) and not recipe_dir
        if context["quality_from_quick_export"]:
            context["recipe"]["path"] = "export_speed's temporary work dir (quick mode; removed after the run)"
        context["rows"] = (
            train_rows(runs["train_throughput"]) + export_rows(runs["export_speed"]) + flow_rows(
                runs["orchestration_overhead"])
            + quality_rows(found or {name: {"accuracy": None} for name in ("teacher", "student", "int8")},
                           context["quality_missing"])
            + serving_rows(runs["serving"]) + reliability_rows(runs["reliability"])
            + goemotions_rows(runs["goemotions"]) + open_set_rows(runs["open_set"])
        )
        context["load"] = (load_start, os.getloadavg()[0])
        context["seconds"] = time.perf_counter() - began
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(context), encoding="utf-8")
    print(f"run_all: wrote {out}")
    failed = [run.script for run in runs.values() if run.status == "failed"]
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
