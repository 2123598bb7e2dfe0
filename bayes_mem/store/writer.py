"""A background writer for the decision log: the trading thread queues a row and goes on; one
daemon thread inserts the rows in batches, one transaction per batch.

:meth:`DecisionWriter.put` checks the row (:func:`bayes_mem.live.recording.check_decision`: a bad
row raises there, at the caller, naming the field) and appends it to a bounded in-memory FIFO
queue; it never waits for SQL. When the queue is full (the database is slower than the decisions
for long enough, or down) ``put`` waits up to ``put_timeout`` seconds for room, then raises
:class:`DecisionQueueFull` and counts the row in ``refused_full``: the caller knows the row was
not taken (it may retry, log it elsewhere or stop trading); nothing is dropped silently.

The writer thread takes up to ``batch_size`` rows at a time; when fewer are queued it waits up
to ``flush_interval`` seconds for more (fewer, larger transactions), unless a :meth:`flush` or
:meth:`close` is waiting. A batch the database refuses is retried row by row, each in its own
transaction, so one bad row loses only itself; a transient error (connection lost, database
locked) is first retried ``retries`` times with back-off. Every row that still fails is counted
in ``failed``, its error kept in ``last_error`` and logged (logger ``bayes_mem.store.writer``);
the next :meth:`flush` (or :meth:`close`) raises :class:`DecisionWriteError` once for them.

Durability and the crash bound: a row is durable once its batch commits (SQLite
``synchronous=FULL``; PostgreSQL's commit), so every row put before a :meth:`flush` that
returned survives a crash of the process. A crash (SIGKILL, power loss) loses exactly the rows
not yet committed: those still queued plus the batch in flight, so at most
``max_queue + batch_size`` rows, and in time the rows put during the last ``flush_interval``
plus one commit when the database keeps up. Because the queue is FIFO and batches commit in
order, the rows stored after a crash are always a prefix of the rows put (no gaps), and a batch
is stored whole or not at all (``tests/test_decision_writer.py`` SIGKILLs a writing process at
random instants and checks this).

Thread-safe: any number of producer threads may ``put``; ``flush`` waits for the rows put (by
any thread) before it was called. A writer still open when the interpreter exits normally is
closed then (its queue flushed, up to ``EXIT_FLUSH_SECONDS``; errors logged): forgetting
:meth:`close` loses nothing, a crash loses what is stated above.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bayes_mem.live.recording import DecisionRowSource, check_decision, is_row_source
from bayes_mem.live.validate import check_int, check_real
from bayes_mem.store import schema
from bayes_mem.store.store import Store

log = logging.getLogger("bayes_mem.store.writer")

_BACKOFF = (0.05, 0.25, 1.0, 2.0, 4.0)  # seconds before the transient-error retries
EXIT_FLUSH_SECONDS = 30.0
_OPEN: weakref.WeakSet[DecisionWriter] = weakref.WeakSet()  # closed at interpreter exit


@atexit.register
def _close_open_writers() -> None:
    for writer in list(_OPEN):
        try:
            writer.close(EXIT_FLUSH_SECONDS)
        except Exception:
            log.exception("decision writer: closing at interpreter exit")


class DecisionQueueFull(RuntimeError):
    """``put`` found the queue full for ``put_timeout`` seconds: the row was not taken.

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from bayes_mem.store import DecisionQueueFull, DecisionWriter, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> row = {"decided_at": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
    ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
    ...        "notional": 10_000.0, "p_win": 0.61}
    >>> # room for one row; the thread waits up to 60 s to fill a batch of 2; put never waits
    >>> writer = DecisionWriter(store, max_queue=1, batch_size=2, flush_interval=60, put_timeout=0)
    >>> writer.put(row)
    >>> try:
    ...     writer.put(row)
    ... except DecisionQueueFull:
    ...     print("refused:", writer.stats().refused_full)
    refused: 1
    >>> writer.close()  # writes the queued row
    >>> writer.stats().committed
    1
    >>> store.close()
    >>> tmp.cleanup()
    """


class DecisionWriteError(RuntimeError):
    """Rows queued earlier were refused by the database (see ``DecisionWriter.stats()``).

    Examples
    --------
    A queued object whose ``decision_row()`` (converted in the writer thread) fails is refused;
    the next flush reports it:

    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from bayes_mem.store import DecisionWriteError, DecisionWriter, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> writer = DecisionWriter(store)
    >>> writer.put(SimpleNamespace(id=7, decision_row=lambda: {"side": "up"}))
    >>> try:
    ...     writer.flush()
    ... except DecisionWriteError as exc:
    ...     print(str(exc).split(";")[0])
    1 decision row(s) not written since the last report (1 in all, 0 committed)
    >>> writer.close()
    >>> store.close()
    >>> tmp.cleanup()
    """


class DecisionWriterClosed(RuntimeError):
    """The writer is closed (or its thread died): it takes no more rows.

    Examples
    --------
    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from bayes_mem.store import DecisionWriter, DecisionWriterClosed, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> writer = DecisionWriter(store)
    >>> writer.close()
    >>> try:
    ...     writer.put(SimpleNamespace(decision_row=dict))
    ... except DecisionWriterClosed as exc:
    ...     print(exc)
    the decision writer is closed
    >>> store.close()
    >>> tmp.cleanup()
    """


@dataclass(frozen=True)
class WriterStats:
    """Counts of a :class:`DecisionWriter` (rows unless said otherwise), from its ``stats()``.

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from bayes_mem.store import DecisionWriter, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> row = {"decided_at": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
    ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
    ...        "notional": 10_000.0, "p_win": 0.61}
    >>> with DecisionWriter(store, flush_interval=0.01) as writer:
    ...     writer.put(row)
    >>> writer.stats()
    WriterStats(accepted=1, committed=1, failed=0, refused_full=0, pending=0, batches=1,
                last_error=None)
    >>> store.close()
    >>> tmp.cleanup()
    """

    accepted: int  # rows taken by put
    committed: int  # rows stored
    failed: int  # rows the database refused (or lost with a dead writer thread)
    refused_full: int  # puts that raised DecisionQueueFull (rows never taken)
    pending: int  # rows taken and not yet committed or failed: queued + in flight
    batches: int  # transactions that stored rows
    last_error: str | None


class DecisionWriter:
    """Write decision rows to ``store``'s ``decisions`` table from a background thread.

    ``max_queue`` rows at most wait in memory; ``batch_size`` rows at most per transaction;
    ``flush_interval`` seconds at most does the thread wait to fill a batch; ``put_timeout``
    seconds at most does ``put`` wait for room in a full queue (0: never wait); ``retries``
    transient-error retries per batch. Use as a context manager or call :meth:`close`.

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> from bayes_mem.store import DecisionWriter, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> row = {"decided_at": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
    ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
    ...        "notional": 10_000.0, "p_win": 0.61}
    >>> with DecisionWriter(store, flush_interval=0.01) as writer:  # closed (flushed) at the end
    ...     writer.put(row)  # returns at once; a bad row raises here
    ...     writer.put({**row, "act": False, "notional": 0.0, "p_win": 0.47})
    >>> store.decisions()[["signal", "act", "notional", "p_win"]]
      signal    act  notional  p_win
    0  mom_a   True   10000.0   0.61
    1  mom_a  False       0.0   0.47
    >>> store.close()
    >>> tmp.cleanup()
    """

    def __init__(
        self,
        store: Store,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.1,
        put_timeout: float = 1.0,
        retries: int = 3,
    ) -> None:
        self.store = store
        self.max_queue = check_int(max_queue, "max_queue", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.flush_interval = _seconds(flush_interval, "flush_interval")
        self.put_timeout = _seconds(put_timeout, "put_timeout")
        self.retries = check_int(retries, "retries", minimum=0)
        if self.retries > len(_BACKOFF):
            raise ValueError(f"retries must be <= {len(_BACKOFF)}, got {retries!r}")
        self._insert = schema.decisions.insert()
        self._queue: deque[dict[str, Any]] = deque()
        lock = threading.Lock()
        self._has_rows = threading.Condition(lock)  # the writer waits on it
        self._has_room = threading.Condition(lock)  # producers wait on it when the queue is full
        self._progress = threading.Condition(lock)  # flush waits on it
        self._accepted = self._done = self._committed = self._failed = 0
        self._refused_full = self._batches = self._unreported = 0
        self._in_flight = 0
        self._waiting_for = 0  # the writer waits until this many rows are queued (0: not waiting)
        self._flushing = 0  # flush/close calls waiting
        self._closing = False
        self._dead: BaseException | None = None
        self._last_error: str | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"bayes-mem-decision-writer-{id(self):x}", daemon=True
        )
        self._thread.start()
        _OPEN.add(self)

    # ------------------------------------------------------------------ producers
    def put(
        self, row: Mapping[str, Any] | DecisionRowSource, *, timeout: float | None = None
    ) -> None:
        """Check ``row`` and queue it for writing; never waits for the database. A bad row
        raises TypeError/ValueError here. A full queue: wait up to ``timeout`` (default
        ``put_timeout``) seconds for room, then raise :class:`DecisionQueueFull` (the row was not
        taken; counted in ``refused_full``). A closed writer raises
        :class:`DecisionWriterClosed`.

        Examples
        --------
        A bad row raises at the caller, before it is queued:

        >>> import datetime as dt, tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = Store(data_dir=tmp.name)
        >>> row = {"decided_at": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
        ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
        ...        "notional": 10_000.0, "p_win": 0.61}
        >>> with DecisionWriter(store, flush_interval=0.01) as writer:
        ...     writer.put(row)
        ...     try:
        ...         writer.put({**row, "side": "up"})
        ...     except ValueError as exc:
        ...         print(exc)
        side must be 'long' or 'short', got 'up'
        >>> writer.stats().committed
        1
        >>> store.close()
        >>> tmp.cleanup()
        """
        if is_row_source(row):
            checked = row  # converted and checked in the writer thread (see _rows)
        elif isinstance(row, Mapping):
            checked = check_decision(row)
        else:
            raise TypeError(
                f"a decision row must be a mapping or have decision_row(), got {type(row).__name__}"
            )
        with self._has_rows:
            if self._closing or self._dead is not None:
                raise self._closed_error()
            if len(self._queue) >= self.max_queue:
                wait = self.put_timeout if timeout is None else _seconds(timeout, "timeout")
                deadline = time.monotonic() + wait
                while len(self._queue) >= self.max_queue:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closing or self._dead is not None:
                        break
                    self._has_room.wait(left)
                if self._closing or self._dead is not None:
                    raise self._closed_error()
                if len(self._queue) >= self.max_queue:
                    self._refused_full += 1
                    raise DecisionQueueFull(
                        f"decision queue full ({self.max_queue} rows) for {wait} s: row not taken "
                        f"(signal {_field(checked, 'signal')!r}, key {_field(checked, 'key')!r}); "
                        f"{self._refused_full} row(s) refused so far"
                    )
            self._queue.append(checked)
            self._accepted += 1
            if self._waiting_for and len(self._queue) >= self._waiting_for:
                self._has_rows.notify()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every row put before this call is committed (or refused); raise
        :class:`DecisionWriteError` if rows were refused since the last flush that raised, and
        TimeoutError after ``timeout`` seconds (None: no limit).

        Examples
        --------
        >>> import datetime as dt, tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = Store(data_dir=tmp.name)
        >>> row = {"decided_at": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
        ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": False,
        ...        "notional": 0.0, "p_win": 0.47}
        >>> writer = DecisionWriter(store, flush_interval=60)  # would wait up to 60 s for a batch
        >>> writer.put(row)
        >>> writer.flush(timeout=10)  # written now
        >>> len(store.decisions()), writer.stats().pending
        (1, 0)
        >>> writer.close()
        >>> store.close()
        >>> tmp.cleanup()
        """
        limit = None if timeout is None else _seconds(timeout, "timeout")
        with self._progress:
            target = self._accepted
            self._flushing += 1
            if self._waiting_for:
                self._has_rows.notify()  # stop gathering a batch: write what is there
            try:
                done = self._progress.wait_for(lambda: self._done >= target, limit)
            finally:
                self._flushing -= 1
            if not done:
                raise TimeoutError(
                    f"flush: {target - self._done} decision row(s) not yet written after "
                    f"{limit} s ({self._committed} committed so far)"
                )
            self._raise_failures()

    def close(self, timeout: float | None = None) -> None:
        """Flush (as :meth:`flush`, raising the same way) and stop the thread; ``put`` raises
        afterwards. Calling it again does nothing.

        Examples
        --------
        >>> import tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = Store(data_dir=tmp.name)
        >>> writer = DecisionWriter(store)
        >>> writer.close()
        >>> writer.close()  # again: nothing to do
        >>> writer.alive
        False
        >>> store.close()
        >>> tmp.cleanup()
        """
        if self._closing and not self._thread.is_alive():
            return
        try:
            self.flush(timeout)
        finally:
            with self._has_rows:
                self._closing = True
                self._has_rows.notify_all()
                self._has_room.notify_all()
            self._thread.join(timeout)
            if not self._thread.is_alive():  # else still writing: interpreter exit flushes it
                _OPEN.discard(self)

    def __enter__(self) -> DecisionWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an exception is on its way: do not mask it with the flush's
            self.close()
        except Exception:
            log.exception("decision writer: close after an error")

    # ------------------------------------------------------------------ state
    def stats(self) -> WriterStats:
        """The writer's counts now (see :class:`WriterStats`).

        Examples
        --------
        >>> import tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = Store(data_dir=tmp.name)
        >>> with DecisionWriter(store) as writer:
        ...     print(writer.stats())
        WriterStats(accepted=0, committed=0, failed=0, refused_full=0, pending=0, batches=0,
                    last_error=None)
        >>> store.close()
        >>> tmp.cleanup()
        """
        with self._progress:
            return WriterStats(
                accepted=self._accepted, committed=self._committed, failed=self._failed,
                refused_full=self._refused_full, pending=self._accepted - self._done,
                batches=self._batches, last_error=self._last_error,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        """The writer thread runs (False once closed, or if it died: see ``last_error``).

        Examples
        --------
        >>> import tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = Store(data_dir=tmp.name)
        >>> writer = DecisionWriter(store)
        >>> before = writer.alive
        >>> writer.close()
        >>> before, writer.alive
        (True, False)
        >>> store.close()
        >>> tmp.cleanup()
        """
        return self._dead is None and self._thread.is_alive()

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"DecisionWriter({self.store!r}, committed={s.committed}, pending={s.pending}, "
            f"failed={s.failed}, refused_full={s.refused_full})"
        )

    def _closed_error(self) -> DecisionWriterClosed:
        if self._dead is not None:
            return DecisionWriterClosed(f"the decision writer thread died: {self._last_error}")
        return DecisionWriterClosed("the decision writer is closed")

    def _raise_failures(self) -> None:  # holds the lock
        if self._unreported:
            n, self._unreported = self._unreported, 0
            raise DecisionWriteError(
                f"{n} decision row(s) not written since the last report ({self._failed} in all, "
                f"{self._committed} committed); last error: {self._last_error}"
            )

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                rows, failures = _rows(batch)
                committed, refused = self._write(rows) if rows else (0, [])
                failures += refused
                with self._progress:
                    self._in_flight = 0
                    self._committed += committed
                    self._batches += committed > 0
                    if failures:
                        self._failed += len(failures)
                        self._unreported += len(failures)
                        self._last_error = failures[-1]
                    self._done += len(batch)
                    self._progress.notify_all()
        except BaseException as exc:  # a bug or an interpreter shutdown: never silent
            with self._progress:
                lost = len(self._queue) + self._in_flight
                self._queue.clear()
                self._dead = exc
                self._last_error = f"writer thread died: {type(exc).__name__}: {exc}"
                self._failed += lost
                self._unreported += lost
                self._done += lost
                self._in_flight = 0
            log.critical("decision writer thread died, %d row(s) lost", lost, exc_info=True)
            with self._progress:  # after the log: a flush that raises has it behind it
                self._progress.notify_all()
                self._has_room.notify_all()

    def _take(self) -> list[dict[str, Any]] | None:
        """The next batch (None: closed and drained): waits for a row, then up to
        ``flush_interval`` for a full batch unless a flush or close is waiting."""
        with self._has_rows:
            while not self._queue:
                if self._closing:
                    return None
                self._waiting_for = 1
                self._has_rows.wait()
            if len(self._queue) < self.batch_size and self.flush_interval > 0:
                deadline = time.monotonic() + self.flush_interval
                self._waiting_for = self.batch_size
                while len(self._queue) < self.batch_size and not self._flushing:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closing:
                        break
                    self._has_rows.wait(left)
            self._waiting_for = 0
            n = min(self.batch_size, len(self._queue))
            popleft = self._queue.popleft
            batch = [popleft() for _ in range(n)]
            self._in_flight = n
            self._has_room.notify(n)
            return batch

    def _write(self, batch: list[dict[str, Any]]) -> tuple[int, list[str]]:
        """Insert ``batch`` in one transaction. If the database refuses it (a constraint, bad
        data), insert its rows one by one so only the refused rows fail; if it stays unavailable
        through the retries, the whole batch fails. Returns the number committed and one error
        message per failed row."""
        error, transient = self._insert_retrying(batch)
        if error is None:
            return len(batch), []
        if transient or len(batch) == 1:
            refused = [(row, error) for row in batch]
        else:
            log.warning("decision writer: a batch of %d refused (%s); retrying row by row",
                        len(batch), error)  # fmt: skip
            refused = []
            for row in batch:
                e, _ = self._insert_retrying([row])
                if e is not None:
                    refused.append((row, e))
        for row, message in refused[:3]:
            log.error("decision writer: row refused (signal %r, key %r, decided_at %s): %s",
                      row["signal"], row["key"], row["decided_at"], message)  # fmt: skip
        if len(refused) > 3:
            log.error("decision writer: %d row(s) of this batch refused in all", len(refused))
        return len(batch) - len(refused), [message for _, message in refused]

    def _insert_retrying(self, rows: list[dict[str, Any]]) -> tuple[str | None, bool]:
        """``(None, False)`` when committed, else the error and whether it looked transient (a
        lost connection, a locked or full database: retried ``retries`` times first)."""
        message = ""
        for attempt in range(self.retries + 1):
            try:
                with self.store.transaction() as conn:
                    conn.execute(self._insert, rows)
                return None, False
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:  # maybe transient
                message = _message(exc)
                if attempt < self.retries:
                    log.warning("decision writer: %s; retrying in %s s", message, _BACKOFF[attempt])
                    time.sleep(_BACKOFF[attempt])
            except sa.exc.SQLAlchemyError as exc:  # refused: integrity, data, programming errors
                return _message(exc), False
        return message, True


def _field(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def _rows(batch: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The batch as checked rows: objects queued with ``decision_row()`` (the engine's own
    decisions, trusted at the caller so that ``put`` stays a few hundred nanoseconds) are
    converted and checked here, in the writer thread; one that fails is a refused row."""
    rows, failures = [], []
    for item in batch:
        if isinstance(item, dict):
            rows.append(item)
            continue
        try:
            rows.append(check_decision(item.decision_row()))
        except Exception as exc:
            message = f"decision {_field(item, 'id')!r} could not be converted: {exc}"
            log.error("decision writer: %s", message)
            failures.append(message)
    return rows, failures


def _message(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__}: {orig if orig is not None else exc}"[:2000]


def _seconds(value: object, what: str) -> float:
    out = check_real(value, what)
    if out < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {value!r}")
    return out
