"""What the spec accepts and echoes is bounded: finite numbers only, YAML aliases that expand to a few values,
error lines that quote a bad value by its start, and a spec that is a mapping (issue #18, items 2-4)."""

import math
import typing

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from tuneforge.base.errors import ConfigError
from tuneforge.base.spec import MAX_ERROR_LINE_CHARS
from tuneforge.base.spec_yaml import MAX_SPEC_BYTES, MAX_SPEC_VALUES
from tuneforge.cli import app
from tuneforge.params import Params, load_params, parse_params
from tuneforge.params.overrides import apply_to_params_file

runner = CliRunner()


def float_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Dotted paths of every float field of the spec, nested sections included."""
    found = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += float_fields(annotation, (*prefix, key))
        elif float in _leaf_types(annotation):
            found.append((*prefix, key))
    return found


def _leaf_types(annotation) -> set:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, typing.types.UnionType):
        return set().union(*(_leaf_types(arg) for arg in args))
    if typing.get_origin(annotation) is typing.Annotated:
        return _leaf_types(args[0])
    return {annotation}


def nested(path: tuple[str, ...], value) -> dict:
    spec: dict = {}
    node = spec
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return spec


FLOAT_FIELDS = float_fields(Params)


def test_the_spec_has_the_float_fields_the_issue_names():
    dotted = {".".join(path) for path in FLOAT_FIELDS}
    assert {"train.learning_rate", "train.epochs", "train.weight_decay", "train.max_grad_norm",
            "distill.temperature", "tune.budget.epochs"} <= dotted
    assert len(dotted) > 25


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
def test_every_float_of_the_spec_must_be_finite(value):
    accepted = []
    for path in FLOAT_FIELDS:
        try:
            parse_params(nested(path, value))
        except ConfigError as exc:
            assert exc.message.startswith(f"params.yaml: {'.'.join(path)}: "), exc.message
            continue
        accepted.append(".".join(path))
    assert accepted == []


def test_an_infinite_learning_rate_names_the_key_and_finiteness(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  learning_rate: .inf\n  epochs: .inf\n")
    with pytest.raises(ConfigError) as caught:
        load_params(path)
    assert caught.value.message == f"{path}: train.learning_rate: must be a finite number, got inf"
    assert caught.value.detail == "train.epochs: must be a finite number, got inf"


def test_params_check_refuses_inf_in_one_line(in_tmp_dir):
    (in_tmp_dir / "params.yaml").write_text("distill:\n  temperature: .inf\n")
    result = runner.invoke(app, ["params", "--check"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: params.yaml: distill.temperature: must be a finite number, got inf"


@pytest.mark.parametrize("assignment", ["train.learning_rate=.inf", "train.epochs=.inf", "train.weight_decay=.nan",
                                        "promotion.min_metrics={metrics.macro_f1: .inf}"])
def test_set_with_an_infinite_value_is_refused_and_params_yaml_stays(tmp_path, assignment):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 3.0  # kept\n")
    with pytest.raises(ConfigError, match="must be a finite number"):
        apply_to_params_file(path, [assignment])
    assert path.read_text() == "train:\n  epochs: 3.0  # kept\n"


def laughs(levels: int, width: int = 10) -> str:
    """The billion-laughs pattern under an `_anchors` key: level k is `width` aliases of level k - 1, so
    `*a<levels-1>` stands for width ** levels strings."""
    lines = ["_anchors:", f"  a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"  a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_aliases_that_expand_past_the_bound_are_refused_before_validation(tmp_path):
    # Before: a million strings under data.labels made a multi-megabyte error line; a billion hung validation.
    path = tmp_path / "params.yaml"
    path.write_text(laughs(6) + "data:\n  labels: *a5\n")
    with pytest.raises(ConfigError) as caught:
        load_params(path)
    assert caught.value.message == (
        f"{path}: its YAML aliases expand to more than {MAX_SPEC_VALUES:,} values; a spec is a few hundred "
        "(write repeated values out, or use few aliases)"
    )


def test_aliases_under_the_bound_still_work(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  learning_rate: &lr 1.0e-3\ndistill:\n  learning_rate: *lr\n"
                    "data:\n  labels: &labels [a, b, c]\n")
    params = load_params(path)
    assert params.train.learning_rate == params.distill.learning_rate == 1e-3
    assert params.data.labels == ["a", "b", "c"]


def test_a_value_aliases_make_big_is_refused_on_every_path_that_reads_the_spec(tmp_path):
    spec = tmp_path / "params.yaml"
    spec.write_text(laughs(6) + "data:\n  labels: *a5\n")
    before = spec.read_text()
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(before)
    clean = tmp_path / "clean.yaml"
    clean.write_text("split:\n  seed: 3\n")
    calls = {
        "load_params": lambda: load_params(spec),
        "--set": lambda: apply_to_params_file(spec, ["split.seed=1"]),
        "--config": lambda: apply_to_params_file(clean, overlays=[overlay]),
    }
    for name, call in calls.items():
        with pytest.raises(ConfigError, match="aliases expand to more than") as caught:
            call()
        assert len(caught.value.message) < 300 and not caught.value.detail, name
    assert spec.read_text() == before and clean.read_text() == "split:\n  seed: 3\n"


def test_a_set_value_with_aliases_is_bounded_too(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  seed: 3\n")
    value = "{l0: &l0 [x, x, x, x, x, x, x, x, x, x]"
    for level in range(1, 6):
        value += f", l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]"
    with pytest.raises(ConfigError) as caught:
        apply_to_params_file(path, [f"data.labels={value}}}"])
    assert caught.value.message.startswith("override 'data.labels={l0: &l0 [x, x, x,")
    assert caught.value.message.endswith("…: value: its YAML aliases expand to more than 50,000 values; a spec is "
                                         "a few hundred (write repeated values out, or use few aliases)")
    assert path.read_text() == "split:\n  seed: 3\n"


def test_a_self_referencing_alias_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  labels: &loop [a, *loop]\n")
    with pytest.raises(ConfigError, match="a YAML alias refers to a value that contains it"):
        load_params(path)


def test_a_spec_file_over_the_size_bound_is_refused_unread(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# padding\n" * (MAX_SPEC_BYTES // 10 + 1) + "split:\n  seed: 3\n")
    with pytest.raises(ConfigError, match=rf"params.yaml: [\d,]+ bytes; a spec file is at most {MAX_SPEC_BYTES:,}"):
        load_params(path)


def test_error_lines_quote_a_long_value_by_its_start():
    for spec in ({"train": {"batch_size": "9" * 100_000}}, {"data": {"labels": [["x"] * 100_000]}},
                 {"split": {"seed": [[[["x" * 1000]]]]}}):
        with pytest.raises(ConfigError) as caught:
            parse_params(spec)
        line = caught.value.message
        assert len(line) <= MAX_ERROR_LINE_CHARS and "got " in line, line
    with pytest.raises(ConfigError) as caught:
        parse_params({"train": {"batch_size": "9" * 100_000}})
    shown = caught.value.message.split("got ", 1)[1]
    assert shown == "'" + "9" * 78 + "…"


def test_many_errors_are_listed_up_to_a_bound():
    with pytest.raises(ConfigError) as caught:
        parse_params({"data": {"labels": list(range(1000))}})
    detail = caught.value.detail.splitlines()
    assert len(detail) == 21 and detail[-1] == "... and 979 more"


@pytest.mark.parametrize("document", ["- a\n", "just a string\n", "42\n"], ids=["list", "string", "number"])
def test_a_params_yaml_that_is_not_a_mapping_is_one_line_on_set_and_config(tmp_path, document):
    path = tmp_path / "params.yaml"
    path.write_text(document)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("split:\n  seed: 3\n")
    calls = (lambda: apply_to_params_file(path, ["split.seed=7"]), lambda: apply_to_params_file(path, [], [overlay]))
    for call in calls:
        with pytest.raises(ConfigError) as caught:
            call()
        assert caught.value.message.startswith(f"{path}: must be a mapping of sections, got a")
    assert path.read_text() == document


def test_tuneforge_run_set_on_a_list_params_yaml_is_one_line(in_tmp_dir):
    (in_tmp_dir / "params.yaml").write_text("- a\n")
    (in_tmp_dir / "dvc.yaml").write_text("stages:\n  validate:\n    cmd: 'true'\n")
    for args in (["run", "--set", "split.seed=7"], ["run", "--config", "overlay.yaml"]):
        (in_tmp_dir / "overlay.yaml").write_text("split:\n  seed: 3\n")
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.output.strip() == "error: params.yaml: must be a mapping of sections, got a list"
    assert (in_tmp_dir / "params.yaml").read_text() == "- a\n"
