"""Who a call is: its principal, ``User:NAME`` (Kafka's model, see :mod:`logsvc.acl`).

The rule, first match wins:

1. **Token** (``auth_tokens_file`` set): the name its bearer token maps to. Every call must carry
   ``authorization: Bearer TOKEN`` with a token of the file, or :meth:`Principals.authenticate`
   raises :class:`Unauthenticated`. With mutual TLS *and* tokens both on, the token decides the
   principal: the certificate only gets the caller onto the port.
2. **Client certificate** (mutual TLS, no tokens file): ``User:<common name>``, or with
   ``tls_principal = "dn"`` ``User:<whole subject DN>`` (RFC 2253, as Kafka's default principal
   builder writes it: ``CN=alice,O=shop``). A certificate without a common name gives its DN.
3. Otherwise ``User:ANONYMOUS``.

The tokens file holds ``NAME TOKEN`` lines: NAME is 1 to 249 of ``[A-Za-z0-9._@-]`` (the
principal is ``User:NAME``; one name may have several tokens, e.g. while rotating), TOKEN at least
:data:`MIN_TOKEN_CHARS` printable ASCII characters without spaces, each token for one name only.
A line whose first non-blank character is ``#`` is a comment; blank lines are ignored; anything
else after the token is an error (a ``#`` inside a token is part of it). Errors name the file and
the line, never a token. A file that group or others may read is loaded with a warning.

:meth:`Principals.reload` (the broker calls it on SIGHUP) reads the file again and swaps the new
table in whole, or raises and keeps the old one: a broken edit never locks everyone out.

Tokens are looked up by their SHA-256 digest in a dict: one hash and one lookup per call, whatever
the number of tokens, and no comparison whose time says how much of a token was right.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from logsvc.acl import ANONYMOUS, PRINCIPAL_TYPE
from logsvc.errors import InvalidConfig, Unauthenticated
from logsvc.settings import Settings

log = logging.getLogger("logsvc.server")

KEY = "auth_tokens_file"
AUTHORIZATION = "authorization"
BEARER = "bearer "
MIN_TOKEN_CHARS = 16
NAME = re.compile(r"[A-Za-z0-9._@-]{1,249}")
TLS_PRINCIPALS = ("cn", "dn")
#: grpc's auth_context() keys for the peer's client certificate (mutual TLS).
X509_COMMON_NAME = "x509_common_name"
X509_SUBJECT = "x509_subject"

MISSING_TOKEN = (
    "this broker requires a bearer token: set LOGSVC_TOKEN (CLI, connectors) or pass Security(token=...) to the client"
)
MALFORMED_TOKEN = "the authorization metadata must be 'Bearer TOKEN'"
UNKNOWN_TOKEN = "the bearer token is not one this broker accepts"

Metadata = Iterable[tuple[str, str | bytes]]
AuthContext = Mapping[str, Sequence[bytes]]


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def _invalid(path: str, number: int, what: str) -> InvalidConfig:
    return InvalidConfig(f"{KEY}: line {number} of {path} {what}", key=KEY)


def _is_token(word: str) -> bool:
    return len(word) >= MIN_TOKEN_CHARS and all("!" <= c <= "~" for c in word)


def parse_tokens(text: bytes, path: str) -> dict[bytes, str]:
    """The tokens file's table: SHA-256 of each token -> its principal ``User:NAME``.

    InvalidConfig (key ``auth_tokens_file``) naming ``path`` and the line for anything that is not a
    comment, a blank line or a valid ``NAME TOKEN`` line; the message never holds a token."""
    table: dict[bytes, str] = {}
    first_line: dict[bytes, int] = {}
    for number, raw in enumerate(text.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise _invalid(path, number, "is not UTF-8 text") from None
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if len(words) == 1:
            raise _invalid(
                path,
                number,
                "holds one word: the format is now 'PRINCIPAL TOKEN' (e.g. 'billing TOKEN' for User:billing); "
                "give each token the name it acts as",
            )
        if len(words) > 2:
            raise _invalid(
                path, number, "holds more than 'PRINCIPAL TOKEN' (comments go on lines of their own, starting with #)"
            )
        name, token = words
        if not NAME.fullmatch(name):
            hint = " (without 'User:')" if name.startswith(f"{PRINCIPAL_TYPE}:") else ""
            raise _invalid(path, number, f"has a bad name{hint}: 1 to 249 of A-Z a-z 0-9 . _ @ -")
        if not _is_token(token):
            raise _invalid(
                path, number, f"has a bad token: at least {MIN_TOKEN_CHARS} printable ASCII characters, no spaces"
            )
        digest = _digest(token.encode("ascii"))
        if digest in first_line:
            raise _invalid(
                path, number, f"repeats the token of line {first_line[digest]}: each token must name one principal"
            )
        first_line[digest] = number
        table[digest] = f"{PRINCIPAL_TYPE}:{name}"
    if not table:
        raise InvalidConfig(f"{KEY}: {path} holds no 'PRINCIPAL TOKEN' line", key=KEY)
    return table


def load_tokens(path: str) -> dict[bytes, str]:
    """Read and parse the tokens file (:func:`parse_tokens`); warn when group or others may read it."""
    try:
        with open(path, "rb") as f:
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
            text = f.read()
    except OSError as e:
        raise InvalidConfig(f"{KEY}: cannot read {path}: {e.strerror or e}", key=KEY) from None
    table = parse_tokens(text, path)
    if mode & 0o077:
        log.warning("%s %s is open to group or others (mode %04o): chmod 600 %s", KEY, path, mode, path)
    return table


def certificate_principal(auth_context: AuthContext | None, tls_principal: str = "cn") -> str:
    """The principal of a mutual-TLS peer's certificate as grpc's ``context.auth_context()``
    reports it; ``User:ANONYMOUS`` when the peer presented none."""
    if not auth_context:
        return ANONYMOUS
    subject = _first(auth_context, X509_SUBJECT)
    common_name = _first(auth_context, X509_COMMON_NAME) if tls_principal == "cn" else None
    name = common_name or subject
    return f"{PRINCIPAL_TYPE}:{name}" if name else ANONYMOUS


def _first(auth_context: AuthContext, key: str) -> str | None:
    values = auth_context.get(key) or ()
    for value in values:
        text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
        if text:
            return text
    return None


class Principals:
    """Tells who a call is (see the module docstring); thread-safe, reloadable."""

    def __init__(self, tokens_file: str = "", tls_principal: str = "cn") -> None:
        if tls_principal not in TLS_PRINCIPALS:
            raise InvalidConfig(f"tls_principal={tls_principal!r} must be 'cn' or 'dn'", key="tls_principal")
        self.tokens_file = tokens_file
        self.tls_principal = tls_principal
        self._reload_lock = threading.Lock()
        self._table: Mapping[bytes, str] = {}
        if tokens_file:
            self.reload()

    @classmethod
    def from_settings(cls, settings: Settings) -> Principals:
        """From ``auth_tokens_file`` and ``tls_principal``; InvalidConfig when the file is unreadable
        or malformed."""
        return cls(settings.auth_tokens_file, settings.tls_principal)

    @property
    def requires_token(self) -> bool:
        """Whether every call (but the open ones, e.g. health checks) must carry a token."""
        return bool(self.tokens_file)

    def __len__(self) -> int:
        """How many tokens are loaded."""
        return len(self._table)

    def reload(self) -> None:
        """Read the tokens file again and swap the new table in whole. On any error raise
        InvalidConfig and keep serving with the old table."""
        if not self.tokens_file:
            return
        with self._reload_lock:
            table = load_tokens(self.tokens_file)
            self._table = table  # one reference assignment: a reader sees the old table or the new
        log.info("%s %s: %d tokens for %d principals", KEY, self.tokens_file, len(table), len(set(table.values())))

    def try_reload(self) -> bool:
        """:meth:`reload` for a SIGHUP handler: an error is logged (ERROR, naming the file and the
        line) instead of raised, and the old table stays in force. Whether the new file is in force."""
        try:
            self.reload()
        except InvalidConfig as e:
            log.error("%s; still using the tokens loaded before", e.message)
            return False
        return True

    def authenticate(self, metadata: Metadata | None, auth_context: AuthContext | None = None) -> str:
        """The principal of a call, from its invocation metadata (``(key, value)`` pairs as
        ``context.invocation_metadata()`` or ``HandlerCallDetails.invocation_metadata`` give them)
        and its ``context.auth_context()`` (only used without a tokens file, so the door, which
        has no context yet when it picks a handler, may pass None when :attr:`requires_token`).

        Raises :class:`Unauthenticated` when tokens are required and the call carries none, a
        malformed ``authorization`` value or a token the file does not hold."""
        if not self.requires_token:
            return certificate_principal(auth_context, self.tls_principal)
        value = _authorization(metadata)
        if value is None:
            raise Unauthenticated(MISSING_TOKEN)
        if value[: len(BEARER)].lower() != BEARER:
            raise Unauthenticated(MALFORMED_TOKEN)
        given = value[len(BEARER) :].strip().encode("utf-8", errors="replace")
        principal = self._table.get(_digest(given))
        if principal is None:
            raise Unauthenticated(UNKNOWN_TOKEN)
        return principal


def _authorization(metadata: Metadata | None) -> str | None:
    for key, value in metadata or ():
        if key == AUTHORIZATION:
            return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    return None


def principal_of(principals: Principals, context: Any) -> str:
    """:meth:`Principals.authenticate` for a servicer context (sync or grpc.aio)."""
    return principals.authenticate(context.invocation_metadata(), context.auth_context())
