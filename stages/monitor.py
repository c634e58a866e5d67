"""The drift monitor's check: a batch of new texts against the production model and its training data.

    python -m stages.monitor [NEW_DATA] [--params params.yaml]   # NEW_DATA: default monitor.incoming_dir

The production version is `<registry.model_name>@<monitor.reference_alias>`, resolved through the
registry: its int8 ONNX model predicts labels, its teacher gives sentence embeddings, and the training
rows of its splits are the reference. Three signals (tuneforge/monitor/signals.py), each with Evidently's
report (the predicted labels are tested by a permutation test of their Jensen-Shannon distance); the
batch counts as drifted when at least `monitor.min_drifted_signals` of them drift.

Writes, atomically, <monitor.reports_dir>/<batch id>/ (batch id = the first 12 hex digits of the batch's
sha256 and the production version, e.g. 3f2a9c01d4e7-v4):
    drift.html     Evidently's page, headed by the verdict
    drift.json     the summary (below) and Evidently's metrics and tests
    summary.json   the summary: batch, reference, each signal's scores and verdict, the decision
    meta.json      config, input hashes, headline metrics (what the registry records)
and registers the folder as artifact `monitor.report` (lineage: the batch, the production model and
reference data) plus a `drift_checked` event on the production version. Deciding what to do about drift
(merging labelled rows, triggering the finetune deployment) is the flow's job: flows/monitor.py; the merged
data it asks for (`retrain_data`) is read and written the task's way, as the batch is.
"""

import argparse
import html
import json
import time
from pathlib import Path

from tuneforge.base.errors import ConfigError, StageError, report_failure
from tuneforge.base.layout import PARAMS_FILE
from tuneforge.base.outputs import Produced, atomic_dirs, atomic_write_text, write_json, write_meta
from tuneforge.base.spec import MonitorConfig
from tuneforge.data.drift import with_heading
from tuneforge.data.io import LABEL, TEXT
from tuneforge.inference.onnx_predictor import LABELS_FILE, read_labels
from tuneforge.monitor.data import batch_sha256, read_batch, read_reference, sample
from tuneforge.monitor.retrain import DataCheck, prepare_retrain_data
from tuneforge.monitor.signals import PREDICTED, compare, decide, predicted_labels, sentence_embeddings, with_embeddings
from tuneforge.params import Params, load_params
from tuneforge.tasks import task_for

STAGE = "monitor"


def check(params: Params, new_data: Path | str | None = None, *, register: bool = True) -> dict:
    """Compare the batch at `new_data` (default monitor.incoming_dir) with production; return the summary."""
    started = time.time()
    cfg = params.monitor
    new_data = Path(new_data if new_data is not None else cfg.incoming_dir)
    if register and not params.registry.enabled:
        raise StageError("registry.enabled is false: the monitor reads the production model from the registry")
    task = task_for(params.model, STAGE)
    unsupported = [signal for signal in cfg.signals if signal not in task.drift_signals]
    if unsupported:
        raise ConfigError(
            f"monitor.signals: {', '.join(unsupported)} does not apply to model.task {task.name} "
            f"(its signals: {', '.join(sorted(task.drift_signals))})"
        )
    batch = read_batch(new_data, params.data, task.read_rows)
    if len(batch) < cfg.min_new_rows:
        raise StageError(
            f"{new_data}: {len(batch)} non-empty texts, fewer than monitor.min_new_rows ({cfg.min_new_rows})"
        )
    batch_sha = batch_sha256(new_data)
    production = resolve_production(params)
    reference = read_reference(production["dir"] / cfg.reference_role / cfg.reference_file)

    print(
        f"{STAGE}: {production['ref']} ({production['alias']}) vs {new_data}: {len(batch)} new texts "
        f"({int(batch[LABEL].notna().sum())} labelled), {len(reference)} reference rows"
    )
    reference_sample, new_sample = model_views(
        sample(reference, cfg.max_reference_rows, cfg.seed), sample(batch, cfg.max_new_rows, cfg.seed),
        production["dir"], cfg, params.model.max_seq_length,
    )
    evidently_json, page, signals = compare(reference_sample, new_sample, cfg)
    if "predictions" in signals:  # what the compared predictions are: labels, or label sets (multi-label)
        signals["predictions"] = {"predicted": task.outputs.predicts, **signals["predictions"]}
        signals["predictions"] |= rejected_shares(production["dir"] / cfg.model_role, signals["predictions"])

    batch_id = f"{batch_sha[:12]}-v{production['version']}"
    summary = {
        "batch": {
            "id": batch_id, "path": str(new_data), "sha256": batch_sha, "rows": len(batch),
            "labelled_rows": int(batch[LABEL].notna().sum()), "compared_rows": len(new_sample),
            "files": sorted(set(batch["file"])),
        },
        "production": {
            "ref": production["ref"], "model": production["model"], "version": production["version"],
            "alias": production["alias"],
        },
        "reference": {
            "role": cfg.reference_role, "file": cfg.reference_file, "rows": len(reference),
            "compared_rows": len(reference_sample),
        },
        "signals": signals,
        **decide(signals, cfg),
    }
    report_dir = Path(cfg.reports_dir) / batch_id
    summary["report"] = {"dir": str(report_dir), "html": str(report_dir / "drift.html")}
    inputs = {"new_data": new_data, "reference": production["dir"] / cfg.reference_role}
    if "predictions" in cfg.signals:
        inputs["model"] = production["dir"] / cfg.model_role
    if "embeddings" in cfg.signals:
        inputs["embedder"] = production["dir"] / cfg.embedding_role
    with atomic_dirs(report_dir) as (staging,):
        atomic_write_text(staging / "drift.html", _headed(page, summary))
        atomic_write_text(
            staging / "drift.json",
            json.dumps({**summary, **evidently_json}, indent=2, sort_keys=True, allow_nan=False) + "\n",
        )
        write_json(staging / "summary.json", summary)
        write_meta(staging, stage=STAGE, config=cfg, inputs=inputs, metrics=headline(summary),
                   started=started, extra={"production": summary["production"], "batch": summary["batch"]})
    if register:
        summary["registered"] = _register(params, summary, report_dir, inputs)
    _print_outcome(summary)
    return summary


