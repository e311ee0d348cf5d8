"""Field names MongoDB rejects (a leading ``$``, any ``.``): escaped or refused, recursively.

The rule is documented in :mod:`logsvc_connect.mongo`. Both functions walk dicts nested in
dicts and in lists, and leave values alone. :func:`escape_names` returns its argument itself
(no copy) when no name needs escaping, which is the common case, so clean documents cost one scan.
"""

from __future__ import annotations

from typing import Any

from logsvc_connect.errors import DataError

DOLLAR = "\uff04"  # FULLWIDTH DOLLAR SIGN
DOT = "\uff0e"  # FULLWIDTH FULL STOP


def escape_name(name: str) -> str:
    """``name`` with a leading ``$`` and every ``.`` replaced by their fullwidth forms."""
    if name[:1] == "$":
        name = DOLLAR + name[1:]
    if "." in name:
        name = name.replace(".", DOT)
    return name


def escape_names(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with every field name escaped; ``doc`` itself when none needs it.

    DataError when two names of one object are equal after escaping."""
    for name, value in doc.items():
        cls = value.__class__
        if cls is dict or cls is list or (name.__class__ is str and (name[:1] == "$" or "." in name)):
            break
    else:
        return doc  # flat and clean: nothing to copy
    out: dict[str, Any] = {}
    changed = False
    for name, value in doc.items():
        new_name = escape_name(name) if name.__class__ is str else name
        new_value = _escape_value(value)
        if new_name is not name or new_value is not value:
            changed = True
        out[new_name] = new_value
    if len(out) != len(doc):
        raise DataError(f"field names collide once escaped: {sorted(map(str, doc))!r}", "InvalidFieldName")
    return out if changed else doc


def _escape_value(value: Any) -> Any:
    cls = value.__class__
    if cls is dict:
        return escape_names(value)
    if cls is list:
        items = [_escape_value(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def check_names(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` unchanged; DataError naming the path of the first name MongoDB would reject."""
    path = _bad_name(doc)
    if path is not None:
        raise DataError(
            f"field name {'/'.join(path)!r} starts with '$' or contains '.' (field_names is 'reject')",
            "InvalidFieldName",
        )
    return doc


def _bad_name(value: Any) -> list[str] | None:
    """The path (names and ``[index]``) to the first rejected name under ``value``, or None."""
    cls = value.__class__
    if cls is dict:
        for name, item in value.items():
            if name.__class__ is str and (name[:1] == "$" or "." in name):
                return [name]
            found = _bad_name(item)
            if found is not None:
                return [str(name), *found]
    elif cls is list:
        for n, item in enumerate(value):
            found = _bad_name(item)
            if found is not None:
                return [f"[{n}]", *found]
    return None
