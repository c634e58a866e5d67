"""The model card (README.md) of models/onnx, in the Hugging Face format: YAML front matter, then Markdown.

The front matter uses the Hub's keys (base_model, library_name, pipeline_tag, tags, model-index with the
test metrics) plus a `tuneforge` block with what the Hub has no key for: the data hashes, the metric that
chose the checkpoints, the parity results.

The card holds only what the model and its inputs determine: the same export gives the same card byte for
byte, so DVC hashes models/onnx the same however it ran. Latency, throughput and the commit are records of
one execution and live in meta.json beside it (which .dvcignore keeps out of the hash).
"""

import yaml


def render(card: dict) -> str:
    """`card` keys: name, base_model, labels, source, metrics {accuracy, macro_f1}, test_rows, data_sha256,
    checkpoint {teacher, student}, parity {fp32, int8}, speed (rows with accuracy, macro_f1, agreement_with_teacher,
    size_mib), throughput_batch_size, max_length, student, calibration {fitted, test_raw, test_calibrated}."""
    front = {
        "base_model": card["base_model"],
        "library_name": "onnx",
        "pipeline_tag": "text-classification",
        "tags": ["onnx", "int8", "text-classification", "tuneforge"]
        + (["knowledge-distillation"] if card["source"] == "student" else []),
        "model-index": [{
            "name": card["name"],
            "results": [{
                "task": {"type": "text-classification", "name": "Text Classification"},
                "dataset": {"name": "tuneforge test split", "type": "custom",
                            "revision": card["data_sha256"].get("test")},
                "metrics": [
                    {"type": "accuracy", "value": round(card["metrics"]["accuracy"], 6), "name": "Accuracy (int8)"},
                    {"type": "f1", "value": round(card["metrics"]["macro_f1"], 6), "name": "Macro F1 (int8)",
                     "args": {"average": "macro"}},
                ],
            }],
        }],
        "tuneforge": {
            "data_sha256": card["data_sha256"],
            "checkpoint_metric": card["checkpoint"],
            "parity": {
                "fp32_max_abs_diff": card["parity"]["fp32"]["max_abs_diff"],
                "fp32_top1_mismatches": card["parity"]["fp32"]["top1_mismatches"],
                "int8_f1_drop_points": card["parity"]["int8"]["f1_drop_points"],
            },
            "calibration": card["calibration"]["fitted"],
        },
    }
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip()
    return f"---\n{header}\n---\n\n{_body(card)}"


# The last lines of the card's Python example for a multi-label model: every label at or above its threshold.
_USE_THRESHOLDS = [
    "scores = 1 / (1 + np.exp(-session.run(None, inputs)[0][0]))",
    "limits = json.load(open(\"labels.json\")).get(\"calibration\", {}).get(\"per_label\", [0.5] * len(labels))",
    "print([label for label, score, limit in zip(labels, scores, limits) if score >= limit])",
]


