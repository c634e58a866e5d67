"""What the pipeline records never holds a secret: passwords in URLs are masked before anything is written.

A database URL in the spec (`registry.url`, `tune.storage`) may carry a password. The process connects with
the real value; every record of the config (meta.json, the registry's metadata, Prefect artifacts, error
lines, logs) goes through `for_records`, which masks it. Two layers, so that a new field cannot leak:
fields typed `SecretUrl` in tuneforge/base/spec.py are masked by their serializer whenever a config is dumped for
the records, and every string of what is recorded is scanned for `scheme://user:password@` besides (a URL
given as a `--set` override in a flow run's parameters, say).
"""

import re
from typing import Any

from pydantic import BaseModel

MASK = "***"
# model_dump(context=RECORDS_CONTEXT): the serializers of secret fields mask their value.
RECORDS_CONTEXT = {"tuneforge_records": True}
# scheme://user:password@ inside any text, read as SQLAlchemy reads a URL (the user has no ':' or '/', the
# password no '@'), and ending at whitespace or a quote: the password is replaced, the rest left as written.
_USERINFO_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s@'\"]*(?=@)")


def mask_url(url: str) -> str:
    """`url` with its password replaced by ***; unchanged when it has none (or is no URL at all)."""
    # Imported here: tuneforge.base.spec uses this module, and most stages never load SQLAlchemy.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return _USERINFO_PASSWORD.sub(lambda match: match["head"] + MASK, url)
    if not parsed.password:
        return url
    return parsed.render_as_string(hide_password=True)


def mask_text(text: str) -> str:
    """Every URL inside `text` with its password masked (an error message, a logged override)."""
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO_PASSWORD.sub(lambda match: match["head"] + MASK, text)


def for_records(value: Any) -> Any:
    """A config (a pydantic model, or dicts and lists holding models and plain values) as it may be recorded.

    Models are dumped with their aliases (as params.yaml names the keys) and secret fields masked; every
    string in the result, keys included, has the passwords of its URLs masked.
    """
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, context=RECORDS_CONTEXT)
    if isinstance(value, dict):
        return {for_records(key): for_records(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [for_records(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def masked_in_records(value: str, handler, info) -> Any:
    """Serializer of a secret field (pydantic WrapSerializer): masked when dumped for the records."""
    if info.context and info.context.get("tuneforge_records") and isinstance(value, str):
        return mask_url(value)
    return handler(value)
