"""Int8 ONNX student vs PyTorch fp32 teacher: accuracy, batch-1 latency and size ratios, in one run.

    python benchmarks/export_speed.py [--dataset ../shared/datasets/banking77] [--work DIR]
        [--teacher-epochs 3] [--student-epochs 5] [--layers N] [--train-threads N] [--threads N] [--reuse]
        [--from-run DIR] [--json PATH] [--quick]

On banking77 (read in place from ../shared): the packaged MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2)
is fine-tuned with a fresh head by the train stage (briefly: --teacher-epochs), distilled by the distill
stage (pipeline defaults unless --layers / --student-epochs say otherwise), and exported by the export stage,
whose speed report this script prints. Splits: val is a stratified 10% of train.csv, test is test.csv, no
augmentation (the data stages have their own benchmark). Targets from the issue: student int8 >= 99% of
the teacher's accuracy, >= 8x faster at batch 1, <= 1/6 of the size.

--from-run DIR trains nothing: it exports DIR's models/student against DIR's models/teacher on DIR's
data/splits/test.parquet with DIR's params.yaml export settings (a completed `tuneforge run`, e.g. of
configs/banking77.yaml), and writes only under WORK. --json also writes the figures to PATH. --quick (CI): a
small subset (benchmarks/quick_data.py), a random 2-layer BERT teacher, a few steps, 20 timed runs.
"""

import argparse
import json
import os
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "datasets" / "banking77"
MAX_SEQ_LENGTH = 64  # banking77 queries are short: 64 tokens truncate almost none


