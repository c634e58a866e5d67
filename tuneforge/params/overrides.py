"""Changing params.yaml for one run: dotted `key=value` overrides and overlay files (configs/*.yaml).

Overrides are applied to params.yaml itself, as `dvc exp run --set-param` does, so that DVC sees them
as params changes and the file stays the one record of what ran. Comments and key order survive
(ruamel round-trip), and nothing is written unless the result validates.
"""

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from tuneforge.base.errors import ConfigError
from tuneforge.base.spec import shown_value
from tuneforge.base.spec_yaml import parse_spec_text, read_spec
from tuneforge.params import Params, parse_params


def parse_assignment(assignment: str) -> tuple[list[str], Any]:
    """`split.seed=7` -> (["split", "seed"], 7); the value is read as YAML, so `null`, `0.2`, `[a, b]` work."""
    key, sep, value = assignment.partition("=")
    parts = key.strip().split(".")
    shown = shown_value(assignment)
    if not sep or not all(parts):
        raise ConfigError(f"override {shown}: expected dotted.key=value")
    return parts, parse_spec_text(value, f"override {shown}: value") if value.strip() else None


def merge(base: dict, overlay: dict) -> None:
    """Deep-merge `overlay` into `base` in place (mappings merge, anything else replaces)."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value


def apply_to_params_file(
    params_path: Path,
    assignments: list[str] = (),
    overlays: list[Path] = (),
    verify: Callable[[Params], None] | None = None,
) -> Params:
    """Apply overlays (deep-merged), then assignments (each replaces its key), validate, write back if valid."""
    params_path = Path(params_path)
    round_trip = YAML()
    round_trip.preserve_quotes = True
    document = read_spec(params_path, round_trip.load, round_trip.compose) if params_path.is_file() else {}
    document = _mapping(document or {}, params_path)
    for overlay_path in overlays:
        overlay_path = Path(overlay_path)
        if not overlay_path.is_file():
            raise ConfigError(f"{overlay_path}: config file not found")
        overlay = _mapping(read_spec(overlay_path, yaml.safe_load) or {}, overlay_path)
        merge(document, overlay)
    for assignment in assignments:
        parts, value = parse_assignment(assignment)
        assign(document, parts, value)
    params = parse_params(_to_builtin(document), source=str(params_path))
    if verify:
        verify(params)
    if overlays or assignments:
        buffer = io.StringIO()
        round_trip.dump(document, buffer)
        params_path.write_text(buffer.getvalue(), encoding="utf-8")
    return params


def _mapping(document: Any, path: Path) -> dict:
    """The document if it is a mapping of sections (as every spec and overlay is), else one ConfigError line."""
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: must be a mapping of sections, got {_kind(document)}")
    return document


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__} ({shown_value(value)})"


def assign(document: dict, parts: list[str], value: Any) -> None:
    """Set one dotted key, replacing what was there: `promotion.min_metrics={}` empties the mapping.

    This is `dvc exp run -S`'s meaning; overlay files, in contrast, deep-merge section by section.
    """
    node = document
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _to_builtin(node: Any) -> Any:
    """ruamel's round-trip nodes (CommentedMap, ScalarFloat...) as plain types, as pydantic's strict mode wants."""
    if isinstance(node, dict):
        return {str(key): _to_builtin(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_to_builtin(value) for value in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)
