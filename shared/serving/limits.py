"""The one plain-ASGI layer every request goes through, :class:`RequestGuard`: it counts and times
the request, and guards the app from one client. One layer rather than three: each layer is a
coroutine and send/receive wrappers per request, which a one-row model request notices.

- Metrics: requests by route and status, latency (:class:`~shared.serving.telemetry.Telemetry`); an
  unhandled error becomes a JSON 500 and the server keeps serving; a client that hung up before
  its answer is a 499, not an error.
- Auth: with a token set, every route but the probes and ``public`` ones needs
  ``Authorization: Bearer <token>`` (401), checked before any body is read.
- Body: a declared ``Content-Length`` over the limit is refused before reading (413); a chunked body
  is counted as it streams and cut off at the limit; a body that has not fully arrived
  ``read_timeout_s`` after the request's head (one byte a second, or a ``Content-Length`` larger
  than what is sent) is answered 408 and the connection closed.
"""
from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Iterable

from starlette.requests import ClientDisconnect

from shared.serving.deadlines import Deadline, Deadlines
from shared.serving.telemetry import CLIENT_CLOSED, Telemetry

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """Raised from ``receive`` past the size limit; the middleware answers 413."""


class BodyTooSlow(Exception):
    """Raised from ``receive`` past the read deadline; the middleware answers 408."""


def _json_response(status: int, message: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> tuple:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    return ({"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body})


_INTERNAL = b'{"error": "internal error; the server logged the details and keeps serving"}'


class RequestGuard:
    """Metrics, bearer token and body limits for every HTTP request (see the module doc)."""

    def __init__(self, app, telemetry: Telemetry, max_bytes: int, read_deadlines: Deadlines | None = None,
                 token: str | None = None, open_paths: Iterable[str] = ()):
        self.app, self.telemetry, self.max_bytes = app, telemetry, max_bytes
        self.body_deadlines = read_deadlines  # serve.read_timeout_s's, shared with the request heads (app.py)
        self.token = token.encode() if token else None
        paths = set(open_paths)
        self.exact = frozenset(paths)
        self.prefixes = tuple(p.rstrip("/") + "/" for p in paths if p.rstrip("/"))

    def is_open(self, path: str) -> bool:
        """Whether ``path`` needs no token: one of the open paths, or below one that is not ``/``."""
        return path in self.exact or path.startswith(self.prefixes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status, started = 500, False

        async def tracking_send(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _send(tracking_send, *refusal)
            elif self.body_deadlines is None:
                await self.app(scope, self._guarded(receive, None), tracking_send)
            else:
                with self.body_deadlines.watch(expired=BodyTooSlow) as deadline:
                    await self.app(scope, self._guarded(receive, deadline), tracking_send)
        except BodyTooLarge:
            if not started:
                await _send(tracking_send, *self._too_large())
        except BodyTooSlow:
            if not started:
                await _send(tracking_send, 408, f"the request body did not arrive within {self.body_deadlines.seconds:g}s "
                                                "(serve.read_timeout_s); send it at once, with a correct "
                                                "Content-Length", [(b"connection", b"close")])
        except ClientDisconnect:
            status = CLIENT_CLOSED if not started else status
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if not started:
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": _INTERNAL})
        path = scope.get("path", "")
        self.telemetry.observe(path if path in self.telemetry.routes else "other", status, time.perf_counter() - t0)

    def _refusal(self, scope) -> tuple | None:
        """``(status, message, headers)`` for a request refused on its head alone, else None."""
        given, length = b"", b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                given = given.strip() if scheme.lower() == b"bearer" else b""
            elif name == b"content-length":
                length = value
        if self.token is not None and not self.is_open(scope.get("path", "")) and not hmac.compare_digest(
                given, self.token):
            return 401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')", [
                (b"www-authenticate", b"Bearer")]
        if length.isdigit() and int(length) > self.max_bytes:
            return self._too_large()
        return None

    def _too_large(self) -> tuple:
        return 413, (f"request body is larger than the {self.max_bytes}-byte limit (serve.max_body_bytes); "
                     "send fewer or smaller instances"), []

    def _guarded(self, receive, deadline: Deadline | None):
        """``receive``, counting the body against the limit; the body's ``deadline`` (the
        request's, from :meth:`__call__`) is cleared once the whole body has arrived."""
        seen = 0

        async def guarded_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if not message.get("more_body", False) and deadline is not None:
                    deadline.clear()
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        return guarded_receive


async def _send(send, status: int, message: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    start, body = _json_response(status, message, extra_headers)
    await send(start)
    await send(body)
