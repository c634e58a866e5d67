"""Reading the spec's YAML (params.yaml, overlay files, `--set` values) within bounds.

YAML aliases let a few lines stand for an exponentially large value (`a: &a [x, x]`, `b: &b [*a, *a]`, ...:
the "billion laughs"). The parser shares the aliased node, so parsing stays cheap, but validating or printing
the value walks every copy. A spec is a few hundred values: the document's size and the number of values
its aliases expand to are bounded, and a document past either bound is refused in one line before anything
reads its values.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml.error import YAMLError as RoundTripYAMLError

from tuneforge.base.errors import ConfigError

MAX_SPEC_BYTES = 1 << 20  # params.yaml is a few KiB; banking77's overlay is under one
MAX_SPEC_VALUES = 50_000  # scalars, lists and mappings after alias expansion (the default spec has ~400)


def safe_compose(text: str):
    return yaml.compose(text, Loader=yaml.SafeLoader)


def read_spec(path: Path, load: Callable[[str], Any], compose: Callable[[str], Any] = safe_compose) -> Any:
    """The YAML document in `path` parsed by `load`, or one ConfigError line naming the file.

    `compose` is the same parser's node-graph reader (yaml.compose, ruamel's YAML().compose): the bounds
    are checked on the graph before `load` builds any value."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes; a spec file is at most {MAX_SPEC_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid YAML (not UTF-8 text)") from None
    return parse_spec_text(text, str(path), load, compose)


def parse_spec_text(
    text: str, source: str, load: Callable[[str], Any] = yaml.safe_load, compose: Callable[[str], Any] = safe_compose
) -> Any:
    """`text` parsed as YAML within the bounds; errors name `source` and, where known, the line."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SPEC_BYTES:
        raise ConfigError(f"{source}: longer than {MAX_SPEC_BYTES:,} bytes")
    try:
        root = compose(text)
        if root is not None:
            check_expansion(root, source)
        return load(text)
    except (yaml.YAMLError, RoundTripYAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{source}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid YAML (nested too deeply)") from None


def check_expansion(root, source: str, limit: int = MAX_SPEC_VALUES) -> int:
    """How many values the node graph stands for once its aliases are expanded; ConfigError past `limit`.

    Each node is sized once (aliases share nodes), so this costs the graph's size, not the expansion's."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{source}: a YAML alias refers to a value that contains it (a cycle)")
        open_nodes.add(key)
        total = 1
        if isinstance(node.value, list):  # a sequence (nodes) or a mapping ((key, value) node pairs)
            for item in node.value:
                for child in item if isinstance(item, tuple) else (item,):
                    total += size(child)
                    if total > limit:
                        raise ConfigError(
                            f"{source}: its YAML aliases expand to more than {limit:,} values; a spec is a few "
                            "hundred (write repeated values out, or use few aliases)"
                        )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)
