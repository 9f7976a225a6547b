"""The line framing that Asterisk's two text protocols share: FastAGI and AMI."""

from __future__ import annotations

from typing import Generic, NoReturn, TypeVar

Item = TypeVar("Item")


class LineReader(Generic[Item]):
    """Bytes in, items out. Each complete line goes to `_line`, which says what it adds up to.

    A line ends with LF; a CR before it is dropped. Bytes that are not UTF-8 are replaced, not
    fatal. A line longer than `max_line_bytes` (even unfinished) is a protocol error. After an
    error the reader stays failed, because the stream has lost its framing. Subclasses raise only
    `error` (through `_fail`).
    """

    error: type[Exception]

    def __init__(self, *, max_line_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_line_bytes = max_line_bytes
        self._failure: str | None = None

    def feed(self, data: bytes) -> list[Item]:
        if self._failure is not None:
            raise self.error(f"reader already failed: {self._failure}")
        self._buffer += data
        items: list[Item] = []
        start = 0
        try:
            while (end := self._buffer.find(b"\n", start)) >= 0:
                self._check_length(end - start)
                line = self._buffer[start:end].decode("utf-8", errors="replace").removesuffix("\r")
                start = end + 1
                item = self._line(line)
                if item is not None:
                    items.append(item)
            del self._buffer[:start]
            self._check_length(len(self._buffer))
        except self.error as exc:
            self._failure = str(exc)
            raise
        return items

    def _line(self, line: str) -> Item | None:
        raise NotImplementedError

    def _check_length(self, length: int) -> None:
        if length > self._max_line_bytes:
            self._fail(f"line longer than {self._max_line_bytes} bytes")

    def _fail(self, message: str) -> NoReturn:
        self._failure = message
        raise self.error(message)
