"""The bad inputs of benchmarks/reliability.py: one Case each, with the command a user types and what its
error line must name. A case's `prepare` writes its bad input into the clone (the harness puts the clone's
inputs back afterwards, from git); files it needs beside the clone's own go under bad/.
"""

import json
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA_FILE = Path("examples/intents.csv")


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    command: str  # as typed in the clone's root
    expect: tuple[str, ...]  # what the error line must name (all of them, case-insensitive)
    prepare: Callable[[Path], None] | None = None  # writes the bad input into the clone
    needs_model: bool = False  # needs the trained pipeline (teacher, ONNX, a registered version)
    # Snapshot keys a refusal changes by design (a failed promotion records its gate decision).
    allowed_changes: frozenset[str] = frozenset()


def original_rows(clone: Path) -> list[str]:
    return (clone / DATA_FILE).read_text(encoding="utf-8").splitlines()


def write(clone: Path, relative: str, content: str | bytes) -> None:
    path = clone / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def edit_params(clone: Path, **dotted) -> None:
    """Edit params.yaml by hand, as a user would (keys with '__' for dots: split__seed=3)."""
    path = clone / "params.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in dotted.items():
        *parents, last = key.split("__")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def replace_data(transform: Callable[[list[str]], list[str] | bytes]) -> Callable[[Path], None]:
    def prepare(clone: Path) -> None:
        rows = transform(original_rows(clone))
        write(clone, str(DATA_FILE), rows if isinstance(rows, bytes) else "\n".join(rows) + "\n")
    return prepare


def steps(*prepares: Callable[[Path], None]) -> Callable[[Path], None]:
    def prepare(clone: Path) -> None:
        for step in prepares:
            step(clone)
    return prepare


def params(**dotted) -> Callable[[Path], None]:
    return lambda clone: edit_params(clone, **dotted)


def file(relative: str, content: str | bytes) -> Callable[[Path], None]:
    return lambda clone: write(clone, relative, content)


def non_utf8(rows: list[str]) -> bytes:
    data = "\n".join(rows).encode("utf-8") + b"\n"
    lines = data.split(b"\n")
    lines[4] = lines[4].replace(b"card", b"caf\xe9 card", 1) if b"card" in lines[4] else lines[4] + b"\xe9"
    return b"\n".join(lines)


def rare_class(rows: list[str]) -> list[str]:
    return rows + [f"my crypto wallet question number {i}?,crypto_wallet" for i in range(3)]


def conflicting_labels(rows: list[str]) -> list[str]:
    # 30 texts (5% of the rows) appear a second time with another label: over max_duplicate_share (1%).
    relabelled = []
    for row in rows[1:31]:
        text, _, label = row.rpartition(",")
        relabelled.append(f"{text},{'card_declined' if label != 'card_declined' else 'exchange_rate'}")
    return rows + relabelled


def empty_texts(rows: list[str]) -> list[str]:
    return [rows[0]] + ['"   ",' + row.rpartition(",")[2] for row in rows[1:]]


def ragged_row(rows: list[str]) -> list[str]:
    # An unquoted comma in a text: three cells under a two-column header, on line 4.
    return rows[:3] + ["my card, the new one, was declined,card_declined"] + rows[3:]


def jsonl_with_broken_line(clone: Path) -> None:
    lines = [json.dumps({"text": f"how do I top up {i}", "label": "top_up"}) for i in range(2)]
    write(clone, "examples/intents.jsonl", "\n".join([*lines, '{"text": "broken, "label": "x"', *lines]) + "\n")


def jsonl_with_object_text(clone: Path) -> None:
    lines = [json.dumps({"text": f"how do I top up {i}", "label": "top_up"}) for i in range(2)]
    nested = json.dumps({"text": {"nested": "my card was declined"}, "label": "card_declined"})
    write(clone, "examples/intents.jsonl", "\n".join([*lines, nested, *lines]) + "\n")


