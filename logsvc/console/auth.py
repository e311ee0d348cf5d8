"""Who may change state, and proof that a request came from the console's own page.

Every state-changing action (reset offsets, replay a dead letter) is a POST that must pass, in
order, :meth:`Guard.check_post`:

1. **Same origin**: the ``Origin`` header (or, without one, the ``Referer``) names this console's
   own scheme, host and port. A browser always sends ``Origin`` on a cross-site POST, and a page
   of another site cannot forge it.
2. **CSRF token**: the form's ``csrf_token`` equals the one of the browser's session (a random
   value per session, kept server-side, put in every form the console renders). The session
   cookie is ``HttpOnly`` and ``SameSite=Strict``, so another site's form does not even carry it.
3. **A console token**: the session signed in with a token of ``--auth-tokens FILE`` — the
   broker's file format, read by the broker's own parser (:class:`logsvc.server.principals.Principals`).
   Without a tokens file every action is refused (the page says so); with ``--read-only`` they
   are not even shown.

Sessions live in memory (a restart signs everyone out), at most :data:`MAX_SESSIONS`, the least
recently used forgotten first. Refusals raise :class:`~logsvc_client.errors.PermissionDenied` or
:class:`~logsvc_client.errors.Unauthenticated`, which the app shows as a 403 or 401 page.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from logsvc.server.principals import AUTHORIZATION, Principals
from logsvc_client.errors import PermissionDenied, Unauthenticated

COOKIE = "logsvc_console_session"
CSRF_FIELD = "csrf_token"
MAX_SESSIONS = 10_000

NO_TOKENS = (
    "this console was started without --auth-tokens: actions that change state (reset offsets, replay) "
    "are refused; restart it with --auth-tokens FILE to allow them"
)
READ_ONLY = "this console is read-only (--read-only): actions that change state are refused"
SIGN_IN = "sign in with a console token first: actions that change state need one"
BAD_ORIGIN = "refused: the request did not come from this console's own page (Origin/Referer)"
BAD_CSRF = "refused: the form's CSRF token is missing or not this session's (reload the page and try again)"


@dataclass
class Session:
    id: str
    csrf_token: str
    principal: str | None = None  # User:NAME once signed in with a console token
    #: resets whose dry run this session was shown, (group, topic, spec, value): only those execute
    planned_resets: set[tuple[str, str, str, str]] = field(default_factory=set)


class Sessions:
    """Browser sessions by cookie value, in memory, least recently used forgotten first."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._max = max_sessions
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is not None:
            self._by_id.move_to_end(session_id)
        return session

    def new(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        self._by_id[session.id] = session
        while len(self._by_id) > self._max:
            self._by_id.popitem(last=False)
        return session

    def get_or_new(self, session_id: str | None) -> tuple[Session, bool]:
        """The session of ``session_id``, or a new one (and True: the cookie must be set)."""
        session = self.get(session_id)
        return (session, False) if session is not None else (self.new(), True)

    def renew(self, session: Session) -> Session:
        """A new session (id and CSRF token) in place of ``session``, with its principal: on
        signing in, so a session id planted in a browser before is worth nothing after."""
        self.end(session)
        fresh = self.new()
        fresh.principal = session.principal
        fresh.planned_resets = session.planned_resets
        return fresh

    def end(self, session: Session) -> None:
        self._by_id.pop(session.id, None)


def same_origin(headers: Mapping[str, str], scheme: str, host: str) -> bool:
    """Whether ``Origin`` (else ``Referer``) is ``scheme://host`` — ``host`` as the request's
    ``Host`` header gives it. A request with neither is refused: browsers send one on every POST."""
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.scheme == scheme and parts.netloc.lower() == host.lower()


class Guard:
    """The console's rules for state-changing requests (see the module docstring)."""

    def __init__(self, tokens_file: str, read_only: bool) -> None:
        self.read_only = read_only
        # the broker's parser and lookup: InvalidConfig naming the file and line when malformed
        self._principals = Principals(tokens_file) if tokens_file else None

    @property
    def actions_allowed(self) -> bool:
        return self._principals is not None and not self.read_only

    def refusal(self) -> str | None:
        """Why no action can be carried out at all, or None when signing in allows them."""
        if self.read_only:
            return READ_ONLY
        if self._principals is None:
            return NO_TOKENS
        return None

    def sign_in(self, session: Session, token: str) -> str:
        """Mark ``session`` as the principal of ``token``; Unauthenticated for a token the file
        does not hold (the message never repeats it)."""
        why = self.refusal()
        if why is not None or self._principals is None:
            raise PermissionDenied(why or NO_TOKENS)
        try:
            principal = self._principals.authenticate([(AUTHORIZATION, f"Bearer {token.strip()}")])
        except Unauthenticated:
            raise Unauthenticated("that is not a token of this console's --auth-tokens file") from None
        session.principal = principal
        return principal

    def check_form(
        self, session: Session | None, headers: Mapping[str, str], scheme: str, host: str, form_csrf: str | None
    ) -> Session:
        """Steps 1 and 2 of the module docstring (also for signing in); the session."""
        if not same_origin(headers, scheme, host):
            raise PermissionDenied(BAD_ORIGIN)
        if session is None or not form_csrf or not hmac.compare_digest(form_csrf, session.csrf_token):
            raise PermissionDenied(BAD_CSRF)
        return session

    def check_post(
        self, session: Session | None, headers: Mapping[str, str], scheme: str, host: str, form_csrf: str | None
    ) -> str:
        """All three steps; the principal carrying out the action."""
        why = self.refusal()
        if why is not None:
            raise PermissionDenied(why)
        checked = self.check_form(session, headers, scheme, host, form_csrf)
        if checked.principal is None:
            raise Unauthenticated(SIGN_IN)
        return checked.principal