def _body(card: dict) -> str:
    labels = ", ".join(f"`{label}`" for label in card["labels"])
    student = card.get("student") or {}
    vocabulary = (
        f"pruned to the {student.get('vocabulary_kept')} tokens the training data uses"
        if student.get("pruned") else "kept whole"
    )
    what = (
        f"a distilled student of a fine-tuned `{card['base_model']}` teacher "
        f"(teacher layers kept: {student.get('kept_layers') or 'built from a config'}; vocabulary {vocabulary})"
        if card["source"] == "student" else f"the fine-tuned `{card['base_model']}` teacher"
    )
    parity, speed = card["parity"], card["speed"]
    multi_label = card.get("decision") == "thresholds"
    kind = "Multi-label text classifier (a text gets any set of the labels)" if multi_label else "Text classifier"
    lines = [
        f"# {card['name']}",
        "",
        f"{kind} over {len(card['labels'])} labels ({labels}): {what}, exported to ONNX and quantized "
        "to int8 (dynamic quantization, onnxruntime).",
        "",
        "## Files",
        "",
        "| file | what |",
        "| --- | --- |",
        "| `model.int8.onnx` | the shipped model: int8 weights |",
        "| `model.onnx` | the same model in fp32 |",
        f"| `tokenizer.json` | the tokenizer, truncating to {card['max_length']} tokens and padding batches |",
        "| `labels.json` | `labels[i]` is the class of output `i` |",
        "| `meta.json` | config, input hashes, parity and speed numbers, library versions |",
        "",
        "## Use",
        "",
        "```python",
        "import json, numpy as np, onnxruntime as ort",
        "from tokenizers import Tokenizer",
        "",
        "tokenizer = Tokenizer.from_file(\"tokenizer.json\")",
        "session = ort.InferenceSession(\"model.int8.onnx\", providers=[\"CPUExecutionProvider\"])",
        "labels = json.load(open(\"labels.json\"))[\"labels\"]",
        "batch = tokenizer.encode_batch([\"my card was declined\"])",
        "columns = {\"input_ids\": [e.ids for e in batch], \"attention_mask\": [e.attention_mask for e in batch],",
        "           \"token_type_ids\": [e.type_ids for e in batch]}",
        "inputs = {i.name: np.array(columns[i.name], dtype=np.int64) for i in session.get_inputs()}",
        *(_USE_THRESHOLDS if multi_label else ["print(labels[int(session.run(None, inputs)[0].argmax(1)[0])])"]),
        "```",
        "",
        "or `tuneforge predict models/onnx \"my card was declined\"` (add `--json` for machine-readable output).",
        "",
        *_scores(card["calibration"], card.get("decision", "argmax")),
        *_rejection(card["calibration"]),
        f"## Evaluation (test split, {card['test_rows']} rows)",
        "",
        "| model | accuracy | macro-F1 | agrees with the teacher | size MiB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in speed.items():
        lines.append(
            f"| {name} | {row['accuracy']:.4f} | {row['macro_f1']:.4f} | {row['agreement_with_teacher']:.4f} "
            f"| {row['size_mib']:.1f} |"
        )
    lines += [
        "",
        "Latency and throughput (batch-1 p50/p95 and rows/s at batch "
        f"{card['throughput_batch_size']}, model time on CPU) are measurements of the machine that ran the export: "
        "they are in `meta.json` (`speed`), not in this card, so that the same model always has the same card.",
        "",
        "## Parity (gates the export)",
        "",
        f"- fp32 ONNX vs PyTorch, every test row: max |logit difference| {parity['fp32']['max_abs_diff']:.2e} "
        f"(limit {parity['fp32']['threshold']:g}), {parity['fp32']['top1_mismatches']} rows with another prediction.",
        f"- int8 vs fp32: macro-F1 {100 * parity['int8']['int8_macro_f1']:.2f} vs "
        f"{100 * parity['int8']['fp32_macro_f1']:.2f} (drop {parity['int8']['f1_drop_points']:.2f} points, "
        f"limit {parity['int8']['threshold_points']:g}); same prediction (label, or label set) on "
        f"{parity['int8']['top1_agreement']:.2%} of the rows.",
        "",
        "## Training",
        "",
        f"- Checkpoints chosen by val {card['checkpoint'].get('teacher') or 'n/a'} (teacher) and "
        f"{card['checkpoint'].get('student') or 'n/a'} (student).",
        "- Data (sha256): " + ", ".join(f"{k} `{v[:16]}`" for k, v in card["data_sha256"].items() if v) + ".",
        "",
        "## Reproduce",
        "",
        "```sh",
        "git checkout <commit>   # meta.json's git_commit: the commit that ran this export",
        "dvc pull        # or place the input data in params.yaml's data.dir",
        "dvc repro export",
        "```",
        "",
        "The whole spec (data, model, training, distillation, export) is params.yaml in that commit; dvc.lock pins "
        "every input's hash.",
        "",
    ]
    return "\n".join(lines)


def _scores(calibration: dict, decision: str) -> list[str]:
    """What a score means: softmax of the logits, divided first by the temperature fitted on val, if any; or, for
    the multi-label rule, one sigmoid per label and the thresholds that decide."""
    if decision == "thresholds":
        return _thresholds(calibration)
    temperature = calibration["fitted"].get("temperature")
    if temperature is None:
        return ["Scores are the softmax of the logits, as trained (no calibration was fitted).", ""]
    raw, calibrated = calibration["test_raw"], calibration["test_calibrated"]
    return [
        f"Scores are calibrated: the softmax of the logits divided by the temperature {temperature:g}, fitted on the "
        f"val split (`labels.json`, `calibration`; `tuneforge predict` and the server apply it). On the test split "
        f"it moves the expected calibration error from {raw['ece']:.4f} to {calibrated['ece']:.4f} and the "
        f"negative log-likelihood from {raw['nll']:.4f} to {calibrated['nll']:.4f}; the predicted label is the same.",
        "",
    ]


def _thresholds(calibration: dict) -> list[str]:
    fitted, measured = calibration["fitted"], calibration["test_raw"]
    limits = fitted.get("per_label") or ([fitted["threshold"]] if "threshold" in fitted else [])
    decided = (
        f"its threshold, chosen on the val split to maximise F1 (global {fitted['threshold']:g}, per label "
        f"{min(limits):g}-{max(limits):g}; `thresholds.json` names each)" if limits
        else "0.5 (no thresholds were fitted)"
    )
    return [
        f"Scores are one sigmoid per label, and a label is predicted when its score reaches {decided}; "
        f"`tuneforge predict` and the server apply them. On the test split the label probabilities have an "
        f"expected calibration error of {measured['ece']:.4f} and a mean binary negative log-likelihood of "
        f"{measured['nll']:.4f}.",
        "",
    ]


def _rejection(calibration: dict) -> list[str]:
    found = calibration.get("rejection")
    if not found:
        return []
    chosen = ("has the best macro-F1 on the val and out-of-scope val rows" if calibration.get("rejection_fit") == "oos"
              else "keeps the chosen share of the in-scope val rows")
    lines = [
        f"Out-of-scope texts are rejected: a text whose calibrated top score is below {found['reject_below']:g} is "
        f"answered `{found['reject_label']}` (the threshold {chosen}; "
        f"{calibration['test_rejected_share']:.1%} of the in-scope test rows fall below it).",
    ]
    if "open_set" in calibration:
        found = calibration["open_set"]
        lines.append(
            f"On {found['oos_rows']} out-of-scope test rows it rejects {found['oos_recall']:.1%} (precision "
            f"{found['oos_precision']:.1%}); over every test row, out-of-scope as one more class: accuracy "
            f"{found['accuracy_with_oos']:.2%}, macro-F1 {found['macro_f1_with_oos']:.4f}."
        )
    return [*lines, ""]