def parquet_with_list_texts(clone: Path) -> None:
    import pyarrow
    import pyarrow.parquet

    texts = pyarrow.array([["my card was declined"], ["Hey, my card has not arrived"]], pyarrow.list_(pyarrow.string()))
    table = pyarrow.table({"text": texts, "label": ["card_declined", "card_arrival"]})
    (clone / "examples").mkdir(exist_ok=True)
    pyarrow.parquet.write_table(table, clone / "examples/intents.parquet")


def text_over_the_csv_field_limit(rows: list[str]) -> list[str]:
    # 200,000 characters on line 4: past the csv module's 131,072, and past validate.max_text_chars.
    return rows[:3] + [f'"my card was declined {"again and again " * 12_500}",card_declined'] + rows[3:]


def model_copy(clone: Path, name: str, keep: Callable[[str], bool]) -> Path:
    """A copy of the pipeline's base model (model.base of params.yaml) with only the files `keep` accepts."""
    base = Path(yaml.safe_load((clone / "params.yaml").read_text())["model"]["base"])
    target = clone / "bad" / name
    target.mkdir(parents=True, exist_ok=True)
    for source in base.iterdir():
        if source.is_file() and keep(source.name):
            shutil.copy2(source, target / source.name)
    return target


def model_without_weights(clone: Path) -> None:
    model_copy(clone, "no-weights", lambda name: name != "model.safetensors")
    edit_params(clone, model__base="bad/no-weights")


def model_without_tokenizer(clone: Path) -> None:
    # Only config.json and the weights: transformers 5 would build an empty tokenizer (every word [UNK]).
    model_copy(clone, "no-tokenizer", lambda name: name in ("config.json", "model.safetensors"))
    edit_params(clone, model__base="bad/no-tokenizer")


def model_pickle_only(clone: Path) -> None:
    import torch
    from safetensors.torch import load_file

    target = model_copy(clone, "pickle-model", lambda name: name != "model.safetensors")
    base = Path(yaml.safe_load((clone / "params.yaml").read_text())["model"]["base"])
    torch.save(load_file(base / "model.safetensors"), target / "pytorch_model.bin")  # pickled, as old hubs hold
    edit_params(clone, model__base="bad/pickle-model")


def model_corrupt_weights(clone: Path) -> None:
    target = model_copy(clone, "corrupt-model", lambda name: True)
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])  # cut off: the header promises tensors that are not there
    edit_params(clone, model__base="bad/corrupt-model")


def strict_params(clone: Path) -> None:
    spec = yaml.safe_load((clone / "params.yaml").read_text(encoding="utf-8"))
    spec["promotion"]["min_metrics"] = {"metrics.macro_f1": 1.01}  # a bar no model reaches
    write(clone, "bad/strict.yaml", yaml.safe_dump(spec, sort_keys=False))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free now, and nothing listens on it once the socket closes


UNREACHABLE_URL = f"postgresql+psycopg://tuneforge@127.0.0.1:{closed_port()}/registry"


def unreachable_params(clone: Path) -> None:
    spec = yaml.safe_load((clone / "params.yaml").read_text(encoding="utf-8"))
    spec["registry"].update(url=UNREACHABLE_URL, connect_timeout_s=2)
    write(clone, "bad/unreachable.yaml", yaml.safe_dump(spec, sort_keys=False))


_HELD_PORTS: list[socket.socket] = []


