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
from ruamel.yaml.error import YAMLError as RoundTripYAMLError

from tuneforge.base.errors import ConfigError
from tuneforge.base.spec import Params, parse_params


def parse_assignment(assignment: str) -> tuple[list[str], Any]:
    """`split.seed=7` -> (["split", "seed"], 7); the value is read as YAML, so `null`, `0.2`, `[a, b]` work."""
    key, sep, value = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"override '{assignment}': expected dotted.key=value")
    try:
        return parts, yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"override '{assignment}': value is not valid YAML") from None


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
    document = _read_yaml(params_path, round_trip.load) if params_path.is_file() else {}
    document = document or {}
    for overlay_path in overlays:
        overlay_path = Path(overlay_path)
        if not overlay_path.is_file():
            raise ConfigError(f"{overlay_path}: config file not found")
        overlay = _read_yaml(overlay_path, yaml.safe_load) or {}
        if not isinstance(overlay, dict):
            raise ConfigError(f"{overlay_path}: must be a mapping of sections")
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


def _read_yaml(path: Path, parse: Callable[[str], Any]) -> Any:
    """A spec or overlay file parsed, or one ConfigError line naming the file and the line of the mistake."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, RoundTripYAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None


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
