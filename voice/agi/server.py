"""The FastAGI server: Asterisk's `AGI(agi://host:4573/<flow>)` connects here, one task per call.

Per connection: refuse peers outside the allow-list before reading anything; read the agi_* block within
a time limit; pick the handler for the flow named in the URL (unknown flow: the fallback, which by default
hangs up); run it; and always close the socket at the end. Asterisk never closes it itself: a socket left
open keeps the channel inside AGI() for ever, even after the caller hangs up.

A failing call is logged with its channel and uniqueid and never touches another call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from voice.agi.errors import AgiChannelGone, AgiError, AgiTimeout
from voice.agi.protocol import DEFAULT_PORT, AgiEnvironment
from voice.agi.session import AgiSession, AgiTimeouts, StreamTransport
from voice.peer_addresses import LOOPBACK, PeerAllowList, bound_addresses, describe_address

logger = logging.getLogger(__name__)

Handler = Callable[[AgiSession], Awaitable[None]]
Router = Callable[[AgiEnvironment], Handler | None]


async def hang_up_politely(session: AgiSession) -> None:
    """The default for a flow nobody handles: end the call cleanly (AGISTATUS=HANGUP)."""
    await session.hangup()


class FastAgiServer:
    def __init__(
        self,
        router: Router,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        allowed_peers: Iterable[str] = LOOPBACK,
        fallback: Handler = hang_up_politely,
        timeouts: AgiTimeouts = AgiTimeouts(),
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> None:
        """`allowed_peers` holds addresses or networks ("10.0.0.5", "10.0.0.0/24") of the Asterisk hosts.
        `reuse_port` lets several worker processes listen on one port; the kernel spreads the calls."""
        self._router = router
        self._reuse_port = reuse_port
        # asyncio's default accept queue (100) overflows in a burst of calls: the agi_* block then comes
        # after its time limit and the call is lost (2.7% of a 1,000-call burst, bench/agi_sessions.py).
        self._backlog = backlog
        self._host = host
        self._port = port
        self._allowed = PeerAllowList(allowed_peers)
        self._fallback = fallback
        self._timeouts = timeouts
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the FastAGI server is already running")
        self._stopping = False
        self._server = await asyncio.start_server(
            self._on_connection,
            self._host,
            self._port,
            reuse_port=self._reuse_port or None,
            backlog=self._backlog,
        )
        logger.info("FastAGI server listening on %s", ", ".join(map(describe_address, self.addresses)))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return bound_addresses(self._server)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port=0)."""
        if not self.addresses:
            raise RuntimeError("the FastAGI server is not running")
        return self.addresses[0][1]

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop accepting calls, let running ones finish for `grace_seconds`, then cancel the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        await asyncio.sleep(0)  # let connections accepted just now register (and see _stopping)
        calls = set(self._calls)
        if calls:
            logger.info("FastAGI server stopping: waiting up to %gs for %d calls", grace_seconds, len(calls))
            _, pending = await asyncio.wait(calls, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning("FastAGI server stopped: cancelled %d calls still running", len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> FastAgiServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # --- one connection ---------------------------------------------------------------------------

    def is_allowed(self, host: str) -> bool:
        return self._allowed.allows(host)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else ""
        if self._stopping or not self.is_allowed(host):
            why = "server stopping" if self._stopping else "address not in the allow-list"
            logger.warning("FastAGI connection from %s refused: %s", describe_address(peer), why)
            writer.transport.abort()  # at once, without reading or sending a byte
            return
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        transport = StreamTransport(reader, writer)
        try:
            await self._serve(transport, describe_address(peer))
        except asyncio.CancelledError:
            # Our own stop() cancelled the call after the grace period. Ending quietly matters on
            # Python 3.11, whose stream callback reports a cancelled handler task as an error.
            if not self._stopping:
                raise
        finally:
            await transport.close()
            self._calls.discard(task)

    async def _serve(self, transport: StreamTransport, peer: str) -> None:
        try:
            session = await AgiSession.open(transport, timeouts=self._timeouts)
        except AgiTimeout as exc:
            logger.warning("FastAGI connection from %s closed: %s", peer, exc)
            return
        except AgiError as exc:
            logger.warning("FastAGI connection from %s closed: bad AGI environment: %s", peer, exc)
            return
        env = session.env
        call = f"flow {env.flow!r}, channel {env.channel}, uniqueid {env.uniqueid}"
        try:
            handler = self._router(env)
        except Exception:
            logger.exception("FastAGI router failed for %s; using the fallback", call)
            handler = self._fallback
        if handler is None:
            logger.warning("FastAGI: no handler for %s (request %s); using the fallback", call, env.request)
            handler = self._fallback
        logger.debug("FastAGI call started: %s, from %s", call, peer)
        try:
            await self._run(handler, session, call)
        finally:
            await session.close()  # also refuses commands from anything the handler left running

    @staticmethod
    async def _run(handler: Handler, session: AgiSession, call: str) -> None:
        try:
            await handler(session)
        except AgiChannelGone as exc:
            logger.info("FastAGI call ended, channel gone: %s: %s", call, exc)
        except AgiError as exc:
            logger.warning("FastAGI call failed: %s: %s: %s", call, type(exc).__name__, exc)
        except Exception:
            logger.exception("FastAGI handler crashed: %s", call)
        except asyncio.CancelledError:
            logger.warning("FastAGI call cancelled: %s", call)
            raise
        else:
            logger.debug("FastAGI call finished: %s", call)