def rejected_shares(onnx_dir: Path, predictions: dict) -> dict:
    """With a production model that rejects out-of-scope texts (reject.enabled at export): the share of the
    reference and of the new texts it answers with its reject label. A rising share is new data outside the
    label set, worth labelling before a retrain."""
    _, _, calibration = read_labels(onnx_dir / LABELS_FILE)
    label = calibration.get("reject_label")
    if label is None:
        return {}
    return {"rejected": {"label": label, "reference_share": predictions["reference"].get(label, 0.0),
                         "new_share": predictions["new"].get(label, 0.0)}}


def retrain_data(params: Params, summary: dict, new_data: Path | str, *, check_data: DataCheck) -> dict:
    """The merged training folder for a drifted batch (tuneforge/monitor/retrain.py), every file read and
    written the task's way; `check_data` runs the data stages on it (flows/monitor.py)."""
    task = task_for(params.model, STAGE)
    return prepare_retrain_data(
        params, summary, new_data, read_rows=task.read_rows, file_label=task.file_label, check_data=check_data
    )


def model_views(reference, new, production_dir: Path, cfg: MonitorConfig, max_length: int):
    """Both samples as the signals see them: text, plus the production model's predicted label and the
    embedding columns (of inputs truncated to `max_length` tokens) when those signals are on."""
    reference, new = reference[[TEXT]].copy(), new[[TEXT]].copy()
    if "predictions" in cfg.signals:
        onnx_dir = production_dir / cfg.model_role
        reference[PREDICTED] = predicted_labels(onnx_dir, reference[TEXT], batch_size=cfg.batch_size)
        new[PREDICTED] = predicted_labels(onnx_dir, new[TEXT], batch_size=cfg.batch_size)
    if "embeddings" in cfg.signals:
        embeddings = sentence_embeddings(
            production_dir / cfg.embedding_role, list(reference[TEXT]) + list(new[TEXT]),
            batch_size=cfg.batch_size, max_length=max_length,
        )
        reference, new = with_embeddings(reference, embeddings[:len(reference)]), with_embeddings(
            new, embeddings[len(reference):])
    return reference, new


def resolve_production(params: Params) -> dict:
    """The version the alias points at now, pinned by number, and a verified local copy of its roles."""
    from registry import api

    cfg = params.monitor
    alias_ref = f"{params.registry.model_name}@{cfg.reference_alias}"
    version = api.show(alias_ref, config=params.registry)["version"]
    ref = f"{params.registry.model_name}:{version}"
    folder = api.resolve(ref, config=params.registry)
    roles = [cfg.reference_role] + [
        role for signal, role in (("predictions", cfg.model_role), ("embeddings", cfg.embedding_role))
        if signal in cfg.signals
    ]
    for role in roles:
        if not (folder / role).is_dir():
            raise StageError(f"{ref} ({alias_ref}) has no role '{role}'; its roles: "
                             f"{', '.join(sorted(p.name for p in folder.iterdir())) or '(none)'}")
    return {"model": params.registry.model_name, "version": version, "ref": ref, "alias": cfg.reference_alias,
            "dir": folder}


