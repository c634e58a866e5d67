"""Stage `evaluate`: the trained model on the test split, and side by side with the production model.

Inputs: models/teacher (a Hugging Face classification directory, with the task's head: a label per text or per
token) and data/splits/test.parquet (text, label, source_row). When the registry holds
`registry.model_name@evaluate.compare_alias`, the model directory of that version (role `evaluate.compare_role`) is
evaluated on the same rows.

What varies with model.task comes from the task (tuneforge/tasks): its metrics, its per-label table, and its
output rule with the calibration fitted on val (single-label: a softmax temperature; multi-label: per-label
thresholds, which decide the predictions scored here; token classification: a softmax temperature over every
word's tags). Confusion files and the Evidently report are written for tasks that have them (single-label);
multi-label adds mean average precision; token classification writes its entity error table instead of the Evidently
report (errors.{csv,json,md}), a row being a sentence (`correct`: every tag of it right; `confidence`: its least sure
word's).

Outputs, replaced atomically:
    reports/evaluate/metrics.json           every number below in one file
    reports/evaluate/summary.md             headline metrics and the comparison, for people
    reports/evaluate/per_class.csv          precision, recall, f1, support, predicted count per label (token
                                            classification: per entity type, entities counted)
    reports/evaluate/confusion_matrix.png   counts, coloured by share of the true label (for people)
    reports/evaluate/confusion_matrix.csv   the count matrix: one row per true label, one column per predicted
    reports/evaluate/confusion_matrix.json  labels, matrix, and one {actual, predicted} row per test row
                                            (the form `dvc plots` draws with its confusion template)
    reports/evaluate/reliability.{png,json} calibration: accuracy vs mean confidence per bin, and the ECE,
                                            as trained and (reliability_calibrated.png) with the temperature
                                            fitted on the val split (the rule's calibration, as export ships it)
    reports/evaluate/confusions.md          the most frequent confusions with their most confident examples
    reports/evaluate/comparison.json        deltas per metric and per class, McNemar's test (only when compared)
    reports/evaluate/classification.{html,json}  Evidently classification report (production as reference)
    reports/evaluate/errors.{csv,json,md}   token classification instead: every entity error (missed, spurious,
                                            wrong type, wrong boundary, both), counts per kind and entity type,
                                            examples (with the production model's counts when compared)
    reports/evaluate/predictions.parquet    text, label, predicted, confidence, correct, calibrated_confidence,
                                            source_row
    reports/evaluate/oos_predictions.parquet  with out-of-scope test rows (data.oos_file): text, label as given,
                                            predicted, calibrated_confidence, rejected
    reports/evaluate/meta.json              config, inputs and their hashes, metrics, device, timings
    reports/metrics/evaluate.json           headline metrics (DVC metrics), with the test split's sha256
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from registry.config import RegistryConfig
from tuneforge.base.errors import StageError
from tuneforge.base.layout import Workspace
from tuneforge.base.outputs import Produced, atomic_dirs, sha256_file, write_json, write_meta, write_metrics
from tuneforge.base.secrets import mask_url
from tuneforge.base.spec import EvaluateConfig, ModelConfig, RejectConfig, shown_value
from tuneforge.data.out_of_scope import read_out_of_scope
from tuneforge.evaluation import metrics as m
from tuneforge.evaluation.open_set import choose_rejection, open_set_metrics
from tuneforge.evaluation.plots import confusion_png, matplotlib_missing, reliability_png
from tuneforge.evaluation.test_split import check_labels_known, read_test_split
from tuneforge.inference.outputs import NO_CALIBRATION
from tuneforge.inference.rejection import rejected_rows, require_rejection
from tuneforge.inference.torch_predictor import (
    Classifier,
    Predictions,
    count_parameters,
    load_trained_classifier,
    pick_device,
    predict,
    predicts_label_sets,
)
from tuneforge.pipeline.runner import stage_main
from tuneforge.tasks import Task, task_for

STAGE = "evaluate"
EXAMPLE_CHARS = 300  # longer example texts are cut in confusions.md


def run(
    cfg: EvaluateConfig,
    registry_cfg: RegistryConfig | None = None,
    *,
    model_cfg: ModelConfig | None = None,
    workspace: Workspace = Workspace(),
    reject: RejectConfig | None = None,
) -> Produced:
    started = time.time()
    reject = reject or RejectConfig()
    model_dir, test_path, val_path = workspace.teacher, workspace.test_split, workspace.splits / "val.parquet"
    reports, metrics_path = workspace.reports(STAGE), workspace.metrics(STAGE)
    registry_cfg = registry_cfg or RegistryConfig()
    model_cfg = model_cfg or ModelConfig()
    task, max_length = task_for(model_cfg, STAGE), model_cfg.max_seq_length
    require_rejection(task.outputs.fit_rejection, reject.enabled, task.name)
    test, val = read_test_split(test_path), read_test_split(val_path)
    counts = {"test": label_counts(task, test, test_path), "val": label_counts(task, val, val_path)}
    device = pick_device(cfg.device, "evaluate.device")
    candidate = load_trained_classifier(
        model_dir, device, missing_hint="run train first (python -m stages.train)", head=task.model_head
    )
    check_labels_known(counts["test"], counted_names(task, candidate.labels), model_dir, test_path, task.counted)
    check_labels_known(counts["val"], counted_names(task, candidate.labels), model_dir, val_path, task.counted)
    comparison_status, baseline_dir = find_baseline(cfg, registry_cfg)
    baseline = load_baseline(baseline_dir, device, comparison_status, task) if baseline_dir is not None else None
    if baseline is not None:
        check_same_kind_of_head(candidate, baseline, comparison_status)

    print(f"{STAGE}: {model_dir} on {len(test)} test rows ({device.type})")
    # Out-of-scope rows (data.oos_file, as split shared them) are scored only by a rejecting model.
    oos = read_out_of_scope(workspace.splits) if reject.enabled else {}

    def infer(classifier: Classifier, texts: list[str]) -> Predictions:
        if task.predict is not None:  # the task reads its own inputs (token classification: words, in windows)
            return task.predict(classifier, texts, batch_size=cfg.batch_size, max_length=max_length,
                                stride=model_cfg.stride)
        return predict(classifier, texts, batch_size=cfg.batch_size, max_length=max_length)

    scored = score(task, candidate, test, val, cfg, infer, reject, oos)
    compared = None
    if baseline is not None:
        print(f"{STAGE}: also {comparison_status['ref']} (version {comparison_status['version']})")
        compared = compare(
            task, scored, score(task, baseline, test, val, cfg, infer, reject, oos), cfg, comparison_status
        )

    test_sha256 = sha256_file(test_path)
    headline = headline_metrics(task, scored, len(test), test_sha256, compared or comparison_status)
    inputs = {"model": model_dir, "test": test_path, "val": val_path}
    inputs |= {name: workspace.splits / f"{name}.parquet" for name in oos}
    inputs |= {"baseline_model": baseline_dir} if baseline_dir else {}
    figures = matplotlib_missing()
    with atomic_dirs(reports) as (out,):
        write_reports(out, task, scored, compared, comparison_status, cfg, figures)
        write_json(out / "metrics.json", full_metrics(headline, scored, compared or comparison_status))
        write_meta(
            out, stage=STAGE, config=cfg, inputs=inputs, metrics=headline,
            started=started,
            extra={
                "labels": candidate.labels, "device": device.type,
                "model": {"path": str(model_dir), "parameters": count_parameters(candidate.model)},
                "inference": {"max_seq_length": max_length, "seconds": round(scored["seconds"], 3),
                              "rows_per_second": round(len(test) / max(scored["seconds"], 1e-9), 1)},
                "comparison": {key: comparison_status[key] for key in comparison_status if key != "path"},
                "figures": figures or "png",
            },
        )
    # After the rename: a failure above leaves the previous metrics beside the previous reports.
    write_metrics(metrics_path, headline)
    shown = ", ".join(f"{name} {headline[name]:.4f}" for name in task.metrics if name in headline)
    print(
        f"{STAGE}: {shown}, ECE {headline['ece']:.4f}, calibrated {headline['ece_calibrated']:.4f} "
        f"({_calibration_note(scored['calibration'])}); "
        f"comparison: {comparison_status['message']}"
    )
    return Produced(
        stage=STAGE, outputs={"reports": reports, "metrics": metrics_path}, inputs=inputs, metrics=headline
    )


# ---- the production model, from the registry ----

def find_baseline(cfg: EvaluateConfig, registry_cfg: RegistryConfig) -> tuple[dict, Path | None]:
    """({status, message, ...}, model directory or None). Status: compared, disabled, no_registry, or
    no_production_model. A registry that exists but cannot be read is an error, never a silent skip."""
    if cfg.compare_alias is None:
        return {"status": "disabled", "message": "off (evaluate.compare_alias is null)"}, None
    ref = f"{registry_cfg.model_name}@{cfg.compare_alias}"
    absent = absent_registry(registry_cfg.url)
    if absent is not None:
        return {"status": "no_registry", "ref": ref, "message": f"no registry yet ({absent}): nothing to compare"}, None

    from registry import api  # SQLAlchemy and the registry load only when there is one to read
    from registry.errors import RegistryError

    try:
        model = next((m for m in api.models(config=registry_cfg) if m["name"] == registry_cfg.model_name), None)
        version = (model or {}).get("aliases", {}).get(cfg.compare_alias)
        if version is None:
            return {"status": "no_production_model", "ref": ref,
                    "message": f"no {ref} in the registry: nothing to compare"}, None
        # By version number, not alias: the alias may move while we read, the version cannot.
        folder = api.resolve(f"{registry_cfg.model_name}:{version}", config=registry_cfg)
    except RegistryError as exc:
        raise StageError(f"registry {mask_url(registry_cfg.url)}: cannot look up {ref}: {exc.message}") from None
    model_dir = folder / cfg.compare_role
    if not model_dir.is_dir():
        roles = ", ".join(sorted(p.name for p in folder.iterdir() if p.is_dir())) or "none"
        raise StageError(
            f"{ref} (version {version}) has no role '{cfg.compare_role}' holding a model directory "
            f"(evaluate.compare_role); its roles: {roles}"
        )
    status = {"status": "compared", "ref": ref, "model": registry_cfg.model_name, "alias": cfg.compare_alias,
              "version": int(version), "role": cfg.compare_role, "path": str(model_dir),
              "message": f"compared with {ref} (version {version})"}
    return status, model_dir


def load_baseline(model_dir: Path, device, status: dict, task: Task) -> Classifier:
    """The compared version's classifier; a failure names the version, not only its folder in the cache."""
    try:
        return load_trained_classifier(
            model_dir, device, missing_hint="the registry's copy is incomplete", head=task.model_head
        )
    except StageError as exc:
        raise StageError(
            f"{status['ref']} (version {status['version']}, role {status['role']}) cannot be evaluated: "
            f"{exc.message}"
        ) from None