def prepare_data(dataset: Path, seed: int = 42) -> None:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    train = pd.read_csv(dataset / "train.csv").rename(columns={"category": "label"})
    test = pd.read_csv(dataset / "test.csv").rename(columns={"category": "label"})
    for frame in (train, test):
        frame["source_row"] = range(2, len(frame) + 2)
    train, val = train_test_split(train, test_size=0.1, stratify=train["label"], random_state=seed)
    for directory in ("data/augmented", "data/splits", "data/validated"):
        Path(directory).mkdir(parents=True, exist_ok=True)
    train.to_parquet("data/augmented/train.parquet", index=False)
    train.to_parquet("data/splits/train.parquet", index=False)
    val.to_parquet("data/splits/val.parquet", index=False)
    test.to_parquet("data/splits/test.parquet", index=False)
    labels = sorted(train["label"].unique())
    Path("data/validated/labels.json").write_text(json.dumps({"labels": labels, "source": "inferred"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tuneforge-export-speed"))
    parser.add_argument("--teacher-epochs", type=float, default=3.0)
    parser.add_argument("--student-epochs", type=float, default=None, help="default: distill.epochs")
    parser.add_argument("--layers", type=int, default=None, help="student layers; default: a third, rounded up")
    parser.add_argument("--reuse", action="store_true", help="keep WORK's teacher and student if they exist")
    parser.add_argument("--train-threads", type=int, default=None,
                        help="torch threads while training (1 is steadier when other processes share the cores)")
    parser.add_argument("--threads", type=int, default=None, help="threads of the speed report (export.threads)")
    parser.add_argument("--from-run", type=Path, help="export the models of this completed pipeline run instead")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--quick", action="store_true", help="subset, tiny teacher, few steps (CI)")
    args = parser.parse_args()
    json_path = args.json.resolve() if args.json else None
    from_run = args.from_run.resolve() if args.from_run else None
    if from_run and not (from_run / "models/student/meta.json").is_file():
        raise SystemExit(f"export_speed: error: {from_run}: no models/student/meta.json (run the pipeline there first)")
    dataset = args.dataset.resolve()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    os.chdir(args.work)

    from stages import export
    from tuneforge.base.layout import Workspace
    from tuneforge.base.spec import ExportConfig, ModelConfig
    from tuneforge.params import load_params
    from tuneforge.pipeline.runner import quiet_libraries

    quiet_libraries()
    if from_run:
        source = f"the pipeline run in {from_run}"
        # The run's models and test split; the outputs are written here, in the work directory.
        ran = Workspace(from_run)
        workspace = Workspace(teacher=ran.teacher, student=ran.student, splits=ran.splits)
        run_params = load_params(from_run / "params.yaml")
        settings, model = run_params.export.model_dump(), run_params.model
        settings.update(benchmark_runs=300, benchmark_warmup=30, threads=args.threads)
        timings = {}
    else:
        source, workspace = "trained here", Workspace()
        settings = {"benchmark_runs": 300, "benchmark_warmup": 30, "threads": args.threads}
        model = ModelConfig(max_seq_length=32 if args.quick else MAX_SEQ_LENGTH)
        if args.quick:
            settings.update(benchmark_runs=20, benchmark_warmup=2, threads=args.threads or 1)
        timings = train_teacher_and_student(args, dataset)
    began = time.perf_counter()
    export.run(ExportConfig(**settings), model_cfg=model, workspace=workspace)
    timings["export"] = time.perf_counter() - began

    speed = json.loads(Path("reports/export/speed.json").read_text())
    teacher_meta = json.loads((workspace.teacher / "meta.json").read_text())
    student_meta = json.loads((workspace.student / "meta.json").read_text())
    print()
    shown = "quick subset" if args.quick else ("the run's test split" if from_run else str(dataset))
    print(f"dataset: {shown} ({speed['test_rows']} test rows); models: {source}; work dir: {args.work}")
    # speed.json's own `threads` is the process default, read after export.threads was restored.
    threads = settings["threads"] or speed["threads"]
    base = teacher_meta["base_model"]
    base = "a random 2-layer BERT (quick)" if args.quick else (base["id"] if isinstance(base, dict) else base)
    print(f"teacher: {base} fine-tuned for {teacher_meta['epochs']:g} epochs; student: teacher "
          f"layers {student_meta['student']['kept_layers']}, vocabulary {student_meta['vocabulary']['kept']} of "
          f"{student_meta['vocabulary']['tokenizer_size']} tokens; threads {threads}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':<22}{'MiB':>8}{'p50 ms':>9}{'p95 ms':>9}{'rows/s':>9}{'accuracy':>10}{'macro-F1':>10}{'agree':>8}")
    for name, row in speed["models"].items():
        print(f"{name:<22}{row['size_mib']:>8.2f}{row['p50_ms']:>9.3f}{row['p95_ms']:>9.3f}"
              f"{row['throughput_rows_per_s']:>9.0f}{row['accuracy']:>10.4f}{row['macro_f1']:>10.4f}"
              f"{row['agreement_with_teacher']:>8.4f}")
    print(f"\n{speed['shipped']} vs {speed['baseline']}:")
    for name, target in speed["targets"].items():
        verdict = "met" if target["met"] else "NOT MET"
        print(f"  {name:<20}{target['value']:>10.4f}  target {target['target']:<10} {verdict}")
    for name in ("speedup_p95", "throughput_ratio"):
        print(f"  {name:<20}{speed['ratios'][name]:>10.4f}")
    print("stage seconds: " + ", ".join(f"{name} {seconds:.0f}" for name, seconds in timings.items()))
    if json_path:
        figures = {"dataset": shown, "models_from": source, "work": str(args.work), "stage_seconds": timings,
                   "teacher": base, "teacher_epochs": teacher_meta["epochs"], "threads": threads,
                   "kept_layers": student_meta["student"]["kept_layers"],
                   "load_average": os.getloadavg()[0], "speed": speed}
        json_path.write_text(json.dumps(figures, indent=2))


def train_teacher_and_student(args, dataset: Path) -> dict[str, float]:
    """Train (or with --reuse keep) WORK's teacher and distill its student; seconds per stage that ran."""
    from stages import distill, train
    from tuneforge.base.spec import DistillConfig, ModelConfig, TrainConfig
    from tuneforge.export.latency import torch_threads

    model, train_threads = ModelConfig(max_seq_length=MAX_SEQ_LENGTH), args.train_threads
    train_cfg = TrainConfig(epochs=args.teacher_epochs, eval_steps=100)
    student_epochs = {"epochs": args.student_epochs} if args.student_epochs else {}
    distill_cfg = DistillConfig(num_layers=args.layers, **student_epochs)
    if args.quick:
        from quick_data import tiny_bert, write_subset

        dataset = write_subset(Path("quick-data"))
        model = ModelConfig(base=str(tiny_bert(Path("tiny-bert").resolve())), max_seq_length=32)
        train_cfg = TrainConfig(max_steps=6, eval_steps=3, batch_size=16)
        distill_cfg = DistillConfig(max_steps=6, batch_size=16)
        train_threads = train_threads or 1
    prepare_data(dataset)
    timings = {}
    with torch_threads(train_threads):
        if not (args.reuse and Path("models/teacher/model.safetensors").is_file()):
            began = time.perf_counter()
            train.run(model, train_cfg)
            timings["train"] = time.perf_counter() - began
        if not (args.reuse and Path("models/student/model.safetensors").is_file()):
            began = time.perf_counter()
            distill.run(distill_cfg, train_cfg, model_cfg=model)
            timings["distill"] = time.perf_counter() - began
    return timings


if __name__ == "__main__":
    main()
