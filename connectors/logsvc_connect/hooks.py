"""Hooks: user code a connector's config names as ``package.module:attr`` (the ``handler`` of
``logsvc connect python``, a runtime ``filter``), imported and checked once at start-up.

Every problem is an :class:`~logsvc_client.errors.InvalidConfig` naming the config key, its message
starting with that key and the path (``handler 'billing:handle' does not import: ...``).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from logsvc_client.errors import InvalidConfig


def import_hook(path: str, key: str) -> Any:
    """What ``path`` (``package.module:attr``) names; InvalidConfig naming ``key`` when it does not
    look like that, its module does not import, or the module has no such attribute."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InvalidConfig(f"{key} {path!r} must look like package.module:function", key=key)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or the module failing while it imports
        raise InvalidConfig(f"{key} {path!r} does not import: {type(e).__name__}: {e}", key=key) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InvalidConfig(f"{key} {path!r}: module {module_name} has no {attr!r}", key=key) from None


def check_one_argument(func: Any, name: str, key: str, argument: str, *, not_callable: str = "is not callable") -> None:
    """InvalidConfig naming ``key`` unless ``func`` is callable with one positional argument, what
    ``argument`` describes (e.g. "the record"). Callables without a signature (some builtins) are
    trusted."""
    if not callable(func):
        raise InvalidConfig(f"{key} {name!r} {not_callable}", key=key)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return  # builtins without a signature: trust them
    try:
        signature.bind(None)
    except TypeError:
        raise InvalidConfig(
            f"{key} {name!r} must take one argument, {argument} (its signature is {signature})", key=key
        ) from None
