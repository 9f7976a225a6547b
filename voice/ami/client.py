"""The AMI client: one TCP connection to Asterisk (port 5038), actions matched to their answers by
ActionID, events to subscribers, a Ping keep-alive, and reconnection with back-off.

    ami = AmiClient("127.0.0.1", username="centralita", secret="secret", on_connect=resync)
    ami.subscribe(on_hangup, events=["Hangup"])
    task = asyncio.create_task(ami.run())         # or: await ami.connect() for a single connection
    result = await ami.originate("PJSIP/100", context="ivr", exten="s", priority=1, timeout=30)
    ...
    await ami.logoff()

- Every action gets an ActionID unique for the client's life ("<prefix>-<n>"); several can be in flight
  at once, as in the recording (Login, Ping and Originate sent before any answer came back).
- `Response: Error` raises `AmiActionError` with Asterisk's `Message:`; a refused Login raises
  `AmiLoginFailed` and the client closes the socket at once (Asterisk answers only after ~1 s, then
  closes it itself). `run()` does not retry a refused login: it raises.
- Event lists (CoreShowChannels, ...): `send_action_list` returns the items up to the `...Complete` event.
- Events are delivered in their own task, in order; handlers may send actions.
- When the connection drops, actions waiting for an answer raise `AmiConnectionLost` (they may or may not
  have been carried out); `run()` reconnects with back-off and calls `on_connect` after each login, so
  the application can re-read the state it missed (CoreShowChannels).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from voice.ami.dispatch import AmiSubscribers, Handler
from voice.ami.errors import (
    AmiActionError,
    AmiConnectionLost,
    AmiError,
    AmiLoginFailed,
    AmiProtocolError,
    AmiTimeout,
)
from voice.ami.events import CoreShowChannel, OriginateResponse, parse_event
from voice.ami.protocol import (
    DEFAULT_PORT,
    AmiBanner,
    AmiItem,
    AmiMessage,
    AmiReader,
    Fields,
    FieldValue,
    format_action,
)
from voice.ami.protocol import variables as variable_lines
from voice.backoff import Backoff, pause
from voice.subscription import Subscription

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(eq=False)
class _List:
    response: asyncio.Future[AmiMessage]
    done: asyncio.Future[None]
    items: list[AmiMessage] = field(default_factory=list)


class _Connection:
    """One socket: the reader task, and what waits for answers on it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parser: AmiReader,
        events: asyncio.Queue[AmiMessage],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = parser
        self._events = events
        self._responses: dict[str, asyncio.Future[AmiMessage]] = {}
        self._lists: dict[str, _List] = {}
        self._event_waiters: dict[tuple[str, str], asyncio.Future[AmiMessage]] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._task: asyncio.Task[None] | None = None

    def start(self, pending: Iterable[AmiItem]) -> None:
        for item in pending:
            self._handle(item)
        self._task = asyncio.create_task(self._read_loop(), name="ami-reader")

    # --- waiting for answers ----------------------------------------------------------------------

    def expect_response(self, action_id: str) -> asyncio.Future[AmiMessage]:
        self._check_free(action_id)
        future: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._responses[action_id] = future
        return future

    def expect_list(self, action_id: str) -> _List:
        self._check_free(action_id)
        loop = asyncio.get_running_loop()
        collected = _List(loop.create_future(), loop.create_future())
        self._lists[action_id] = collected
        return collected

    def expect_event(self, action_id: str, event: str) -> asyncio.Future[AmiMessage]:
        future: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._event_waiters[(action_id, event.lower())] = future
        return future

    def forget(self, action_id: str) -> None:
        self._responses.pop(action_id, None)
        self._lists.pop(action_id, None)

    def forget_event(self, action_id: str, event: str) -> None:
        self._event_waiters.pop((action_id, event.lower()), None)

    def _check_free(self, action_id: str) -> None:
        if action_id in self._responses or action_id in self._lists:
            raise ValueError(f"ActionID {action_id!r} is already waiting for an answer")

    # --- the socket -------------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        if self.closed.is_set():
            raise AmiConnectionLost(f"not connected: {self.close_reason}")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise AmiConnectionLost(f"cannot write to Asterisk: {exc}") from exc

    async def close(self, reason: str = "closed by us") -> None:
        self._lost(reason)
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), timeout=2.0)

    async def _read_loop(self) -> None:
        reason = "Asterisk closed the connection"
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    self._parser.feed_eof()
                    break
                for item in self._parser.feed(data):
                    self._handle(item)
        except AmiProtocolError as exc:
            reason = f"protocol error: {exc}"
            logger.warning("AMI connection dropped: %s", reason)
        except OSError as exc:
            reason = f"connection broken: {exc}"
        finally:
            self._lost(reason)

    def _lost(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        self._writer.close()
        error = AmiConnectionLost(reason)
        futures: list[asyncio.Future[AmiMessage] | asyncio.Future[None]] = [
            *self._responses.values(),
            *self._event_waiters.values(),
        ]
        for collected in self._lists.values():
            futures += [collected.response, collected.done]
        for future in futures:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: nobody may be waiting any more
        self._responses.clear()
        self._lists.clear()
        self._event_waiters.clear()

    def _handle(self, item: AmiItem) -> None:
        if isinstance(item, AmiBanner):
            logger.warning("AMI: a second banner in the stream, ignored: %s", item.text)
            return
        action_id = item.action_id
        if item.event is None:
            self._on_response(item, action_id)
            return
        if action_id is not None:
            collected = self._lists.get(action_id)
            if collected is not None:
                if item.is_list_end:
                    _resolve(collected.done, None)
                else:
                    collected.items.append(item)
                return  # list items answer an action: they are not broadcast
            waiter = self._event_waiters.pop((action_id, item.event.lower()), None)
            if waiter is not None:
                _resolve(waiter, item)
        self._events.put_nowait(item)

    def _on_response(self, item: AmiMessage, action_id: str | None) -> None:
        if action_id is None:
            logger.warning("AMI: a response without ActionID, ignored: %r", item.fields[:4])
            return
        future = self._responses.pop(action_id, None)
        if future is not None:
            _resolve(future, item)
            return
        collected = self._lists.get(action_id)
        if collected is not None:
            _resolve(collected.response, item)
            if (item.response or "").lower() == "error" or not item.is_list_start:
                _resolve(collected.done, None)
            return
        logger.debug("AMI: a response to no waiting action (%s), ignored", action_id)


def _resolve(future: asyncio.Future[AmiMessage] | asyncio.Future[None], value: object) -> None:
    if not future.done():
        future.set_result(value)  # type: ignore[arg-type]


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        username: str,
        secret: str,
        events: str | None = "on",
        action_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        backoff: Backoff = Backoff(),
        random_source: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
        action_id_prefix: str | None = None,
    ) -> None:
        """`events`: the Login's `Events:` ("on", "off", or a class list "call,agent"); None leaves the
        field out (Asterisk then uses the user's setting in manager.conf)."""
        self.host = host
        self.port = port
        self._username = username
        self._secret = secret
        self._events_mask = events
        self.action_timeout = action_timeout
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._on_connect = on_connect
        self._backoff = backoff
        self._random = random_source
        self._sleep = sleep
        self._prefix = action_id_prefix or f"centralita-{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count(1)
        self.subscribers = AmiSubscribers()
        self.banner: AmiBanner | None = None
        self.connections = 0  # successful logins so far
        self._connection: _Connection | None = None
        self._queue: asyncio.Queue[AmiMessage] = asyncio.Queue()
        self._dispatcher: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    # --- subscribers ------------------------------------------------------------------------------

    def subscribe(self, handler: Handler, *, events: Iterable[str] | None = None) -> Subscription:
        return self.subscribers.subscribe(handler, events=events)

    async def flush_events(self) -> None:
        """Wait until every event received so far has been delivered to the subscribers."""
        await self._queue.join()

    # --- the connection ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.closed.is_set()

    def new_action_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    async def connect(self) -> None:
        """Open one connection and log in. Raises `AmiLoginFailed`, `AmiConnectionLost`, `AmiTimeout`."""
        if self._closing.is_set():
            raise AmiConnectionLost("the client was closed")
        if self.connected:
            raise RuntimeError("the AMI client is already connected")
        parser = AmiReader()
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise AmiTimeout(
                f"no connection to {self.host}:{self.port} within {self._connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise AmiConnectionLost(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        connection = _Connection(reader, writer, parser, self._queue)
        try:
            pending = await self._read_banner(reader, parser)
        except BaseException:
            await connection.close("no banner")
            raise
        self._connection = connection
        connection.start(pending)
        self._ensure_dispatcher()
        fields = {"Username": self._username, "Secret": self._secret, "Events": self._events_mask}
        try:
            await self.send_action("Login", fields)
        except AmiActionError as exc:
            await connection.close("login refused")
            raise AmiLoginFailed("Login", exc.message, exc.response) from None
        except BaseException:
            await connection.close("login did not complete")
            raise
        self.connections += 1
        logger.info("AMI logged in to %s:%d as %s", self.host, self.port, self._username)
        if self._ping_interval is not None:
            self._pinger = asyncio.create_task(
                self._keep_alive(connection, self._ping_interval), name="ami-ping"
            )
        if self._on_connect is not None:
            try:
                await self._on_connect()
            except Exception:
                logger.exception("AMI on_connect failed; the connection stays up")

    async def _read_banner(self, reader: asyncio.StreamReader, parser: AmiReader) -> list[AmiItem]:
        try:
            async with asyncio.timeout(self._connect_timeout):
                while True:
                    data = await reader.read(65536)
                    if not data:
                        raise AmiConnectionLost("Asterisk closed the connection before the banner")
                    items = parser.feed(data)
                    if items:
                        break
        except TimeoutError:
            raise AmiTimeout(f"no AMI banner within {self._connect_timeout:g} s") from None
        except OSError as exc:
            raise AmiConnectionLost(f"connection broken before the banner: {exc}") from exc
        banner, *rest = items
        assert isinstance(banner, AmiBanner)  # the reader's first item always is
        self.banner = banner
        return rest

    async def run(self) -> None:
        """Stay connected until `close()` / `logoff()`: reconnect with back-off after every loss.
        Raises `AmiLoginFailed` (configuration: retrying would only fill Asterisk's security log)."""
        delays = None
        while not self._closing.is_set():
            try:
                await self.connect()
            except AmiLoginFailed:
                raise
            except (AmiError, OSError) as exc:
                logger.warning("AMI connection to %s:%d failed: %s", self.host, self.port, exc)
            else:
                delays = None
                connection = self._connection
                if connection is not None:
                    await connection.closed.wait()
                    if not self._closing.is_set():
                        logger.warning("AMI connection lost: %s", connection.close_reason)
            if self._closing.is_set():
                break
            if delays is None:
                delays = self._backoff.delays(self._random)
            delay = next(delays)
            logger.info("AMI: reconnecting to %s:%d in %.2f s", self.host, self.port, delay)
            await pause(self._sleep, delay, self._closing)

    async def logoff(self) -> None:
        """Say goodbye (`Response: Goodbye`), then close. Ends `run()`."""
        self._closing.set()
        try:
            if self.connected:
                await self.send_action("Logoff")
        except (AmiConnectionLost, AmiTimeout, AmiActionError) as exc:
            logger.info("AMI logoff: %s", exc)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection, deliver the events already received, stop. Ends `run()`."""
        self._closing.set()
        pinger, self._pinger = self._pinger, None
        if pinger is not None and pinger is not asyncio.current_task():
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
        connection = self._connection
        if connection is not None:
            await connection.close()
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None and dispatcher is not asyncio.current_task():  # not from a handler
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=2.0)
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.logoff()

    # --- actions ----------------------------------------------------------------------------------

    def _live(self) -> _Connection:
        connection = self._connection
        if connection is None or connection.closed.is_set():
            reason = connection.close_reason if connection is not None else "never connected"
            raise AmiConnectionLost(f"not connected to AMI: {reason}")
        return connection

    async def send_action(
        self, action: str, fields: Fields = (), *, action_id: str | None = None, timeout: float | None = None
    ) -> AmiMessage:
        """Send one action and return its `Response:` message (Success, Goodbye, ...).
        Raises `AmiActionError` for `Response: Error`, `AmiTimeout`, `AmiConnectionLost`."""
        action_id = action_id or self.new_action_id()
        data = format_action(action, action_id, fields)  # refuses bad fields before anything is sent
        connection = self._live()
        future = connection.expect_response(action_id)
        limit = self.action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                await connection.write(data)
                response = await future
        except TimeoutError:
            raise AmiTimeout(f"{action} ({action_id}): no answer within {limit:g} s") from None
        finally:
            connection.forget(action_id)
        _raise_for_error(action, response)
        return response

    async def send_action_list(
        self, action: str, fields: Fields = (), *, action_id: str | None = None, timeout: float | None = None
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        """An action answered by an event list: its response and the item events (without the final
        `...Complete` event)."""
        action_id = action_id or self.new_action_id()
        data = format_action(action, action_id, fields)
        connection = self._live()
        collected = connection.expect_list(action_id)
        limit = self.action_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                await connection.write(data)
                response = await collected.response
                await collected.done
        except TimeoutError:
            raise AmiTimeout(f"{action} ({action_id}): list not complete within {limit:g} s") from None
        finally:
            connection.forget(action_id)
        _raise_for_error(action, response)
        return response, list(collected.items)

    async def ping(self, *, timeout: float | None = None) -> AmiMessage:
        """`Ping: Pong` and Asterisk's `Timestamp:`."""
        return await self.send_action("Ping", timeout=timeout)

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | None = None,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        timeout: float | None = 30.0,
        variables: Mapping[str, str] | None = None,
        account: str | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        action_id: str | None = None,
        response_timeout: float | None = None,
    ) -> OriginateResponse:
        """Originate with `Async: true` and wait for its OriginateResponse (by ActionID).

        `timeout` is the ring time in seconds. Returns the OriginateResponse whether the call was
        answered or not (`success`, `reason`: 4 answered, 3 no answer, 5 busy, 0 failed ...); raises
        `AmiActionError` only if Asterisk refuses the action itself."""
        fields: list[tuple[str, FieldValue | None]] = [
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", priority),
            ("Application", application),
            ("Data", data),
            ("CallerID", caller_id),
            ("Timeout", None if timeout is None else round(timeout * 1000)),
            ("Account", account),
            ("ChannelId", channel_id),
            ("OtherChannelId", other_channel_id),
            ("Async", True),
            ("Variable", variable_lines(variables or {})),
        ]
        action_id = action_id or self.new_action_id()
        connection = self._live()
        outcome = connection.expect_event(action_id, "OriginateResponse")
        limit = response_timeout if response_timeout is not None else (timeout or 30.0) + self.action_timeout
        try:
            await self.send_action("Originate", fields, action_id=action_id)
            async with asyncio.timeout(limit):
                message = await outcome
        except TimeoutError:
            raise AmiTimeout(f"Originate ({action_id}): no OriginateResponse within {limit:g} s") from None
        finally:
            connection.forget_event(action_id, "OriginateResponse")
        event = parse_event(message)
        assert isinstance(event, OriginateResponse)
        return event

    async def hangup(self, channel: str, cause: int | None = None) -> None:
        """Hang up a channel by name (or a /regex/). Raises `AmiActionError` ("No such channel")."""
        await self.send_action("Hangup", {"Channel": channel, "Cause": cause})

    async def get_var(self, variable: str, channel: str | None = None) -> str | None:
        """A channel (or global) variable; None when it is not set."""
        response = await self.send_action("Getvar", {"Channel": channel, "Variable": variable})
        value = response.get("Value")
        return value or None

    async def set_var(self, variable: str, value: str, channel: str | None = None) -> None:
        await self.send_action("Setvar", {"Channel": channel, "Variable": variable, "Value": value})

    async def command(self, command: str, *, timeout: float | None = None) -> str:
        """A CLI command; its output (the `Output:` lines) as text."""
        response = await self.send_action("Command", {"Command": command}, timeout=timeout)
        return response.output

    async def core_show_channels(self, *, timeout: float | None = None) -> list[CoreShowChannel]:
        _, items = await self.send_action_list("CoreShowChannels", timeout=timeout)
        channels = [parse_event(item) for item in items]
        return [item for item in channels if isinstance(item, CoreShowChannel)]

    # --- background tasks -------------------------------------------------------------------------

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch_events(), name="ami-events")

    async def _dispatch_events(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                event = parse_event(message)
            except AmiProtocolError as exc:
                logger.warning("AMI: an event we cannot read, skipped: %s", exc)
            else:
                await self.subscribers.dispatch(event)
            finally:
                self._queue.task_done()

    async def _keep_alive(self, connection: _Connection, interval: float) -> None:
        """Ping every `interval` s; a Ping without answer means a dead link: drop it (run() reconnects)."""
        while not connection.closed.is_set():
            await asyncio.sleep(interval)
            try:
                await self.ping(timeout=min(interval, self.action_timeout))
            except AmiTimeout:
                logger.warning("AMI: no answer to Ping; dropping the connection")
                await connection.close("no answer to Ping")
                return
            except AmiError:
                return


def _raise_for_error(action: str, response: AmiMessage) -> None:
    if (response.response or "").lower() == "error":
        raise AmiActionError(action, response.message, response)
