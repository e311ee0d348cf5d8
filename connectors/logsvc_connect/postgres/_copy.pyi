"""Types of the C extension built from _copy.c (see that file and logsvc_connect.postgres.copy_stream)."""

from typing import Any

def jsonb_copy(records: list[Any], topic: str, needs_key: bool, /) -> bytes | None: ...