def headline(summary: dict) -> dict:
    signals = summary["signals"]
    metrics = {
        "drift": summary["drift"], "drifted_signals": len(summary["drifted_signals"]),
        "new_rows": summary["batch"]["rows"], "labelled_rows": summary["batch"]["labelled_rows"],
    }
    if "descriptors" in signals:
        metrics["descriptors_drift_share"] = signals["descriptors"]["drift_share"]
    if "predictions" in signals:
        metrics["predictions_score"] = signals["predictions"]["score"]
        if "rejected" in signals["predictions"]:
            metrics["rejected_share"] = signals["predictions"]["rejected"]["new_share"]
        if "p_value" in signals["predictions"]:
            metrics["predictions_p_value"] = signals["predictions"]["p_value"]
    if "embeddings" in signals:
        metrics["embeddings_roc_auc"] = signals["embeddings"]["score"]
    return metrics


def _register(params: Params, summary: dict, report_dir: Path, inputs: dict) -> dict:
    from registry import api, record_stage

    produced = Produced(stage=STAGE, outputs={"report": report_dir}, inputs=inputs, metrics=headline(summary))
    report_ref = record_stage(produced, config=params.registry)[0]
    evidence = {
        "batch": {key: summary["batch"][key] for key in ("id", "path", "sha256", "rows", "labelled_rows")},
        "drift": summary["drift"], "drifted_signals": summary["drifted_signals"],
        "min_drifted_signals": summary["min_drifted_signals"],
        "scores": {name: signal.get("score", signal.get("drift_share")) for name, signal in summary["signals"].items()},
    }
    event = api.record_drift_check(summary["production"]["ref"], report_ref, evidence,
                                   alias=summary["production"]["alias"], config=params.registry)
    return {"report": event["report"], "event": event["id"]}


def signal_lines(summary: dict) -> list[str]:
    """One line per signal: its verdict and the numbers behind it."""
    lines = []
    for name, signal in summary["signals"].items():
        verdict = "DRIFT" if signal["drifted"] else "ok"
        if name == "descriptors":
            columns = ", ".join(
                f"{column} {c['method']} {c['score']:.3g}{' drifted' if c['drifted'] else ''}"
                for column, c in signal["columns"].items()
            )
            share, needed = signal['drift_share'], signal['required_share']
            detail = f"{share:.0%} of descriptors drifted (needs {needed:.0%}): {columns}"
        elif name == "predictions" and signal["method"] == "permutation":
            detail = (
                f"predicted {signal['predicted']}s' Jensen-Shannon distance {signal['score']:.3g}, permutation "
                f"p-value {signal['p_value']:.3g} (drift below {signal['level']:g}, i.e. a distance above "
                f"{signal['threshold']:.3g}; {signal['labels']} distinct {signal['predicted']}s, "
                f"{signal['resamples']} permutations)"
            )
        elif name == "predictions":
            detail = (f"predicted {signal['predicted']}s {signal['method']} {signal['score']:.3g} "
                      f"(threshold {signal['threshold']})")
        else:
            needed = "random guesses' 95th percentile" if signal["bootstrap"] else f"{signal['threshold']}"
            detail = f"domain classifier ROC AUC {signal['score']:.3f} (drift above {needed})"
        lines.append(f"{name}: {verdict}: {detail}")
    return lines


def verdict_line(summary: dict) -> str:
    counted = len(summary["signals_counted"])
    drifted = len(summary["drifted_signals"])
    word = "DRIFT" if summary["drift"] else "no drift"
    return f"{word}: {drifted} of {counted} signals drifted ({summary['min_drifted_signals']} needed)"


def _print_outcome(summary: dict) -> None:
    for line in signal_lines(summary):
        print(f"{STAGE}:   {line}")
    print(f"{STAGE}: {verdict_line(summary)} -> {summary['report']['html']}")


def _headed(page: str, summary: dict) -> str:
    title = f"Drift check: {summary['batch']['path']} vs {summary['production']['ref']}"
    items = "".join(f"<li>{html.escape(line)}</li>" for line in signal_lines(summary))
    heading = (
        f'<div style="font-family: sans-serif; margin: 16px 24px"><h1>{html.escape(title)}</h1>\n'
        f"<p><b>{html.escape(verdict_line(summary))}</b>; {summary['batch']['rows']:,} new texts "
        f"({summary['batch']['labelled_rows']:,} labelled), {summary['reference']['rows']:,} reference rows</p>\n"
        f"<ul>{items}</ul></div>\n"
    )
    return with_heading(page, title, heading)


def main(argv=None) -> int:
    from tuneforge.pipeline.runner import quiet_libraries

    parser = argparse.ArgumentParser(prog="python -m stages.monitor", description=__doc__.splitlines()[0])
    parser.add_argument("new_data", nargs="?", help="a file or folder of new texts (default: monitor.incoming_dir)")
    parser.add_argument("--params", default=str(PARAMS_FILE), help="the pipeline spec (default: params.yaml)")
    args = parser.parse_args(argv)
    quiet_libraries()
    try:
        check(load_params(args.params), args.new_data)
    except StageError as exc:
        return report_failure(exc, STAGE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
