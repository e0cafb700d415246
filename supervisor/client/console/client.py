"""An asyncio client of the daemon for the console: calls, fire-and-forget sends, streams.

One `Connection` is one socket. Replies are matched to requests by id; event frames go to
the callback of the request that opened the stream. The console uses one connection for
events, one for commands and keys, and one per agent it shows (closing that connection is
how it stops streaming an agent: the daemon then forgets the stream and that viewer's size).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.protocol import ERR_INTERNAL, ERR_NO_DAEMON, ProtocolError, encode

EventCallback = Callable[[dict[str, Any]], None]


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._next = 0
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, EventCallback] = {}
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_error: Callable[[str], None] | None = None
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, path: Path) -> Connection:
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 24)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ProtocolError(ERR_NO_DAEMON, f"no daemon is running at {path} (`staff up`)") from exc
        return cls(reader, writer)

    def _send(self, cmd: str, fields: dict[str, Any]) -> int:
        if self.writer.is_closing():
            raise ProtocolError(ERR_NO_DAEMON, "the connection to the daemon is closed")
        self._next += 1
        req = {"id": self._next, "cmd": cmd, **{k: v for k, v in fields.items() if v is not None}}
        self.writer.write(encode(req))
        return self._next

    async def call(self, cmd: str, **fields: Any) -> Any:
        rid = self._send(cmd, fields)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        return await fut

    def send(self, cmd: str, **fields: Any) -> None:
        """Fire and forget: an error reply goes to `on_error`."""
        with contextlib.suppress(ProtocolError):
            self._send(cmd, fields)

    def stream(self, cmd: str, on_event: EventCallback, **fields: Any) -> asyncio.Future[Any]:
        """Open a streaming request: events go to `on_event`; the future gets the final reply."""
        rid = self._send(cmd, fields)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        self._streams[rid] = on_event
        return fut

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
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            lost = ProtocolError(ERR_NO_DAEMON, "the daemon closed the connection")
            for fut in self._replies.values():
                if not fut.done():
                    fut.set_exception(lost)
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
