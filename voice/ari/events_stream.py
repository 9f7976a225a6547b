"""The ARI event WebSocket (`/ari/events?app=...`): connect, deliver every event to an `AriRouter`,
and reconnect with exponential back-off and jitter whenever the connection is lost.

    stream = AriEventStream("http://127.0.0.1:8088", ["ccapp"], "centralita", "secret", router,
                            on_connect=resync)
    task = asyncio.create_task(stream.run())
    ...
    await stream.stop()

- Credentials go in an `Authorization: Basic` header (or, with `credentials_in_query=True`, as
  `api_key=user:pass` in the URL as the recording did; URLs tend to end up in logs).
- A 401/403 at the handshake is configuration, not an outage: `run()` raises `AriUnauthorized`.
- Events sent while the socket was down are lost: `on_connect` runs after every (re)connection, so the
  application can list its channels and bridges again (GET /channels) and settle calls it lost track of.
- A message that is not JSON or not an event is logged and skipped; a failing handler is logged by the
  router; neither stops the stream.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException

from voice.ari.errors import AriUnauthorized
from voice.ari.router import AriRouter
from voice.backoff import Backoff, pause

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def events_url(
    base_url: str,
    applications: Sequence[str],
    *,
    subscribe_all: bool = False,
    api_key: str | None = None,
) -> str:
    """ "http://127.0.0.1:8088" -> "ws://127.0.0.1:8088/ari/events?app=ccapp" (https -> wss)."""
    if not applications:
        raise ValueError("the event stream needs at least one application name")
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"not an http(s) or ws(s) URL: {base_url!r}")
    query: dict[str, str] = {"app": ",".join(applications)}
    if subscribe_all:
        query["subscribeAll"] = "true"
    if api_key is not None:
        query["api_key"] = api_key
    path = parts.path.rstrip("/") + "/ari/events"
    return urlunsplit((scheme, parts.netloc, path, urlencode(query, safe=",:"), ""))


class AriEventStream:
    def __init__(
        self,
        base_url: str,
        applications: Sequence[str],
        username: str,
        password: str,
        router: AriRouter,
        *,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        subscribe_all: bool = False,
        credentials_in_query: bool = False,
        backoff: Backoff = Backoff(),
        random_source: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        credentials = f"{username}:{password}"
        self.url = events_url(
            base_url,
            applications,
            subscribe_all=subscribe_all,
            api_key=credentials if credentials_in_query else None,
        )
        self._headers = (
            {}
            if credentials_in_query
            else {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
        )
        self._router = router
        self._on_connect = on_connect
        self._backoff = backoff
        self._random = random_source
        self._sleep = sleep
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._max_message_bytes = max_message_bytes
        self._socket: ClientConnection | None = None
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self.connections = 0  # successful handshakes so far
        self.events_received = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def stop(self) -> None:
        """Close the socket and make `run()` return (also from its back-off sleep)."""
        self._stopping.set()
        socket = self._socket
        if socket is not None:
            await socket.close()

    async def run(self) -> None:
        """Connect, deliver, reconnect, until `stop()` (a stopped stream stays stopped).
        Raises only `AriUnauthorized`."""
        delays = None
        while not self._stopping.is_set():
            try:
                async with connect(
                    self.url,
                    additional_headers=self._headers,
                    open_timeout=self._open_timeout,
                    ping_interval=self._ping_interval,
                    max_size=self._max_message_bytes,
                    proxy=None,
                ) as socket:
                    delays = None  # connected: the next outage starts the schedule again
                    await self._serve(socket)
                if not self._stopping.is_set():
                    logger.warning("ARI event stream closed by Asterisk (%s)", _redacted(self.url))
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    raise AriUnauthorized(
                        status, f"the event WebSocket refused the credentials ({status})", path="/ari/events"
                    ) from exc
                logger.warning("ARI event stream: handshake refused with HTTP %s", status)
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
                logger.warning("ARI event stream lost: %s: %s", type(exc).__name__, exc)
            finally:
                self._socket = None
                self._connected.clear()
            if self._stopping.is_set():
                break
            if delays is None:
                delays = self._backoff.delays(self._random)
            delay = next(delays)
            logger.info("ARI event stream: reconnecting in %.2f s", delay)
            await pause(self._sleep, delay, self._stopping)

    async def _serve(self, socket: ClientConnection) -> None:
        self._socket = socket
        self.connections += 1
        self._connected.set()
        logger.info("ARI event stream connected (%s), connection %d", _redacted(self.url), self.connections)
        if self._stopping.is_set():
            return
        if self._on_connect is not None:
            try:
                await self._on_connect()
            except Exception:
                logger.exception("ARI event stream: on_connect failed; continuing with the events")
        async for message in socket:
            await self._handle(message)

    async def _handle(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            logger.warning("ARI event stream: a message that is not JSON: %r", message[:200])
            return
        if not isinstance(data, dict):
            logger.warning("ARI event stream: a message that is not a JSON object: %r", message[:200])
            return
        self.events_received += 1
        await self._router.dispatch_raw(data)


def _redacted(url: str) -> str:
    """The URL without an api_key, for logs."""
    parts = urlsplit(url)
    query = "&".join(item for item in parts.query.split("&") if not item.startswith("api_key="))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
