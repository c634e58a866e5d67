"""Stage `export`: the student (or the teacher) as ONNX fp32 and int8, gated by parity, with a speed report.

Inputs: models/student (export.source student) or models/teacher, models/teacher (the baseline of the speed
report), data/splits/test.parquet (parity and accuracy).

Steps: trace the model with a padded example batch (tuneforge/export/onnx_export.py), quantize it to dynamic int8,
then two gates that fail the stage (tuneforge/export/parity.py): fp32 ONNX vs PyTorch on every test row, and int8
vs fp32 on the task's parity metric (macro-F1), every model deciding by the calibration that ships
(multi-label: the thresholds fitted on the int8 model's val scores). A failed gate lists the worst rows and
writes nothing: previous outputs stay as they were.
The ONNX graphs are run through tuneforge.inference.onnx_predictor, the same code that serves the shipped directory.

Outputs, replaced atomically:
    models/onnx/model.onnx, model.int8.onnx   fp32 and int8 graphs (tokenizer ids in, logits out)
    models/onnx/tokenizer.json (+ config)     the tokenizer, truncation and padding included
    models/onnx/labels.json                   {"labels": [...], "decision", "calibration"}: label i is logit i,
                                              the task's output rule and its calibration fitted on val
    models/onnx/thresholds.json               multi-label: each label's threshold by name (for people)
    models/onnx/meta.json                     config, inputs, parity, speed, files with sha256
    models/onnx/README.md                     the model card (Hugging Face format; no timings: the same
                                              model gives the same card)
    reports/export/speed.{json,md}            batch-1 p50/p95 and batch throughput, sizes, accuracy, ratios
                                              for PyTorch fp32 teacher, ORT fp32/int8 teacher, ORT fp32/int8
                                              student, and the issue's targets (timings: like meta.json,
                                              .dvcignore keeps them out of the outputs' hash)
    reports/export/parity.json                both gates' numbers
    reports/export/agreement.json             top-1 agreement between every pair of those models
    reports/export/int8_vs_teacher.{html,json}, int8_vs_fp32.{html,json}
                                              Evidently drift reports of the predicted labels
    reports/metrics/export.json               headline metrics (DVC metrics)
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tuneforge.base.errors import ConfigError, StageError
from tuneforge.base.integrity import file_hashes
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import (
    Produced,
    atomic_dirs,
    atomic_write_text,
    read_meta,
    sha256_file,
    write_json,
    write_meta,
    write_metrics,
)
from tuneforge.base.spec import ExportConfig, ModelConfig, RejectConfig
from tuneforge.data.drift import write_drift_report
from tuneforge.data.out_of_scope import read_out_of_scope
from tuneforge.evaluation.open_set import choose_rejection, open_set_metrics
from tuneforge.evaluation.test_split import check_labels_known, read_test_split
from tuneforge.export import model_card, onnx_export, parity
from tuneforge.export.latency import chunks, measure, onnx_runner, torch_runner, torch_threads
from tuneforge.inference import onnx_predictor as onnx_predict
from tuneforge.inference.outputs import NO_CALIBRATION, labels_from_logits
from tuneforge.inference.rejection import rejected_rows, require_rejection
from tuneforge.inference.torch_predictor import Classifier, load_trained_classifier
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import Task, task_for
from tuneforge.training.student import load_student, require_tokenizer_file, with_id_map

STAGE = "export"
TEACHER_HINT = "run the train stage first (python -m stages.train)"
# The targets for the shipped int8 student against the PyTorch fp32 teacher (reported, not gated).
TARGETS = {"accuracy_retention": (">=", 0.99), "speedup_p50": (">=", 8.0), "size_ratio": ("<=", 1 / 6)}
MIB = 2**20


def run(
    cfg: ExportConfig, *, model_cfg: ModelConfig | None = None, workspace: Workspace = Workspace(),
    reject: RejectConfig | None = None,
) -> Produced:
    started = time.time()
    reject = reject or RejectConfig()
    out_dir, reports, metrics_path = workspace.onnx, workspace.reports(STAGE), workspace.metrics(STAGE)
    teacher_dir, student_dir, test_path = workspace.teacher, workspace.student, workspace.test_split
    model_cfg = model_cfg or ModelConfig()
    task, max_length = task_for(model_cfg, STAGE), model_cfg.max_seq_length
    require_rejection(task.outputs.fit_rejection, reject.enabled, task.name)
    if reject.enabled and not cfg.calibrate:
        raise ConfigError("reject.enabled: the rejection threshold is fitted on val with the calibration; set "
                          "export.calibrate: true")
    val_path = workspace.splits / "val.parquet"
    inputs = {"teacher": teacher_dir, "test": test_path} | ({"val": val_path} if cfg.calibrate else {})
    if cfg.source == "student":
        inputs["student"] = student_dir
    test = read_test_split(test_path)
    val = read_test_split(val_path) if cfg.calibrate else None
    oos = read_out_of_scope(workspace.splits) if reject.enabled else {}  # data.oos_file's rows, as split shared them
    inputs |= {name: workspace.splits / f"{name}.parquet" for name in oos}
    if teacher_dir.is_dir():
        require_tokenizer_file(teacher_dir)
    teacher = load_trained_classifier(teacher_dir, torch.device("cpu"), missing_hint=TEACHER_HINT)
    source, id_map, source_dir = load_source(cfg, teacher, student_dir, teacher_dir)
    check_same_model_family(source, teacher, source_dir, teacher_dir)
    check_labels_known(task.label_counts(test["label"]), source.labels, source_dir, test_path)
    if val is not None:
        check_labels_known(task.label_counts(val["label"]), source.labels, source_dir, val_path)
    onnx_export.check_exportable(source.model.model, source_dir)
    texts = list(test["text"])
    print(f"{STAGE}: {cfg.source} ({type(source.model.model).__name__}) -> ONNX; parity on {len(texts)} test rows")
    torch_logits = pytorch_logits(source, texts, cfg, max_length)

    with atomic_dirs(out_dir, reports) as (onnx_tmp, reports_tmp), tempfile.TemporaryDirectory() as scratch:
        write_onnx_dir(task, source, id_map, onnx_tmp, cfg, max_length, source_dir)
        # Verified against meta.json once it exists; here the stage loads the files it has just written.
        fp32 = onnx_predict.load(onnx_tmp, variant="fp32", verify=False)
        fp32_logits = onnx_predict.logits(fp32, texts, batch_size=cfg.batch_size)
        int8 = onnx_predict.load(onnx_tmp, variant="int8", verify=False)
        int8_logits = onnx_predict.logits(int8, texts, batch_size=cfg.batch_size)
        # Fitted before the gates: every model is compared at the shipped calibration (a temperature changes no
        # prediction; multi-label thresholds decide them, so parity is measured at the ones that ship).
        calibration = calibrate(task, int8, val, test, int8_logits, source.labels, cfg, reject, oos)

        def predicted(logits: np.ndarray) -> list:
            return labels_from_logits(task.outputs, logits, source.labels, calibration["fitted"])

        fp32_gate = parity.fp32_gate(
            torch_logits, fp32_logits, test, predicted, max_abs_diff=cfg.max_abs_diff, worst_rows=cfg.worst_rows
        )
        int8_gate = parity.int8_gate(
            fp32_logits, int8_logits, test, predicted, task.score, metric=task.parity_metric,
            max_f1_drop=cfg.max_f1_drop, worst_rows=cfg.worst_rows,
        )
        print(
            f"{STAGE}: parity passed: fp32 max |logit difference| {fp32_gate['max_abs_diff']:.2e}, "
            f"int8 {task.parity_metric} drop {int8_gate['f1_drop_points']:.2f} points"
        )
        # Rejection ships in the calibration (predict and the server reject); the gates above compare classes.
        write_labels(onnx_tmp, task, source.labels, calibration["fitted"] | calibration.get("rejection", {}))
        if calibration["fitted"]:
            print(
                f"{STAGE}: calibration fitted on val: {calibration['fitted']}; test ECE "
                f"{calibration['test_raw']['ece']:.4f} -> {calibration['test_calibrated']['ece']:.4f}, NLL "
                f"{calibration['test_raw']['nll']:.4f} -> {calibration['test_calibrated']['nll']:.4f}"
            )

        variants = {"teacher_pytorch_fp32": pytorch_variant(teacher, teacher_dir, texts, cfg, max_length)}
        if cfg.source == "student":  # the teacher's own ONNX graphs, measured only (never shipped)
            write_onnx_dir(task, with_classifier(teacher), None, Path(scratch), cfg, max_length, teacher_dir)
            for kind in ("fp32", "int8"):
                variants[f"teacher_onnx_{kind}"] = onnx_variant(Path(scratch), kind, texts, cfg)
        shipped_prefix = "student" if cfg.source == "student" else "teacher"
        variants[f"{shipped_prefix}_onnx_fp32"] = onnx_variant(onnx_tmp, "fp32", texts, cfg, fp32_logits)
        variants[f"{shipped_prefix}_onnx_int8"] = onnx_variant(onnx_tmp, "int8", texts, cfg, int8_logits)
        shipped = f"{shipped_prefix}_onnx_int8"
        decide_each_variant(task, variants, shipped_prefix, val, calibration["fitted"], source.labels,
                            teacher=(teacher, Path(scratch)), cfg=cfg, max_length=max_length)
        speed = speed_report(variants, test, task.score, shipped)

        write_json(reports_tmp / "speed.json", speed)
        atomic_write_text(reports_tmp / "speed.md", speed_markdown(speed))
        write_json(reports_tmp / "parity.json", {"fp32_vs_pytorch": fp32_gate, "int8_vs_fp32": int8_gate})
        write_json(reports_tmp / "agreement.json", agreement(variants))
        drift = {
            "int8_vs_teacher": write_drift_report(
                predicted_frame(texts, variants["teacher_pytorch_fp32"]),
                predicted_frame(texts, variants[shipped]), reports_tmp, "int8_vs_teacher",
                "Shipped int8 model vs PyTorch teacher: predicted labels on the test split",
            ),
            "int8_vs_fp32": write_drift_report(
                predicted_frame(texts, variants[f"{shipped_prefix}_onnx_fp32"]),
                predicted_frame(texts, variants[shipped]), reports_tmp, "int8_vs_fp32",
                "int8 vs fp32 ONNX: predicted labels on the test split",
            ),
        }

        metrics = headline_metrics(fp32_gate, int8_gate, speed, shipped, calibration)
        teacher_meta, source_meta = read_meta(teacher_dir), read_meta(source_dir)
        card = card_fields(
            cfg, max_length, source, teacher_meta, source_meta, fp32_gate, int8_gate, speed, test_path, len(texts),
        ) | {"calibration": calibration, "decision": task.outputs.name}
        atomic_write_text(onnx_tmp / "README.md", model_card.render(card))
        write_meta(
            onnx_tmp, stage=STAGE, config=cfg, inputs=inputs, metrics=metrics, started=started,
            extra={
                "source": cfg.source, "labels": source.labels, "exporter": onnx_export.EXPORTER,
                "opset": cfg.opset, "inputs_of_graph": fp32.input_names, "max_length": max_length,
                "quantization": {"method": "onnxruntime dynamic", "weight_type": "QInt8",
                                 "per_channel": cfg.per_channel},
                "vocabulary": {"pruned": id_map is not None,
                               "graph_rows": int(source.model.model.get_input_embeddings().num_embeddings)},
                "parity": {"fp32_vs_pytorch": fp32_gate, "int8_vs_fp32": int8_gate},
                "calibration": calibration, "speed": speed,
                "drift": {name: summary["drift_share"] for name, summary in drift.items()},
                "base_model": card["base_model"], "data_sha256": card["data_sha256"],
                "files": file_hashes(onnx_tmp),  # what tuneforge.inference.onnx_predictor.load verifies before it loads
            },
        )
    write_metrics(metrics_path, metrics)
    ratios = speed["ratios"]
    print(
        f"{STAGE}: {shipped} {speed['models'][shipped]['size_mib']:.1f} MiB, p50 "
        f"{speed['models'][shipped]['p50_ms']:.2f} ms: {ratios['speedup_p50']:.1f}x faster and "
        f"{1 / ratios['size_ratio']:.1f}x smaller than the PyTorch teacher, accuracy retention "
        f"{ratios['accuracy_retention']:.4f}"
    )
    return Produced(
        stage=STAGE, outputs={"onnx": out_dir, "reports": reports, "metrics": metrics_path}, inputs=inputs,
        metrics=metrics,
    )


def load_source(cfg: ExportConfig, teacher: Classifier, student_dir: Path, teacher_dir: Path):
    """(Classifier whose model is tokenizer ids -> logits, id map or None, its directory)."""
    if cfg.source == "teacher":
        return with_classifier(teacher), None, teacher_dir
    student, id_map = load_student(student_dir)
    return student, id_map, student_dir


def check_same_model_family(source: Classifier, teacher: Classifier, source_dir: Path, teacher_dir: Path) -> None:
    """The student must speak the teacher's labels and tokenizer: its id map was built on the teacher's ids."""
    if source.labels != teacher.labels:
        raise StageError(
            f"{source_dir}: its labels differ from {teacher_dir}'s ({len(source.labels)} vs {len(teacher.labels)} "
            "labels, or another order); rerun the distill stage"
        )
    if source.tokenizer.get_vocab() != teacher.tokenizer.get_vocab():
        raise StageError(
            f"{source_dir}: its tokenizer does not match {teacher_dir}'s ({len(source.tokenizer)} vs "
            f"{len(teacher.tokenizer)} tokens, or other ids); rerun the distill stage"
        )


def with_classifier(classifier: Classifier) -> Classifier:
    """The same classifier with its model behind the export signature (ids in, logits out)."""
    if hasattr(classifier.model, "id_map"):
        return classifier
    return Classifier(
        model=with_id_map(classifier.model, None), tokenizer=classifier.tokenizer, labels=classifier.labels,
        path=classifier.path, device=classifier.device,
    )


def write_onnx_dir(
    task: Task, source: Classifier, id_map, directory: Path, cfg: ExportConfig, max_length: int, where: Path
) -> None:
    """Tokenizer, labels.json (the task's decision rule, not yet calibrated), model.onnx and model.int8.onnx."""
    onnx_export.write_tokenizer(source.tokenizer, directory, max_length)
    write_labels(directory, task, source.labels, NO_CALIBRATION)
    fp32_path, int8_path = directory / onnx_predict.MODEL_FILES["fp32"], directory / onnx_predict.MODEL_FILES["int8"]
    onnx_export.export_fp32(
        source.model, source.tokenizer, fp32_path, outputs=task.onnx_outputs, opset=cfg.opset, max_length=max_length,
        where=where,
    )
    rows = len(id_map) if id_map is not None else source.model.model.get_input_embeddings().num_embeddings
    onnx_export.set_metadata(fp32_path, {"vocab_size": rows, "labels": json.dumps(source.labels)})
    onnx_export.quantize_int8(fp32_path, int8_path, per_channel=cfg.per_channel)
    onnx_export.set_metadata(int8_path, {"vocab_size": rows, "labels": json.dumps(source.labels)})


def write_labels(directory: Path, task: Task, labels: list[str], calibration: dict) -> None:
    """labels.json: the label of each output, the rule that turns outputs into predictions, its calibration."""
    content = {"labels": labels, "decision": task.outputs.name}
    write_json(directory / onnx_predict.LABELS_FILE, content | ({"calibration": calibration} if calibration else {}))
    if task.outputs.report_file and calibration:  # for people: the calibration by label name, and how it was chosen
        write_json(directory / task.outputs.report_file, task.outputs.describe(calibration, labels))


def calibrate(
    task: Task, int8, val, test, test_logits: np.ndarray, labels: list[str], cfg: ExportConfig, reject: RejectConfig,
    oos: dict,
) -> dict:
    """The shipped int8 model's calibration fitted on val (none with export.calibrate false), and its effect on
    the test rows: ECE and NLL with raw and with calibrated scores; with reject.enabled, the rejection threshold
    fitted on the calibrated val scores and the share of test rows it rejects."""
    fitted, rule = {}, task.outputs
    found = {}
    if val is not None:
        val_logits = onnx_predict.logits(int8, list(val["text"]), batch_size=cfg.batch_size)
        fitted = rule.fit(val_logits, task.targets(val, labels))
        if reject.enabled:
            found |= fit_shipped_rejection(int8, rule, fitted, val, val_logits, test, test_logits, labels, cfg,
                                           reject, oos)
    truth, bins = task.targets(test, labels), cfg.calibration_bins

    def measured(calibration) -> dict:
        found = task.measure_calibration(test_logits, calibration, truth, bins)
        return {"ece": found["ece"], "nll": found["nll"]}

    return {"fitted": fitted, "fitted_on": "val" if val is not None else None,
            "test_raw": measured(NO_CALIBRATION), "test_calibrated": measured(fitted), **found}


def fit_shipped_rejection(
    int8, rule, fitted: dict, val, val_logits: np.ndarray, test, test_logits: np.ndarray, labels: list[str],
    cfg: ExportConfig, reject: RejectConfig, oos: dict,
) -> dict:
    """The int8 model's own rejection threshold (as evaluate fits the teacher's), the share of in-scope test rows
    it rejects, and with out-of-scope test rows the open-set metrics the shipped model reaches."""
    def scores_of(frame) -> np.ndarray:
        return rule.scores(onnx_predict.logits(int8, list(frame["text"]), batch_size=cfg.batch_size), fitted)

    oos_scores = {name: scores_of(rows) for name, rows in oos.items() if len(rows)}
    test_scores = rule.scores(test_logits, fitted)
    rejection = choose_rejection(rule, reject, rule.scores(val_logits, fitted), list(val["label"]),
                                 oos_scores.get("oos_val"), labels)
    rejected = rejected_rows(test_scores, rejection)
    found = {"rejection": rejection, "rejection_fit": reject.fit, "test_rejected_share": float(rejected.mean())}
    if "oos_test" in oos_scores:
        found["open_set"] = open_set_metrics(
            list(test["label"]), rule.predicted(test_scores, labels, fitted), rejected,
            rule.predicted(oos_scores["oos_test"], labels, fitted), rejected_rows(oos_scores["oos_test"], rejection),
            reject.label, labels,
        )
    return found


def pytorch_logits(source: Classifier, texts: list[str], cfg: ExportConfig, max_length: int) -> np.ndarray:
    """The source model's logits on `texts`, padded batches grouped by length, as the ONNX side runs them."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(source.labels)), dtype=np.float32)
    names = onnx_export.input_names(source.tokenizer)
    with torch.inference_mode():
        for start in range(0, len(order), cfg.batch_size):
            rows = order[start:start + cfg.batch_size]
            batch = source.tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                return_tensors="pt",
            )
            out[rows] = source.model(*(batch[name] for name in names)).float().numpy()
    return out


def pytorch_variant(
    teacher: Classifier, teacher_dir: Path, texts: list[str], cfg: ExportConfig, max_length: int
) -> dict:
    """Speed, size and logits of the plain PyTorch teacher (the Hugging Face model, fp32, CPU)."""
    def encode(batch):
        return dict(teacher.tokenizer(batch, padding=True, truncation=True, max_length=max_length,
                                      return_tensors="pt"))

    singles = [encode([text]) for text in texts[:cfg.benchmark_runs]]
    batches = chunks(texts, cfg.throughput_batch_size)
    with torch_threads(cfg.threads):
        timing = measure(
            torch_runner(teacher.model), singles, [encode(b) for b in batches], [len(b) for b in batches],
            runs=cfg.benchmark_runs, warmup=cfg.benchmark_warmup,
        )
        logits = pytorch_logits(with_classifier(teacher), texts, cfg, max_length)
    size = sum(path.stat().st_size for path in Path(teacher_dir).glob("*.safetensors"))
    return {**timing, "size_bytes": size, "logits": logits, "file": "model.safetensors"}


def onnx_variant(directory: Path, kind: str, texts: list[str], cfg: ExportConfig, logits=None) -> dict:
    classifier = onnx_predict.load(directory, variant=kind, threads=cfg.threads, verify=False)
    singles = [onnx_predict.encode(classifier, [text]) for text in texts[:cfg.benchmark_runs]]
    batches = chunks(texts, cfg.throughput_batch_size)
    timing = measure(
        onnx_runner(classifier.session), singles, [onnx_predict.encode(classifier, b) for b in batches],
        [len(b) for b in batches], runs=cfg.benchmark_runs, warmup=cfg.benchmark_warmup,
    )
    if logits is None:
        logits = onnx_predict.logits(classifier, texts, batch_size=cfg.batch_size)
    path = directory / onnx_predict.MODEL_FILES[kind]
    return {**timing, "size_bytes": path.stat().st_size, "logits": logits, "file": path.name}


def decide_each_variant(
    task: Task, variants: dict, shipped_prefix: str, val, shipped: dict, labels: list[str], *, teacher, cfg, max_length
) -> None:
    """Each variant's predicted labels on test (`predicted`), by the shipped calibration; where the calibration
    decides predictions (multi-label thresholds), the teacher's variants by their own, fitted on val as
    evaluate fits the teacher's (judged at the student's thresholds, the teacher would look worse than it is)."""
    rule, own = task.outputs, {name: shipped for name in variants}
    if rule.calibration_decides and val is not None:
        (classifier, scratch), val_texts, targets = teacher, list(val["text"]), task.targets(val, labels)
        val_logits = {"teacher_pytorch_fp32": pytorch_logits(with_classifier(classifier), val_texts, cfg, max_length)}
        val_logits |= {name: onnx_predict.logits(onnx_predict.load(scratch, variant=name.rsplit("_", 1)[1],
                                                                   verify=False), val_texts, batch_size=cfg.batch_size)
                       for name in variants if name.startswith("teacher_onnx_") and shipped_prefix != "teacher"}
        own |= {name: rule.fit(found, targets) for name, found in val_logits.items()}
    for name, variant in variants.items():
        variant["predicted"] = labels_from_logits(rule, variant["logits"], labels, own[name])


def speed_report(variants: dict, test: pd.DataFrame, score, shipped: str) -> dict:
    """Speed, size and the task's scores of every variant (its `predicted` labels); `score`: the task's."""
    truth = list(test["label"])
    teacher_pred = variants["teacher_pytorch_fp32"]["predicted"]
    models = {}
    for name, variant in variants.items():
        labels = variant["predicted"]
        scores = score(truth, labels)
        models[name] = {
            **{key: value for key, value in variant.items() if key not in ("logits", "predicted")},
            "size_mib": round(variant["size_bytes"] / MIB, 3),
            "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
            "agreement_with_teacher": _agreement(labels, teacher_pred),
        }
    base, ours = models["teacher_pytorch_fp32"], models[shipped]
    ratios = {
        "speedup_p50": round(base["p50_ms"] / ours["p50_ms"], 3),
        "speedup_p95": round(base["p95_ms"] / ours["p95_ms"], 3),
        "throughput_ratio": round(ours["throughput_rows_per_s"] / base["throughput_rows_per_s"], 3),
        "size_ratio": round(ours["size_bytes"] / base["size_bytes"], 4),
        "accuracy_retention": round(ours["accuracy"] / base["accuracy"], 4) if base["accuracy"] else 0.0,
    }
    targets = {
        name: {"target": f"{op} {value:.4g}", "value": ratios[name],
               "met": ratios[name] >= value if op == ">=" else ratios[name] <= value}
        for name, (op, value) in TARGETS.items()
    }
    return {
        "shipped": shipped, "baseline": "teacher_pytorch_fp32", "test_rows": len(truth),
        "threads": torch.get_num_threads(), "models": models, "ratios": ratios, "targets": targets,
        "note": "model time only (tokenization excluded); batch-1 inputs are real test texts, unpadded",
    }


def speed_markdown(speed: dict) -> str:
    lines = [
        f"# Speed and size (test split, {speed['test_rows']} rows)", "",
        "| model | file | size MiB | batch-1 p50 ms | batch-1 p95 ms | rows/s | accuracy | macro-F1 | agrees with "
        "teacher |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in speed["models"].items():
        lines.append(
            f"| {name} | {row['file']} | {row['size_mib']:.2f} | {row['p50_ms']:.3f} | {row['p95_ms']:.3f} | "
            f"{row['throughput_rows_per_s']:.0f} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | "
            f"{row['agreement_with_teacher']:.4f} |"
        )
    lines += ["", f"{speed['shipped']} vs {speed['baseline']}:", ""]
    for name, target in speed["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"- {name}: {target['value']} (target {target['target']}: {verdict})")
    lines += [f"- {name}: {value}" for name, value in speed["ratios"].items() if name not in speed["targets"]]
    lines += ["", speed["note"], ""]
    return "\n".join(lines)


def agreement(variants: dict) -> dict:
    labels = {name: variant["predicted"] for name, variant in variants.items()}
    return {a: {b: round(_agreement(labels[a], labels[b]), 6) for b in labels} for a in labels}


def _agreement(a: list, b: list) -> float:
    """The share of rows on which two models predict the same."""
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)]))


def predicted_frame(texts: list[str], variant: dict) -> pd.DataFrame:
    return pd.DataFrame({"text": texts, "label": variant["predicted"]})


def headline_metrics(fp32_gate: dict, int8_gate: dict, speed: dict, shipped: str, calibration: dict) -> dict:
    ours = speed["models"][shipped]
    return {
        "ece": calibration["test_raw"]["ece"], "ece_calibrated": calibration["test_calibrated"]["ece"],
        "parity_passed": bool(fp32_gate["passed"] and int8_gate["passed"]),
        "fp32_max_abs_diff": fp32_gate["max_abs_diff"], "fp32_top1_mismatches": fp32_gate["top1_mismatches"],
        "int8_f1_drop_points": int8_gate["f1_drop_points"], "accuracy": ours["accuracy"],
        "macro_f1": ours["macro_f1"], "p50_ms": ours["p50_ms"], "p95_ms": ours["p95_ms"],
        "throughput_rows_per_s": ours["throughput_rows_per_s"], "size_mib": ours["size_mib"],
        **{f"vs_teacher_{name}": value for name, value in speed["ratios"].items()},
        **({"reject_below": calibration["rejection"]["reject_below"],
            "test_rejected_share": calibration["test_rejected_share"]} if "rejection" in calibration else {}),
        **calibration.get("open_set", {}),
    }


def card_fields(
    cfg, max_length, source, teacher_meta, source_meta, fp32_gate, int8_gate, speed, test_path, rows
) -> dict:
    shipped = speed["models"][speed["shipped"]]
    # The data the shipped model learnt from: the student's inputs when it is one, else the teacher's.
    recorded = {**(teacher_meta.get("inputs") or {}), **(source_meta.get("inputs") or {})}
    base = (teacher_meta.get("base_model") or {}).get("id") or "unknown"
    student = {}
    if cfg.source == "student":
        student = {
            "kept_layers": (source_meta.get("student") or {}).get("kept_layers"),
            "pruned": (source_meta.get("vocabulary") or {}).get("pruned"),
            "vocabulary_kept": (source_meta.get("vocabulary") or {}).get("kept"),
        }
    return {
        "name": f"tuneforge {cfg.source} ({base.split('/')[-1]})", "base_model": base, "labels": source.labels,
        "source": cfg.source, "metrics": {"accuracy": shipped["accuracy"], "macro_f1": shipped["macro_f1"]},
        "test_rows": rows,
        "data_sha256": {
            "train": (recorded.get("train") or {}).get("sha256"),
            "val": (recorded.get("val") or {}).get("sha256"),
            "test": sha256_file(test_path),
        },
        "checkpoint": {
            "teacher": (teacher_meta.get("best") or {}).get("metric"),
            "student": (source_meta.get("best") or {}).get("metric") if cfg.source == "student" else None,
        },
        "parity": {"fp32": fp32_gate, "int8": int8_gate},
        "speed": {name: row for name, row in speed["models"].items()},
        "throughput_batch_size": cfg.throughput_batch_size, "max_length": max_length, "student": student,
    }


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.export, model_cfg=p.model, reject=p.reject), argv)


if __name__ == "__main__":
    raise SystemExit(main())