def port_in_use_params(clone: Path) -> None:
    """bad/busy-port.yaml: serve.port is a port this process listens on (until it exits) while the case runs."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    _HELD_PORTS.append(held)  # kept open: the server the case starts must find the port taken
    spec = yaml.safe_load((clone / "params.yaml").read_text(encoding="utf-8"))
    spec.setdefault("serve", {}).update(host="127.0.0.1", port=held.getsockname()[1])
    write(clone, "bad/busy-port.yaml", yaml.safe_dump(spec, sort_keys=False))


def corrupt_onnx(clone: Path) -> None:
    shutil.copytree(clone / "models/onnx", clone / "bad/onnx", dirs_exist_ok=True)
    model = clone / "bad/onnx/model.int8.onnx"
    model.write_bytes(model.read_bytes()[:2048])


def alias_bomb(levels: int = 6, width: int = 10) -> str:
    """params.yaml whose data.labels aliases a value of width ** levels strings (the billion-laughs pattern)."""
    lines = ["_anchors:", f"  a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * width)}]" for k in range(1, levels)]
    return "\n".join([*lines, "data:", f"  labels: *a{levels - 1}", ""])
def tampered_onnx_weights(clone: Path) -> None:
    """A copy of models/onnx whose int8 weights were changed (the output bias): still a valid model that
    answers differently, told from the exported one only by the sha256 in its meta.json."""
    import onnx
    from onnx import numpy_helper

    shutil.copytree(clone / "models/onnx", clone / "bad/onnx-tampered", dirs_exist_ok=True)
    path = clone / "bad/onnx-tampered/model.int8.onnx"
    model = onnx.load(str(path))
    last = next(node for node in model.graph.node if model.graph.output[0].name in node.output)
    bias = next(t for t in model.graph.initializer if t.name in last.input)
    values = numpy_helper.to_array(bias).copy()
    values[0] += 8.0
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(model, str(path))


def bad_temperature(clone: Path) -> None:
    """A copy of models/onnx made by hand (loaded with --no-verify) whose calibration temperature is 0."""
    shutil.copytree(clone / "models/onnx", clone / "bad/onnx-temperature", dirs_exist_ok=True)
    labels = clone / "bad/onnx-temperature/labels.json"
    labels.write_text(json.dumps(json.loads(labels.read_text()) | {"calibration": {"temperature": 0}}))


def bad_threshold(clone: Path) -> None:
    """A copy of models/onnx made by hand (loaded with --no-verify) that names the multi-label rule with a
    threshold above 1."""
    shutil.copytree(clone / "models/onnx", clone / "bad/onnx-threshold", dirs_exist_ok=True)
    labels = clone / "bad/onnx-threshold/labels.json"
    labels.write_text(json.dumps(json.loads(labels.read_text()) | {"decision": "thresholds",
                                                                    "calibration": {"threshold": 1.5}}))


EMOTIONS = ("anger", "fear", "joy", "love", "surprise")


def emotion_rows(extra: list[dict] = ()) -> list[dict]:
    """80 comments with one to three emotions each (every emotion on 20 rows or more), then `extra`."""
    rows = []
    for i in range(80):
        chosen = sorted({EMOTIONS[(i + step * 2) % len(EMOTIONS)] for step in range(1 + (i % 3 == 0) + (i % 7 == 0))})
        rows.append({"text": f"comment {i} says {' and '.join(chosen)} about the match on day {i % 11}",
                     "labels": chosen})
    return rows + list(extra)


def emotions_jsonl(extra: list[dict] = (), ids: bool = False) -> Callable[[Path], None]:
    """examples/emotions.jsonl (labels by name, or by id through examples/emotions.txt) and a multi-label spec."""
    rows = emotion_rows(extra)
    if ids:
        rows = [{**row, "labels": [EMOTIONS.index(label) if label in EMOTIONS else label for label in row["labels"]]}
                for row in rows]
    content = "".join(json.dumps(row) + "\n" for row in rows)
    spec = params(model__task="multi-label-classification", data__train_file="emotions.jsonl",
                  data__label_column="labels", **({"data__labels_file": "emotions.txt"} if ids else {}))
    return steps(file("examples/emotions.jsonl", content), file("examples/emotions.txt", "\n".join(EMOTIONS) + "\n"),
                 spec)


def emotions_tsv(separator: str) -> Callable[[Path], None]:
    """examples/emotions.tsv, headerless, labels joined by ',', read with `separator` as data.label_separator."""
    content = "".join(f"{row['text']}\t{','.join(row['labels'])}\n" for row in emotion_rows())
    spec = params(model__task="multi-label-classification", data__train_file="emotions.tsv",
                  data__columns=["text", "labels"], data__label_column="labels", data__label_separator=separator)
    return steps(file("examples/emotions.tsv", content), spec)


GATE_EVENT = frozenset({"db:events"})

CASES = [
    # files
    Case("missing_train_file", "files", "tuneforge run --set data.train_file=tickets.csv",
         ("data.train_file", "examples/tickets.csv", "not found")),
    Case("missing_val_file", "files", "tuneforge run --set data.val_file=dev.csv",
         ("data.val_file", "examples/dev.csv", "not found")),
    Case("missing_val_file_stage", "files", "python -m stages.validate",
         ("examples/dev.csv", "not found", "data.val_file"), params(data__val_file="dev.csv")),
    Case("missing_data_dir", "files", "tuneforge run --set data.dir=exampels", ("data.dir", "exampels")),
    Case("empty_file", "files", "tuneforge run", ("examples/intents.csv", "empty"), replace_data(lambda rows: b"")),
    Case("header_only", "files", "python -m stages.validate", ("examples/intents.csv", "no data rows"),
         replace_data(lambda rows: rows[:1])),
    Case("non_utf8_bytes", "files", "tuneforge stage validate", ("examples/intents.csv", "UTF-8", "line 5"),
         replace_data(non_utf8)),
    Case("missing_text_column", "files", "dvc repro", ("examples/intents.csv", "'text'", "data.text_column"),
         replace_data(lambda rows: ["message,label", *rows[1:]])),
    Case("missing_label_column", "files", "python -m stages.validate",
         ("examples/intents.csv", "'label'", "data.label_column"),
         replace_data(lambda rows: ["text,intent", *rows[1:]])),
    Case("csv_ragged_row", "files", "python -m stages.validate", ("examples/intents.csv", "line 4", "4 fields"),
         replace_data(ragged_row)),
    Case("empty_texts", "files", "tuneforge stage validate", ("examples/intents.csv", "no non-empty texts"),
         replace_data(empty_texts)),
    Case("class_below_min_examples", "files", "tuneforge run",
         ("examples/intents.csv", "class_count", "line 608", "crypto_wallet"),
         replace_data(rare_class)),
    Case("conflicting_duplicates_over_share", "files", "python -m stages.validate",
         ("examples/intents.csv", "labels_per_text", "first at line"), replace_data(conflicting_labels)),
    Case("parquet_not_parquet", "files", "python -m stages.validate", ("examples/intents.parquet", "Parquet"),
         steps(file("examples/intents.parquet", "text,label\nhello,greeting\n"),
               params(data__train_file="intents.parquet"))),
    Case("jsonl_broken_line", "files", "tuneforge stage validate", ("examples/intents.jsonl", "line 3", "JSON"),
         steps(jsonl_with_broken_line, params(data__train_file="intents.jsonl"))),
    Case("jsonl_text_not_a_string", "files", "tuneforge stage validate",
         ("examples/intents.jsonl", "line 3", "'text'", "an object, not a string"),
         steps(jsonl_with_object_text, params(data__train_file="intents.jsonl"))),
    Case("parquet_text_list", "files", "python -m stages.validate",
         ("examples/intents.parquet", "row 1", "'text'", "a list, not a string"),
         steps(parquet_with_list_texts, params(data__train_file="intents.parquet"))),
    Case("csv_text_over_field_limit", "files", "python -m stages.validate",
         ("examples/intents.csv", "max_text_chars", "line 4"), replace_data(text_over_the_csv_field_limit)),
    Case("csv_duplicate_column", "files", "tuneforge stage validate",
         ("examples/intents.csv", "column 'text' appears 2 times"),
         replace_data(lambda rows: ["text,label,text", *[row + ",again" for row in rows[1:]]])),
    # params
    Case("unknown_key", "params", "python -m stages.split", ("split.sed", "unknown key"), params(split__sed=3)),
    Case("moved_key", "params", "python -m stages.evaluate", ("train.max_seq_length", "moved to model.max_seq_length"),
         params(train__max_seq_length=64)),
    Case("wrong_type", "params", "tuneforge stage train", ("train.batch_size",), params(train__batch_size="32")),
    Case("out_of_range_set", "params", "tuneforge run --set split.val_fraction=1.2", ("split.val_fraction", "1.2")),
    Case("out_of_range_dvc", "params", "dvc repro", ("augment.variants_per_row", "50"),
         params(augment__variants_per_row=50)),
    Case("unknown_stage", "params", "tuneforge stage trian", ("trian", "unknown stage")),
    Case("malformed_yaml_run", "params", "tuneforge run", ("params.yaml", "YAML", "line"),
         file("params.yaml", "data:\n  dir: examples\nsplit: {val_fraction: 0.1\ntrain:\n  epochs: 3\n")),
    Case("malformed_yaml_stage", "params", "python -m stages.validate", ("params.yaml", "YAML", "line"),
         file("params.yaml", "data:\n  dir: examples\n\ttrain_file: intents.csv\n")),
    Case("set_unknown_key", "params", "tuneforge run --set trian.epochs=2", ("trian", "unknown key")),
    Case("set_without_value", "params", "tuneforge run --set split.seed", ("split.seed", "key=value")),
    Case("overlay_missing", "params", "tuneforge run --config configs/bankin77.yaml", ("configs/bankin77.yaml",)),
    # multi-label data (model.task: multi-label-classification)
    Case("multi_label_unknown_label_in_list", "files", "tuneforge stage validate",
         ("examples/emotions.jsonl", "line 81", "unknown: rage"),
         steps(emotions_jsonl([{"text": "a furious comment", "labels": ["joy", "rage"]}]),
               params(data__labels=list(EMOTIONS)))),
    Case("multi_label_empty_list_refused", "files", "tuneforge stage validate",
         ("examples/emotions.jsonl", "line 81", "validate.allow_empty_labels"),
         emotions_jsonl([{"text": "a calm comment", "labels": []}])),
    Case("multi_label_separator_splits_nothing", "files", "tuneforge stage validate",
         ("examples/emotions.tsv", "data.label_separator", "';'", "','"), emotions_tsv(";")),
    Case("multi_label_id_outside_labels_file", "files", "tuneforge stage validate",
         ("examples/emotions.jsonl", "line 81", "label id 9", "examples/emotions.txt"),
         emotions_jsonl([{"text": "an odd comment", "labels": ["joy", 9]}], ids=True)),
    Case("multi_label_data_single_label_spec", "files", "tuneforge stage validate",
         ("examples/emotions.jsonl", "line 1", "a list", "model.task: multi-label-classification"),
         steps(emotions_jsonl(), params(model__task="sequence-classification"))),
    # out-of-scope examples (data.oos_file) for the rejection
    Case("oos_file_rows_with_known_labels", "files", "tuneforge stage validate",
         ("examples/oos.csv", "line 2", "card_arrival", "outside the label set"),
         steps(file("examples/oos.csv", "text,label\nwhere is my new card,card_arrival\nhow tall is everest,trivia\n"),
               params(data__oos_file="oos.csv", reject__enabled=True))),
    Case("oos_file_without_rejection", "params", "tuneforge run --set data.oos_file=oos.csv",
         ("data.oos_file", "reject.enabled"), file("examples/oos.csv", "text\nhow tall is everest\n")),
    Case("overlay_malformed", "params", "tuneforge run --config configs/broken.yaml", ("configs/broken.yaml",),
         file("configs/broken.yaml", "data:\n  dir: [examples\n")),
    Case("overlay_unknown_key", "params", "tuneforge run --config configs/typo.yaml", ("train.epoch",),
         file("configs/typo.yaml", "train:\n  epoch: 2\n")),
    Case("unsafe_model_name", "params", "tuneforge run --set registry.model_name=../x", ("registry.model_name",)),
    Case("suite_name_with_path", "params", "tuneforge run --set validate.suite=../../etc/passwd",
         ("validate.suite",)),
    Case("inf_learning_rate_set", "params", "tuneforge run --set train.learning_rate=.inf",
         ("train.learning_rate", "finite")),
    Case("inf_epochs_params_check", "params", "tuneforge params --check", ("params.yaml", "train.epochs", "finite"),
         params(train__epochs=float("inf"))),
    Case("nan_temperature_stage", "params", "python -m stages.distill", ("distill.temperature", "finite"),
         params(distill__temperature=float("nan"))),
    Case("yaml_alias_bomb", "params", "tuneforge params --check", ("params.yaml", "aliases"),
         file("params.yaml", alias_bomb())),
    Case("yaml_alias_bomb_set", "params", "tuneforge run --set split.seed=7", ("params.yaml", "aliases"),
         file("params.yaml", alias_bomb())),
    Case("params_list_set", "params", "tuneforge run --set split.seed=7", ("params.yaml", "mapping"),
         file("params.yaml", "- a\n")),
    Case("params_list_config", "params", "tuneforge run --config configs/banking77.yaml", ("params.yaml", "mapping"),
         file("params.yaml", "- a\n")),
    # models
    Case("model_base_missing_dir", "models", "tuneforge stage train", ("model.base", "/nonexistent/minilm"),
         params(model__base="/nonexistent/minilm")),
    Case("model_base_not_cached", "models", "python -m stages.train", ("model.base", "acme/no-such-model"),
         params(model__base="acme/no-such-model")),
    Case("model_dir_without_weights", "models", "python -m stages.train", ("model.base", "safetensors"),
         model_without_weights),
    Case("model_pickle_bin_only", "models", "dvc repro --single-item train", ("model.base", "safetensors"),
         model_pickle_only),
    Case("model_dir_without_tokenizer", "models", "python -m stages.train",
         ("model.base", "bad/no-tokenizer", "no usable tokenizer"), model_without_tokenizer),
    Case("max_seq_length_over_limit", "models", "tuneforge stage train", ("model.max_seq_length", "4096"),
         params(model__max_seq_length=4096)),
    Case("corrupted_safetensors", "models", "python -m stages.train", ("model.base", "bad/corrupt-model"),
         model_corrupt_weights),
    Case("diverging_learning_rate", "models", "tuneforge stage train", ("training loss", "nan", "train.learning_rate"),
         params(train__learning_rate=1e30)),
    # registry
    Case("unknown_model_ref", "registry", "tuneforge registry show nosuchmodel@production", ("nosuchmodel",)),
    Case("unknown_version", "registry", "tuneforge registry show intents:99", ("intents", "99"),
         needs_model=True),
    Case("promote_gates_failing", "registry",
         "tuneforge registry --params bad/strict.yaml promote intents 1 --to production",
         ("intents:1", "production", "gate"), strict_params, needs_model=True, allowed_changes=GATE_EVENT),
    Case("promote_unsafe_alias", "registry", "tuneforge registry promote intents 1 --to ../prod",
         ("alias", "../prod"), needs_model=True),
    Case("rollback_without_history", "registry", "tuneforge registry rollback intents --alias staging",
         ("intents@staging", "no previous holder"), needs_model=True),
    Case("rollback_unknown_alias", "registry", "tuneforge registry rollback intents --alias production",
         ("intents@production", "unknown alias"), needs_model=True),
    Case("unreachable_registry_cli", "registry", "tuneforge registry --params bad/unreachable.yaml models",
         ("registry",), unreachable_params),
    Case("unreachable_registry_stage", "registry", "python -m stages.validate", ("registry",),
         params(registry__url=UNREACHABLE_URL, registry__connect_timeout_s=2)),
    Case("malformed_ref", "registry", "tuneforge registry show intents:abc", ("intents:abc",)),
    Case("ref_with_path", "registry", "tuneforge registry lineage ../validate.validated",
         ("../validate.validated",)),
    Case("ref_superscript_version", "registry", "tuneforge registry show intents:²", ("intents:²", "ASCII digits")),
    Case("promote_arabic_indic_version", "registry", "tuneforge registry promote intents ١ --to production",
         ("'١'", "positive integer"), needs_model=True),
    Case("alias_trailing_newline", "registry", "tuneforge registry promote intents 1 --to 'production\n'",
         ("invalid alias", "production"), needs_model=True),
    Case("tag_trailing_newline", "registry", "tuneforge registry tag intents:1 'reviewed\n'",
         ("invalid tag", "reviewed"), needs_model=True),
    # predict
    Case("predict_missing_onnx_dir", "predict", "tuneforge predict models/onnx-missing 'my card was declined'",
         ("models/onnx-missing",)),
    Case("predict_no_input", "predict", "tuneforge predict models/onnx", ("nothing to classify",), needs_model=True),
    Case("predict_empty_file", "predict", "tuneforge predict models/onnx --file bad/empty.txt",
         ("bad/empty.txt", "no texts"), file("bad/empty.txt", "\n\n"), needs_model=True),
    Case("predict_file_is_a_directory", "predict", "tuneforge predict models/onnx --file examples",
         ("examples", "is a directory")),
    Case("predict_corrupt_onnx", "predict", "tuneforge predict bad/onnx 'my card was declined'",
         ("bad/onnx/model.int8.onnx",), corrupt_onnx, needs_model=True),
    Case("predict_tampered_weights", "predict", "tuneforge predict bad/onnx-tampered 'my card was declined'",
         ("bad/onnx-tampered/model.int8.onnx", "sha256", "meta.json"), tampered_onnx_weights, needs_model=True),
    Case("predict_bad_temperature", "predict",
         "tuneforge predict bad/onnx-temperature --no-verify 'my card was declined'",
         ("bad/onnx-temperature/labels.json", "temperature", "finite number above 0"), bad_temperature,
         needs_model=True),
    Case("predict_bad_threshold", "predict",
         "tuneforge predict bad/onnx-threshold --no-verify 'my card was declined'",
         ("bad/onnx-threshold/labels.json", "threshold", "[0, 1]", "1.5"), bad_threshold, needs_model=True),
    # serve: the server refuses to start with one line, before it listens or loads anything
    Case("serve_bad_ref", "serve", "tuneforge serve-model intents@@production --port 0",
         ("invalid alias", "@production")),
    Case("serve_unreachable_registry", "serve",
         "tuneforge serve-model intents@production --port 0 --params bad/unreachable.yaml",
         ("cannot reach registry database",), unreachable_params),
    Case("serve_port_in_use", "serve", "tuneforge serve-model intents@production --params bad/busy-port.yaml",
         ("cannot listen on 127.0.0.1:", "in use", "serve.port"), port_in_use_params),
]


# The reduced run: every command form and kind of input, none needing a trained model (about 2 minutes).
QUICK_CASES = (
    "missing_train_file", "empty_file", "non_utf8_bytes", "csv_ragged_row", "class_below_min_examples",
    "parquet_not_parquet", "jsonl_broken_line", "out_of_range_dvc", "unknown_stage", "malformed_yaml_run",
    "overlay_malformed", "unsafe_model_name", "model_pickle_bin_only", "corrupted_safetensors",
    "unknown_model_ref", "unreachable_registry_stage", "malformed_ref", "predict_missing_onnx_dir",
    "jsonl_text_not_a_string", "csv_text_over_field_limit", "model_dir_without_tokenizer",
    "inf_learning_rate_set", "yaml_alias_bomb", "params_list_set",
    "ref_superscript_version", "serve_bad_ref", "serve_unreachable_registry", "serve_port_in_use",
    "multi_label_unknown_label_in_list", "multi_label_separator_splits_nothing",
)
