"""The codec's C extension, :mod:`logsvc_wire._codec`, or None: where the wire's hot loops come from.

``pip install`` builds the extension when a C compiler is there; without one (or with the
environment variable ``LOGSVC_PURE_PYTHON=1``, to test the fallback or compare the two) every
module of the wire runs its pure-Python code instead, which gives the same bytes, decodings and
messages, slower. The choice is made once, when the wire is imported.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: set to 1 (or true) to run the pure-Python codec even when the C extension was built
ENV_PURE_PYTHON = "LOGSVC_PURE_PYTHON"


def pure_python_forced() -> bool:
    """Whether :data:`ENV_PURE_PYTHON` asks for the pure-Python code (the connectors' C paths
    follow it too)."""
    return os.environ.get(ENV_PURE_PYTHON, "").strip().lower() in ("1", "true", "yes")


def optional_extension(name: str) -> ModuleType | None:
    """The C extension module ``name``, or None when it was not built (no C compiler) or
    :data:`ENV_PURE_PYTHON` asks for the pure-Python code."""
    if pure_python_forced():
        return None
    try:
        return importlib.import_module(name)
    except ImportError:  # built without a C compiler
        return None


#: the C extension, or None when the pure-Python code runs
extension: ModuleType | None = optional_extension("logsvc_wire._codec")
