"""Plain ASGI middleware guarding the app from one client: a body too large or too slow, and a
caller without the bearer token.

- :class:`BodySizeLimit`: a declared ``Content-Length`` over the limit is refused before reading
  (413); a chunked body is counted as it streams and cut off at the limit; a body that has not
  fully arrived ``read_timeout_s`` after the request's head (one byte a second, or a
  ``Content-Length`` larger than what is sent) is answered 408 and the connection closed.
- :class:`BearerAuth`: with a token set, every route but the probes and ``public`` ones needs
  ``Authorization: Bearer <token>`` (401).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import sys
from collections.abc import Iterable
from contextlib import asynccontextmanager


class BodyTooLarge(Exception):
    """Raised from ``receive`` past the size limit; the middleware answers 413."""


class BodyTooSlow(Exception):
    """Raised from ``receive`` past the read deadline; the middleware answers 408."""


# ``async with deadline_at(loop_time):`` raises TimeoutError at that time (asyncio.timeout_at on 3.11+)
if sys.version_info >= (3, 11):
    deadline_at = asyncio.timeout_at
else:  # pragma: no cover - Python 3.10

    @asynccontextmanager
    async def deadline_at(when: float):
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        handle = loop.call_at(when, task.cancel)
        try:
            yield
        except asyncio.CancelledError:
            if loop.time() >= when:
                raise TimeoutError from None
            raise
        finally:
            handle.cancel()


def _json_response(status: int, message: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> tuple:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    return ({"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` (413) or slower than ``read_timeout_s`` (408)."""

    def __init__(self, app, max_bytes: int, read_timeout_s: float | None = None):
        self.app, self.max_bytes, self.read_timeout_s = app, max_bytes, read_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await self._reject(send, 413, f"request body is larger than the {self.max_bytes}-byte "
                                                     "limit (serve.max_body_bytes); send fewer or smaller instances")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout_s if self.read_timeout_s else None
        seen = 0
        body_done = False
        started = False

        async def guarded_receive():
            nonlocal seen, body_done
            if body_done or deadline is None:  # later receives wait for a disconnect: no deadline
                message = await receive()
            else:
                try:
                    async with deadline_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise BodyTooSlow from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, 413, f"request body is larger than the {self.max_bytes}-byte limit "
                                              "(serve.max_body_bytes); send fewer or smaller instances")
        except BodyTooSlow:
            if not started:
                await self._reject(send, 408, f"the request body did not arrive within {self.read_timeout_s:g}s "
                                              "(serve.read_timeout_s); send it at once, with a correct "
                                              "Content-Length", close=True)

    @staticmethod
    async def _reject(send, status: int, message: str, close: bool = False):
        start, body = _json_response(status, message, [(b"connection", b"close")] if close else [])
        await send(start)
        await send(body)


class BearerAuth:
    """With ``token`` set, refuse (401) every path but ``open_paths`` (exact, or below one that
    is not ``/``) without ``Authorization: Bearer <token>``; without a token, pass through."""

    def __init__(self, app, token: str | None, open_paths: Iterable[str]):
        self.app = app
        self.token = token.encode() if token else None
        paths = set(open_paths)
        self.exact = frozenset(paths)
        self.prefixes = tuple(p.rstrip("/") + "/" for p in paths if p.rstrip("/"))

    def is_open(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)

    async def __call__(self, scope, receive, send):
        if self.token is None or scope["type"] != "http" or self.is_open(scope.get("path", "")):
            return await self.app(scope, receive, send)
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                given = given.strip() if scheme.lower() == b"bearer" else b""
        if hmac.compare_digest(given, self.token):
            return await self.app(scope, receive, send)
        start, body = _json_response(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                                     [(b"www-authenticate", b"Bearer")])
        await send(start)
        await send(body)
