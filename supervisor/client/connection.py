"""One asyncio client of the daemon's protocol: calls, fire-and-forget sends, streams.

Used by the console and by the workflow runner (the blocking `protocol.Client` serves the
CLI and the hook). One `Connection` is one socket carrying many requests at once: replies
are matched to requests by id, and event frames go to the callback of the request that
opened the stream. Closing a connection is how the console stops streaming an agent: the
daemon then forgets that stream and that viewer's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.protocol import (
    ERR_BAD_REQUEST,
    ERR_INTERNAL,
    ERR_NO_DAEMON,
    MAX_FRAME,
    ProtocolError,
    encode,
)

EventCallback = Callable[[dict[str, Any]], None]


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._next = 0
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, EventCallback] = {}
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done when the daemon closed the connection (or `close` was called)."""
        self.on_error: Callable[[str], None] | None = None
        """Gets the message of an error reply to a `send` (nobody awaits those)."""
        self._lost: ProtocolError | None = None
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, path: Path) -> Connection:
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_FRAME * 16)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ProtocolError(
                ERR_NO_DAEMON, f"no daemon is running at {path} (start one with `staff up`)"
            ) from exc
        return cls(reader, writer)

    def _send(self, cmd: str, fields: dict[str, Any]) -> int:
        if self._lost is not None:
            raise self._lost
        if self.writer.is_closing():
            raise ProtocolError(ERR_NO_DAEMON, "the connection to the daemon is closed")
        frame = encode(
            {"id": self._next + 1, "cmd": cmd, **{k: v for k, v in fields.items() if v is not None}}
        )
        if len(frame) > MAX_FRAME:  # the daemon would drop the connection: say why instead
            raise ProtocolError(ERR_BAD_REQUEST, too_large(len(frame)))
        self._next += 1
        self.writer.write(frame)
        return self._next

    def _expect(self, rid: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        return fut

    async def call(self, cmd: str, on_event: EventCallback | None = None, **fields: Any) -> Any:
        """Send a request and return its result (raising ProtocolError on an error reply);
        event frames before the reply (``wait`` with ``progress``) go to `on_event`."""
        rid = self._send(cmd, fields)
        fut = self._expect(rid)
        if on_event is not None:
            self._streams[rid] = on_event
        try:
            try:
                await self.writer.drain()
            except ConnectionError as exc:
                raise ProtocolError(ERR_NO_DAEMON, f"lost the daemon: {exc}") from exc
            return await fut
        finally:
            self._replies.pop(rid, None)
            self._streams.pop(rid, None)

    def send(self, cmd: str, **fields: Any) -> None:
        """Fire and forget: an error reply goes to `on_error`; a closed connection is ignored."""
        with contextlib.suppress(ProtocolError):
            self._send(cmd, fields)

    def stream(self, cmd: str, on_event: EventCallback, **fields: Any) -> asyncio.Future[Any]:
        """Open a streaming request: events go to `on_event`; the future gets the final reply."""
        rid = self._send(cmd, fields)
        self._streams[rid] = on_event
        return self._expect(rid)

    async def _read(self) -> None:
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                frame = json.loads(line)
                rid = frame.get("id")
                event = frame.get("event")
                if event is not None:
                    cb = self._streams.get(rid)
                    if cb is not None:
                        cb(event)
                    continue
                self._streams.pop(rid, None)
                fut = self._replies.pop(rid, None)
                if frame.get("ok"):
                    if fut is not None and not fut.done():
                        fut.set_result(frame.get("result"))
                    continue
                err = frame.get("error") or {}
                exc = ProtocolError(err.get("code", ERR_INTERNAL), err.get("message", "error"))
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
                elif self.on_error is not None:
                    self.on_error(exc.message)
        except (ConnectionError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._lost = ProtocolError(ERR_NO_DAEMON, "lost the daemon (it stopped or was killed)")
            for fut in self._replies.values():
                if not fut.done():
                    fut.set_exception(self._lost)
                    fut.exception()  # retrieved: nobody may be waiting on a stream's end
            self._replies.clear()
            if not self.closed.done():
                self.closed.set_result(None)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


def too_large(size: int) -> str:
    """The one-line error for a request over the daemon's frame limit."""
    return (
        f"the request is {size / (1 << 20):.1f} MiB; the daemon takes at most "
        f"{MAX_FRAME >> 20} MiB per request (put the text in a file and name the file in the task)"
    )