def check_same_kind_of_head(candidate: Classifier, baseline: Classifier, status: dict) -> None:
    """One label per text and a set of labels are different problems: their scores cannot be compared."""
    kinds = [predicts_label_sets(model) for model in (candidate, baseline)]
    if kinds[0] != kinds[1]:
        shown = ["a set of labels per text" if kind else "one label per text" for kind in kinds]
        raise StageError(
            f"{status['ref']} (version {status['version']}) predicts {shown[1]} and the candidate {shown[0]}: they "
            "cannot be compared; set evaluate.compare_alias to null, or register this task's models under another "
            "registry.model_name"
        )


def absent_registry(url: str) -> str | None:
    """The SQLite file of `url` when it does not exist yet (a registry nobody has written to), else None.

    Opening it would create an empty registry as a side effect; a server URL is always opened."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StageError(f"registry.url: not a valid SQLAlchemy URL: {shown_value(url)}") from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return None if Path(parsed.database).exists() else parsed.database


# ---- scoring ----

def label_counts(task: Task, frame: pd.DataFrame, path: Path) -> pd.Series:
    """The task's label_counts of a split, a label cell it cannot read refused with the file's name."""
    try:
        return task.label_counts(frame["label"])
    except StageError as exc:
        raise StageError(f"{path}: {exc.message}") from None


def counted_names(task: Task, labels: list[str]) -> list[str]:
    """What the model's labels stand for in the task's label_counts (token classification: entity types)."""
    return task.counted_names(labels) if task.counted_names is not None else labels


def score(
    task: Task, classifier: Classifier, test: pd.DataFrame, val: pd.DataFrame, cfg: EvaluateConfig,
    infer: Callable[[Classifier, list[str]], Predictions], reject: RejectConfig, oos: dict[str, pd.DataFrame],
) -> dict:
    """Predictions and every metric of one model on the test rows (`infer`: the model's logits of texts), with
    its calibration fitted on the val rows (the output rule's fit: a softmax temperature, or multi-label
    thresholds) and the scores' reliability as trained and as calibrated. Predictions are the calibrated rule's
    (a temperature never changes them; thresholds decide them). A model that does not know every label of both
    splits (a production model with another label set) is not calibrated, and is compared on the rest.
    With `reject.enabled`, the rejection threshold is fitted on the calibrated val scores too; the predictions
    and metrics above stay the classifier's, and the rejection's own numbers are added (rejection_metrics); with
    out-of-scope test rows (`oos`, from data.oos_file) the open-set ones too (tuneforge/evaluation/open_set.py)."""
    def logits_of(frame: pd.DataFrame):
        return infer(classifier, frame["text"].tolist())

    predictions, rule, labels = logits_of(test), task.outputs, classifier.labels
    used = set(task.label_counts(test["label"]).index) | set(task.label_counts(val["label"]).index)
    knows_every_label = used <= set(counted_names(task, labels))
    val_logits = logits_of(val).logits if knows_every_label else None
    calibration = rule.fit(val_logits, task.targets(val, labels)) if knows_every_label else None
    scores = rule.scores(predictions.logits, NO_CALIBRATION)
    calibrated_scores = rule.scores(predictions.logits, calibration or NO_CALIBRATION)
    frame = test.copy()
    frame["predicted"] = rule.predicted(calibrated_scores, labels, calibration or NO_CALIBRATION)
    frame["confidence"] = rule.confidence(scores)  # the highest score, as trained (a sentence: its least sure word's)
    frame["correct"] = frame["predicted"] == frame["label"]
    truth, predicted = list(frame["label"]), list(frame["predicted"])
    matrix = task.confusion(truth, predicted, labels) if task.confusion else None
    scored = {
        "labels": labels,
        "frame": frame,
        "seconds": predictions.seconds,
        "metrics": task.score(truth, predicted),
        "calibration": calibration,
        "per_class": task.per_label_table(truth, predicted, labels),
        "matrix": matrix,
        "confusions": m.top_confusions(frame, cfg.top_confusions, cfg.examples_per_confusion) if task.confusion else [],
    }
    if calibration is None:
        return scored
    targets, bins = task.targets(test, labels), cfg.calibration_bins
    raw = task.measure_calibration(predictions.logits, NO_CALIBRATION, targets, bins)
    fitted = task.measure_calibration(predictions.logits, calibration, targets, bins)
    frame["calibrated_confidence"] = rule.confidence(calibrated_scores)
    scored["metrics"] |= {"ece": raw["ece"], "nll": raw["nll"],
                          "ece_calibrated": fitted["ece"], "nll_calibrated": fitted["nll"]}
    if task.ranking_metrics:
        scored["metrics"] |= task.ranking_metrics(calibrated_scores, targets)
    scored["bins"], scored["bins_calibrated"] = raw["bins"], fitted["bins"]
    if reject.enabled:
        val_scores = rule.scores(val_logits, calibration)
        oos_scores = {name: rule.scores(logits_of(rows).logits, calibration) for name, rows in oos.items() if len(rows)}
        rejecting = choose_rejection(rule, reject, val_scores, list(val["label"]), oos_scores.get("oos_val"), labels)
        frame["rejected"] = rejected_rows(calibrated_scores, rejecting)
        scored["rejection"] = rejecting | {
            "fit": reject.fit, "keep_in_scope": reject.keep_in_scope,
            "fitted_on": "val and out-of-scope val" if reject.fit == "oos" else "val",
            "val_kept": float(1 - rejected_rows(val_scores, rejecting).mean()),
        }
        scored["metrics"] |= rejection_metrics(frame)
        if "oos_test" in oos_scores:
            oos_frame = oos["oos_test"].copy()
            oos_frame["predicted"] = rule.predicted(oos_scores["oos_test"], labels, calibration)
            oos_frame["calibrated_confidence"] = rule.confidence(oos_scores["oos_test"])
            oos_frame["rejected"] = rejected_rows(oos_scores["oos_test"], rejecting)
            scored["oos_frame"] = oos_frame
            scored["metrics"] |= open_set_metrics(
                truth, predicted, frame["rejected"], list(oos_frame["predicted"]), oos_frame["rejected"],
                reject.label, labels,
            )
    return scored


def rejection_metrics(frame: pd.DataFrame) -> dict:
    """On the (in-scope) test rows: the share rejected, the accuracy of the rows answered, and the accuracy with
    a rejected row counted wrong (what a user of the rejecting model sees)."""
    accepted = ~frame["rejected"]
    return {
        "rejected_share": float(frame["rejected"].mean()),
        "accepted_accuracy": float(frame.loc[accepted, "correct"].mean()) if accepted.any() else 0.0,
        "in_scope_accuracy": float((frame["correct"] & accepted).mean()),
    }


def compare(task: Task, candidate: dict, baseline: dict, cfg: EvaluateConfig, status: dict) -> dict:
    """Deltas (candidate - production) per metric and per class, and McNemar's test on the paired rows."""
    labels = candidate["labels"]
    baseline_per_class = task.per_label_table(
        list(candidate["frame"]["label"]), list(baseline["frame"]["predicted"]), labels
    )
    per_class = m.per_class_deltas(candidate["per_class"], baseline_per_class)
    test = m.mcnemar_test(candidate["frame"]["correct"], baseline["frame"]["correct"])
    better = None
    if test["p_value"] < cfg.significance_level:
        better = "candidate" if test["only_candidate_correct"] > test["only_baseline_correct"] else "production"
    return {
        **{key: status[key] for key in ("status", "ref", "model", "alias", "version", "role", "message")},
        "test_rows": len(candidate["frame"]),
        "metrics": m.metric_deltas(candidate["metrics"], baseline["metrics"]),
        "per_class": per_class.to_dict(orient="records"),
        "mcnemar": test | {"significance_level": cfg.significance_level,
                           "significant": test["p_value"] < cfg.significance_level, "better": better},
        "agreement": float((candidate["frame"]["predicted"] == baseline["frame"]["predicted"]).mean()),
        "labels_only_in_candidate": sorted(set(labels) - set(baseline["labels"])),
        "labels_only_in_production": sorted(set(baseline["labels"]) - set(labels)),
        "baseline_frame": baseline["frame"],
    }


def headline_metrics(task: Task, scored: dict, rows: int, test_sha256: str, comparison: dict) -> dict:
    headline = {**scored["metrics"], "test_rows": rows, "test_sha256": test_sha256,
                "comparison": comparison["status"]}
    if comparison["status"] == "compared":
        deltas = comparison["metrics"]
        # accuracy and macro-F1 where the task has them, and always its primary metric (champion/challenger)
        shown = [name for name in dict.fromkeys(("accuracy", "macro_f1", task.primary_metric)) if name in deltas]
        headline |= {
            "production_version": comparison["version"],
            **{f"delta_{name}": deltas[name]["delta"] for name in shown},
            "mcnemar_p_value": comparison["mcnemar"]["p_value"],
        }
    return headline


def full_metrics(headline: dict, scored: dict, comparison: dict) -> dict:
    return {
        **headline,
        "labels": scored["labels"],
        "per_class": {row["label"]: {k: v for k, v in row.items() if k != "label"}
                      for row in scored["per_class"].to_dict(orient="records")},
        "calibration": {
            "bins": len(scored["bins"]), "fitted_on": "val", "fitted": scored["calibration"],
            **{key: scored["metrics"][key] for key in ("ece", "ece_calibrated", "nll", "nll_calibrated")},
        },
        "top_confusions": [{k: v for k, v in c.items() if k != "examples"} for c in scored["confusions"]],
        "comparison_detail": _public(comparison),
        **({"rejection": scored["rejection"]} if "rejection" in scored else {}),
    }


def _calibration_note(calibration: dict | None) -> str:
    fitted = ", ".join(f"{key} {_few_numbers(value)}" for key, value in (calibration or {}).items())
    return f"fitted on val: {fitted}" if fitted else "nothing fitted: val cannot pin a calibration, scores as trained"


def _few_numbers(value) -> str:
    if isinstance(value, list):  # one per label
        return f"{min(value):.3g}-{max(value):.3g} over {len(value)} labels"
    return f"{value:.3g}"


def _public(comparison: dict) -> dict:
    return {key: value for key, value in comparison.items() if key not in ("baseline_frame", "path", "per_class")}


# ---- writing ----

def write_reports(out: Path, task: Task, scored: dict, compared: dict | None, status: dict, cfg: EvaluateConfig,
                  figures_skipped: str | None) -> None:
    frame = scored["frame"]
    scored["per_class"].to_csv(out / "per_class.csv", index=False)
    if scored["matrix"] is not None:
        write_confusion(out, scored, figures_skipped)
    write_json(out / "reliability.json", {
        "ece": scored["metrics"]["ece"], "n_bins": len(scored["bins"]),
        # Only non-empty bins: `dvc plots` draws these points (x: confidence, y: accuracy).
        "bins": [row for row in scored["bins"] if row["count"]],
        "empty_bins": [row["bin"] for row in scored["bins"] if not row["count"]],
        "calibrated": {
            "fitted_on": "val", **scored["calibration"], "ece": scored["metrics"]["ece_calibrated"],
            "bins": [row for row in scored["bins_calibrated"] if row["count"]],
        },
    })
    if figures_skipped is None:
        reliability_png(scored["bins"], scored["metrics"]["ece"], out / "reliability.png")
        reliability_png(scored["bins_calibrated"], scored["metrics"]["ece_calibrated"],
                        out / "reliability_calibrated.png", note=_calibration_note(scored["calibration"]))

    predictions = frame[["text", "label", "predicted", "confidence", "correct", "calibrated_confidence"]
                        + [column for column in ("rejected", "source_row") if column in frame.columns]].copy()
    if compared is not None:
        predictions["production_predicted"] = compared["baseline_frame"]["predicted"].to_numpy()
        predictions["production_confidence"] = compared["baseline_frame"]["confidence"].to_numpy()
        write_json(out / "comparison.json", {k: v for k, v in compared.items() if k != "baseline_frame"})
    predictions.to_parquet(out / "predictions.parquet", index=False)
    if "oos_frame" in scored:
        scored["oos_frame"].to_parquet(out / "oos_predictions.parquet", index=False)
    if task.classification_report:
        task.classification_report(frame, compared["baseline_frame"] if compared else None, out)
    (out / "summary.md").write_text(summary_markdown(scored, compared, status, figures_skipped), encoding="utf-8")


def write_confusion(out: Path, scored: dict, figures_skipped: str | None) -> None:
    """The confusion matrix (CSV, JSON for `dvc plots`, PNG) and the most frequent confusions."""
    frame, labels = scored["frame"], scored["labels"]
    matrix = pd.DataFrame(scored["matrix"], index=pd.Index(labels, name="actual"), columns=labels)
    matrix.to_csv(out / "confusion_matrix.csv")
    write_json(out / "confusion_matrix.json", {
        "labels": labels,
        "matrix": scored["matrix"].tolist(),
        "rows": [{"actual": a, "predicted": p} for a, p in zip(frame["label"], frame["predicted"], strict=True)],
    })
    if figures_skipped is None:
        confusion_png(scored["matrix"], labels, out / "confusion_matrix.png")
    (out / "confusions.md").write_text(confusions_markdown(scored), encoding="utf-8")


def confusions_markdown(scored: dict) -> str:
    frame = scored["frame"]
    errors = int((~frame["correct"]).sum())
    lines = [
        "# Most frequent confusions (test split)", "",
        f"{errors} of {len(frame)} test rows are misclassified ({errors / len(frame):.1%}).", "",
    ]
    if not scored["confusions"]:
        return "\n".join(lines + ["No confusions to list.", ""])
    lines += ["| # | true label | predicted | rows | share of true label |", "| --- | --- | --- | --- | --- |"]
    for rank, c in enumerate(scored["confusions"], 1):
        lines.append(f"| {rank} | {_md(c['label'])} | {_md(c['predicted'])} | {c['count']} | "
                     f"{c['share_of_label']:.1%} |")
    for rank, c in enumerate(scored["confusions"], 1):
        lines += ["", f"## {rank}. {_md(c['label'])} predicted as {_md(c['predicted'])} ({c['count']} rows)", ""]
        lines += [f"- ({example['confidence']:.2f}) {_md(example['text'], EXAMPLE_CHARS)}"
                  for example in c["examples"]]
    return "\n".join(lines) + "\n"


def summary_markdown(scored: dict, compared: dict | None, status: dict, figures_skipped: str | None) -> str:
    lines = ["# Evaluation on the test split", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {name} | {value:.4f} |" for name, value in scored["metrics"].items()]
    lines += ["", f"Test rows: {len(scored['frame'])}. Calibration bins: {len(scored['bins'])}; the *_calibrated "
              f"scores use the calibration {_calibration_note(scored['calibration'])}.", ""]
    if figures_skipped:
        lines += [f"Note: {figures_skipped}.", ""]
    if "rejection" in scored:
        found, metrics = scored["rejection"], scored["metrics"]
        fitted = (f"fitted on val to keep {found['keep_in_scope']:.0%} of its rows" if found["fit"] == "keep_in_scope"
                  else "fitted for the best macro-F1 on val and the out-of-scope val rows")
        lines += ["## Out-of-scope rejection", "",
                  f"A text whose calibrated top score is below {found['reject_below']:.4f} is answered "
                  f"`{found['reject_label']}` ({fitted}; it kept {found['val_kept']:.1%} of the val rows). On the "
                  f"in-scope test rows: {metrics['rejected_share']:.1%} rejected, accuracy "
                  f"{metrics['accepted_accuracy']:.4f} on the rest, {metrics['in_scope_accuracy']:.4f} counting a "
                  "rejection as wrong.", ""]
        if "oos_rows" in metrics:
            lines += [f"On {metrics['oos_rows']} out-of-scope test rows (data.oos_file): recall "
                      f"{metrics['oos_recall']:.4f}, precision {metrics['oos_precision']:.4f}, "
                      f"F1 {metrics['oos_f1']:.4f}; "
                      f"over every test row with `{found['reject_label']}` as one more class: accuracy "
                      f"{metrics['accuracy_with_oos']:.4f}, macro-F1 {metrics['macro_f1_with_oos']:.4f}.", ""]
    lines += ["## Comparison with production", ""]
    if compared is None:
        return "\n".join(lines + [status["message"][:1].upper() + status["message"][1:] + ".", ""])
    lines += [f"Candidate vs {compared['ref']} (version {compared['version']}), both on these test rows.", "",
              "| metric | candidate | production | delta |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {d['candidate']:.4f} | {d['baseline']:.4f} | {d['delta']:+.4f} |"
              for name, d in compared["metrics"].items()]
    lower = [name for name in compared["metrics"] if name in m.LOWER_IS_BETTER]
    lines += ["", f"Higher is better for every metric except {', '.join(lower) or 'none'} (errors and losses: lower "
              "is better)."]
    test = compared["mcnemar"]
    verdict = f"significant at {test['significance_level']:g}: {test['better']} is better" if test["significant"] \
        else f"not significant at {test['significance_level']:g}"
    lines += ["", f"McNemar: only candidate right on {test['only_candidate_correct']} rows, only production right "
                  f"on {test['only_baseline_correct']}; p = {test['p_value']:.4g} ({verdict}). "
                  f"Prediction agreement {compared['agreement']:.1%}.", ""]
    changed = sorted(compared["per_class"], key=lambda r: -abs(np.nan_to_num(r["f1_delta"])))[:10]
    lines += ["Largest per-class F1 changes:", "", "| label | support | F1 candidate | F1 production | delta |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| {_md(r['label'])} | {r['support']} | {r['f1_candidate']:.3f} | {r['f1_baseline']:.3f} | "
              f"{r['f1_delta']:+.3f} |" for r in changed]
    return "\n".join(lines) + "\n"


def _md(text: str, limit: int | None = None) -> str:
    """Text safe inside a Markdown table cell or list item: one line, pipes and backticks escaped."""
    text = " ".join(str(text).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def main(argv=None) -> int:
    return stage_main(STAGE, lambda p: run(p.evaluate, p.registry, model_cfg=p.model, reject=p.reject), argv)


if __name__ == "__main__":
    raise SystemExit(main())
