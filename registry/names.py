"""Names of artifacts, models, aliases and tags, and the references the CLI and API accept.

Names reach the filesystem (download folders, cache paths), so they are bounded and free of separators:
[A-Za-z0-9][A-Za-z0-9._-]{0,63}, and never "..". Every pattern is matched against the whole text
(re.fullmatch: `$` would also accept a trailing newline), and versions are ASCII digits only (str.isdigit and
int() also take superscripts and other scripts' digits).
"""

import re
from dataclasses import dataclass

from registry.errors import RegistryError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
VERSION_PATTERN = re.compile(r"[0-9]{1,18}")  # bounded: a version fits the database's 64-bit integers
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def validate_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise RegistryError(
            f"invalid {what} {value!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'"
        )
    return value


def parse_version(text: str | int, what: str = "version") -> int:
    """A positive version number from ASCII digits (or an int), else one RegistryError line."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise RegistryError(f"invalid {what} {text!r}: must be a positive integer")
    if isinstance(text, str):
        if not VERSION_PATTERN.fullmatch(text):
            raise RegistryError(f"invalid {what} {text!r}: must be a positive integer (ASCII digits)")
        text = int(text)
    if text < 1:
        raise RegistryError(f"invalid {what} {text!r}: must be a positive integer")
    return text


def safe_name(text: str) -> str:
    """Turn a file name into a valid artifact name (for raw inputs registered as sources)."""
    cleaned = _INVALID_CHARS.sub("-", text).strip("-.") or "source"
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if not cleaned[0].isalnum():
        cleaned = f"s{cleaned}"
    return cleaned[:64].rstrip("-.")


@dataclass(frozen=True)
class Ref:
    """NAME (latest), NAME:VERSION or NAME@ALIAS."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> Ref:
    if "@" in text:
        name, alias = text.split("@", 1)
        return Ref(validate_name(name), alias=validate_name(alias, "alias"))
    if ":" in text:
        name, version = text.rsplit(":", 1)
        if not VERSION_PATTERN.fullmatch(version) or int(version) < 1:
            raise RegistryError(f"invalid reference {text!r}: version must be a positive integer (ASCII digits)")
        return Ref(validate_name(name), version=int(version))
    return Ref(validate_name(text))
