"""The sink errors: what an adapter raises (or returns) so the runtime knows what to do next.

* :class:`TransientSinkError` — the database failed, not the data: the runtime retries the whole
  batch with backoff and never dead-letters it (an :class:`~logsvc_client.errors.Unavailable`).
* :class:`DataError` — one record cannot be written as it is: it goes to the dead-letter topic
  with :attr:`DataError.error_class` as ``dlq.error.class``, and the batch goes on.

Anything else an adapter lets escape stops the connector (a configuration or programming error).
"""

from __future__ import annotations

from typing import Any

from logsvc_client.errors import LogsvcError, Unavailable


class TransientSinkError(Unavailable):
    """The database failed, not the data: retry the batch later."""

    code = "sink_transient"


class DataError(LogsvcError):
    """One record cannot be written as it is; it goes to the dead-letter topic."""

    code = "sink_data_error"

    def __init__(self, message: str, error_class: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.error_class = error_class or type(self).__name__
