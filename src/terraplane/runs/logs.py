"""A run's log, persisted in chunks as it arrives so that it can be tailed while it runs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from terraplane.store.database import Database
from terraplane.store.tables import run_log_chunks
from terraplane.store.types import utcnow

FLUSH_BYTES = 32 * 1024
FLUSH_SECONDS = 0.25


class RunLogWriter:
    """Buffers output and writes a chunk every FLUSH_SECONDS or FLUSH_BYTES, whichever first."""

    def __init__(self, db: Database, run_id: int) -> None:
        self.db = db
        self.run_id = run_id
        self._buffer: list[str] = []
        self._buffered = 0
        self._seq = 0
        self._offset = 0
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def open(self, conn: AsyncConnection, *, resumed: bool = True) -> None:
        """Start writing; a resumed run (another worker's later attempt) continues after what
        is already stored, a first attempt starts at the beginning."""
        if resumed:
            await self._continue(conn)
        self._ticker = asyncio.create_task(self._tick())

    async def _continue(self, conn: AsyncConnection) -> None:
        row = (
            await conn.execute(
                select(
                    func.max(run_log_chunks.c.seq),
                    func.max(run_log_chunks.c.offset + func.length(run_log_chunks.c.data)),
                ).where(run_log_chunks.c.run_id == self.run_id)
            )
        ).one()
        self._seq = row[0] or 0
        self._offset = int(row[1] or 0)

    async def write(self, text: str) -> None:
        if not text:
            return
        self._buffer.append(text)
        self._buffered += len(text)
        if self._buffered >= FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer:
                return
            async with self.db.write() as conn:
                await self._write_chunk(conn)

    async def _write_chunk(self, conn: AsyncConnection) -> None:
        data, self._buffer, self._buffered = "".join(self._buffer), [], 0
        self._seq += 1
        await conn.execute(
            run_log_chunks.insert().values(
                run_id=self.run_id,
                seq=self._seq,
                offset=self._offset,
                data=data,
                created_at=utcnow(),
            )
        )
        self._offset += len(data)

    async def stop(self) -> None:
        """Stop the periodic flush, letting one in progress finish (cancelling it could lose
        the chunk it holds). Call it before opening the transaction handed to `close`: a flush
        waiting for SQLite's write lock inside that transaction would deadlock it."""
        if self._ticker is not None:
            self._stopping.set()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None

    async def close(self, conn: AsyncConnection | None = None) -> None:
        """Write what is left: in `conn`'s transaction when given (a run records its last
        output with its result; `stop` first), else in its own."""
        if conn is None:
            await self.stop()
            await self.flush()
            return
        assert self._ticker is None, "stop() the writer before closing it in a transaction"
        async with self._lock:
            if self._buffer:
                await self._write_chunk(conn)

    async def _tick(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), FLUSH_SECONDS)
            if self._stopping.is_set():
                return
            await self.flush()


@dataclass(frozen=True)
class LogSlice:
    text: str
    next_offset: int


async def read_log(conn: AsyncConnection, run_id: int, offset: int = 0) -> LogSlice:
    """The log from character `offset` on (offsets count characters of the whole log)."""
    rows = (
        await conn.execute(
            select(run_log_chunks.c.offset, run_log_chunks.c.data)
            .where(
                run_log_chunks.c.run_id == run_id,
                run_log_chunks.c.offset + func.length(run_log_chunks.c.data) > offset,
            )
            .order_by(run_log_chunks.c.seq)
        )
    ).all()
    parts = []
    end = offset
    for start, data in rows:
        parts.append(data[max(0, offset - start) :])
        end = start + len(data)
    return LogSlice(text="".join(parts), next_offset=max(end, offset))


async def read_log_tail(conn: AsyncConnection, run_id: int, chars: int) -> str:
    """The last `chars` characters of the log."""
    total = (
        await conn.execute(
            select(func.max(run_log_chunks.c.offset + func.length(run_log_chunks.c.data))).where(
                run_log_chunks.c.run_id == run_id
            )
        )
    ).scalar()
    return (await read_log(conn, run_id, max(0, int(total or 0) - chars))).text
