"""Live workflow events: transitions as they are committed, with no loss or repeat across reconnects.

The transition trigger sends a NOTIFY (payload: `<transition id>:<customer tag>`, the tag a keyed digest of
the customer's id that only roles holding the key can compute: see `customer_tag`) that wakes the
subscriber; the rows themselves are read from `workflow_transitions`. Identity values are handed out at insert time,
not at commit, so "everything after the last id" could skip a row whose transaction committed late.
Instead the subscriber keeps a transaction horizon: every row written by a transaction at or above
it is read again on each poll (minus those already delivered), and the horizon only moves up to the
snapshot's xmin, below which no transaction is still running. After a dropped connection, a
server shutting down or a failover it reconnects (through the same DSN: a multi-host one with
target_session_attrs=read-write finds the new primary), backing off, and reads again from that state.

Nothing a failover can take back is handed out: PostgreSQL shows a commit on the primary before its
synchronous standby has confirmed it when the wait is cut short (a terminated backend, a primary
going down). Each read notes the primary's WAL position; rows are handed out once that position is
durable (0023's `optiinfra_durable_lsn()`: flushed by every synchronous standby, or at once when no
synchronous standby is configured, where a local commit is all there is). A read whose connection
is lost before then hands out nothing, and the next one, on the new primary, reads again.

A server process with many subscribers (the HTTP service's event streams) shares one listening
connection among them: an `EventsHub`. A wake-up fans out to every subscriber, and each reads its
new transitions through its own store (so a confined store's subscriber sees only its customer's,
as the database decides), holding a pooled connection only while it reads.

On a Citus cluster (a schema distributed by customer, `store.by_customer`) the transition trigger
runs on the worker holding the changed row: the row is written, and its NOTIFY sent, there. Each
node counts its own transaction ids, so a horizon means something only on its node, and transition
ids come from a range of each node's (Citus gives node group g the ids from g * 2^48 on): unique,
not ordered across nodes. So a subscription there
- learns from the coordinator the nodes holding shards of the trail (`event_nodes`: pg_dist_node,
  as the coordinator reaches them) and opens a connection of its own to each, with the store's
  credentials and settings (confined as its store is), where it LISTENs;
- keeps everything above per node (its group id): a horizon, the ids delivered above it, and its
  position; each node's new rows are read on that node (0027's `optiinfra_node_transitions()`: its
  local shards, the rows written there) with that node's snapshot xmin and WAL position, and
  handed out once durable there;
- hands out a position holding each node's: `<group>.<horizon>:<ids>` joined by `;`, so a resume
  continues on every node exactly where it stopped. A node the position does not name (added
  since) is read from its start, one it names that no longer holds shards is dropped;
- refreshes the list of nodes every NODES_CHECK seconds. A node that cannot be read is retried
  (backing off) while the others' transitions are handed out, up to GIVE_UP_AFTER seconds.
`after=` (a transition id) cannot say where to start on the other nodes: refused there. A hub's
subscriptions on a cluster listen and read on connections of their own like the others (the hub
does not share them yet). A shard moved to another node keeps its rows' ids, so they are not read
again there; not covered: a row written on the old node and moved before a subscription read it
there is not handed out to that subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString, Protocol
from uuid import UUID

import asyncpg

from optiinfra_store.errors import (
    InvalidArgument,
    NotFound,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    raise_translated,
)
from optiinfra_store.queries import load
from optiinfra_store.records import WorkflowTransition

CHANNEL = "optiinfra_workflow_transitions"
_log = logging.getLogger(__name__)
_RECONNECT_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
GIVE_UP_AFTER = 60.0
"""Seconds a subscriber keeps trying to read again (reconnecting, backing off) before it raises
StoreUnavailable: longer than a failover of pg_auto_failover takes (README)."""
_DURABLE_WAIT_WARNING = 10.0  # seconds waiting for the synchronous standby before it is logged


class _Reader(Protocol):
    """What a subscription reads through: a connection of its own, or a store's executor."""

    async def fetch(self, sql: LiteralString, *args: Any) -> list[asyncpg.Record]: ...

    async def fetchval(self, sql: LiteralString, *args: Any) -> Any: ...


_RETRIED = (StoreUnavailable, StoreTimeout)  # the server went away, is shutting down, or no primary yet


async def _listening(
    connect: Callable[[], Awaitable[asyncpg.Connection]], on_notify: Callable[..., None]
) -> asyncpg.Connection:
    """A new connection listening on CHANNEL; closed again if LISTEN fails. Raises StoreError."""
    conn = None
    try:
        conn = await connect()
        await conn.add_listener(CHANNEL, on_notify)
    except Exception as exc:
        if conn is not None:
            conn.terminate()
        raise_translated(exc)
    return conn


class _Horizon:
    """What a subscription has read and handed out of one node's transitions (on one server, of
    the server's): rows of transactions at or above `horizon` are read again on each poll."""

    __slots__ = ("horizon", "position_horizon", "position_ids", "seen")

    def __init__(self, horizon: int = 0, ids: set[int] | None = None) -> None:
        self.horizon = horizon  # txid: rows from transactions at or above it are read again
        # id -> txid (None: not read yet) of rows at or above it, delivered
        self.seen: dict[int, int | None] = dict.fromkeys(ids or ())
        # the position after the last transition handed out: every row of a transaction below
        # `position_horizon` has been, and of the others those in `position_ids`
        self.position_horizon = horizon
        self.position_ids: set[int] = set(self.seen)

    def mark(self) -> None:
        """Everything read so far has been handed out."""
        self.position_horizon = self.horizon
        self.position_ids = set(self.seen)

    def advance(
        self,
        rows: list[asyncpg.Record],
        buffer: deque[tuple[_Horizon, WorkflowTransition]],
        *,
        deliver: bool,
        seen_up_to: int = 0,
    ) -> None:
        """Note the rows read (those not seen yet into `buffer` if `deliver`), and move the horizon
        up to the snapshot's xmin."""
        xmin = rows[0]["xmin"] if rows else self.horizon
        unread = [i for i, txid in self.seen.items() if txid is None]  # ids a resumed position named
        for row in rows:
            if row["id"] is None:
                continue
            if row["id"] in self.seen:
                self.seen[row["id"]] = row["txid"]
                continue
            self.seen[row["id"]] = row["txid"]
            if deliver and row["id"] > seen_up_to:
                values = dict(row)
                del values["xmin"], values["txid"], values["lsn"], values["durable"]
                buffer.append((self, WorkflowTransition.model_construct(**values)))
        for i in unread:  # named but not read: gone since (purged), or not this subscriber's
            if self.seen.get(i, 0) is None:
                del self.seen[i]
        # rows of transactions below xmin are final: stop re-reading them
        if xmin > self.horizon:
            self.horizon = xmin
            self.seen = {i: t for i, t in self.seen.items() if t is not None and t >= xmin}


NodeConnect = Callable[[str, int], Awaitable[asyncpg.Connection]]
"""Opens a connection of the store's own to a node of a cluster (host, port), as `connect` does to
the server."""

NODES_CHECK = 30.0
"""Seconds between two looks at a cluster's list of nodes (module docstring)."""


class _Node:
    """A node of a Citus cluster holding shards of the trail, as one subscription reads it."""

    __slots__ = ("conn", "failing_since", "group", "host", "opened", "port", "state")

    def __init__(self, group: int, host: str, port: int, state: _Horizon) -> None:
        self.group, self.host, self.port, self.state = group, host, port, state
        self.conn: asyncpg.Connection | None = None
        self.failing_since: float | None = None
        self.opened = 0  # connections opened so far

    def drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.terminate()
            self.conn = None


class WorkflowEvents:
    """An async iterator of WorkflowTransition as they are committed: each poll delivers what became
    visible since the last one, in id order (on a cluster: in id order per node). Use through
    `store.workflow_events(...)`.

    `position` (after each transition delivered) says exactly what has been delivered: pass it
    back as `resume=` to a new subscription and it delivers what this one had not, nothing lost or
    repeated even when transactions overlapped (identity values are handed out at insert, not at
    commit, so a lower id can commit after a higher one). `after=` (a transition id) delivers every
    transition with a greater id; it resumes exactly only when the transactions around that id did
    not overlap (one server only: module docstring). While any transaction on the server stays
    open, each poll re-reads the transitions written since it began.

    It listens on a connection of its own, or, given a hub, shares the hub's and reads through
    `reader` (the store's executor) only when woken. With `connect_node` (a schema distributed on a
    Citus cluster) it listens and reads on every node holding shards of the trail instead."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]] | None,
        *,
        customer_id: UUID | None,
        execution_id: UUID | None,
        after: int | None,
        poll_interval: float,
        hub: EventsHub | None = None,
        reader: _Reader | None = None,
        resume: str | None = None,
        connect_node: NodeConnect | None = None,
    ) -> None:
        self._connect_fn = connect
        self._customer_id = customer_id
        self._execution_id = execution_id
        self._after = after
        self._poll_interval = poll_interval
        self._hub = hub
        self._reader = reader
        self._q = load("workflow_transitions")
        self._conn: asyncpg.Connection | None = None
        self._wakeup = asyncio.Event()
        self._buffer: deque[tuple[_Horizon, WorkflowTransition]] = deque()
        self._main = _Horizon()  # one server's
        self._connect_node = connect_node
        self._nodes: dict[int, _Node] | None = None if connect_node is None else {}  # a cluster's, by group
        self._nodes_checked = 0.0
        self._resume = None if resume is None else parse_positions(resume)
        self._closed = False
        self.reconnects = 0

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection (for operators and tests; on a cluster
        see `node_pids`)."""
        if self._nodes is not None:
            return None
        if self._hub is not None:
            return self._hub.backend_pid
        return None if self._conn is None else self._conn.get_server_pid()

    @property
    def node_pids(self) -> dict[int, int]:
        """On a cluster: the server process of the connection to each node, by group."""
        nodes = self._nodes or {}
        return {g: n.conn.get_server_pid() for g, n in nodes.items() if n.conn is not None and not n.conn.is_closed()}

    async def open(self) -> None:
        if self._nodes is not None:
            try:
                await self._open_nodes()
            except BaseException:
                await self.close()
                raise
            return
        if self._hub is not None:
            self._hub.register(self._wakeup, self._customer_id)
        else:
            await self._connect()
        try:
            resume = self._resume_of(None)
            if resume is not None or self._after is not None:
                await self._check_replay()
            if resume is not None:
                self._main = _Horizon(*resume)
                self._main.advance(await self._read(self._main.horizon), self._buffer, deliver=True)
            elif self._after is None:
                # start from now: what is already committed counts as seen
                self._main.horizon = await self._source().fetchval(self._q.snapshot_xmin)
                self._main.advance(await self._fetch_since(self._main.horizon), self._buffer, deliver=False)
                self._main.mark()
            else:
                horizon = await self._source().fetchval(self._q.txid_of, self._after)
                if horizon is None:
                    raise NotFound("workflow transition", self._after)
                self._main.horizon = horizon
                rows = await self._read(horizon)
                self._main.position_horizon = horizon
                self._main.position_ids = {r["id"] for r in rows if r["id"] is not None and r["id"] <= self._after}
                self._main.advance(rows, self._buffer, deliver=True, seen_up_to=self._after)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop: a reader waiting for the next transition gets StopAsyncIteration."""
        self._closed = True
        self._wakeup.set()
        if self._hub is not None:
            self._hub.unregister(self._wakeup)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        for node in (self._nodes or {}).values():
            if node.conn is not None:
                with contextlib.suppress(Exception):
                    await node.conn.close()
                node.conn = None

    @property
    def position(self) -> str | None:
        """Where this subscription stands, after the last transition it handed out: pass it as
        `resume=` to continue exactly from here (a short string: a transaction horizon and the ids
        above it already delivered, as ranges; on a cluster one such per node, `<group>.` before
        each, joined by `;`). None while a transaction left open on the server holds the horizon
        back so long that more than MAX_POSITION_RANGES ranges would be needed (then only
        `after=<last id>` can resume, exact only without overlapping transactions)."""
        if self._nodes is None:
            if len(self._main.position_ids) > MAX_POSITION_RANGES * 4:
                return None
            position = format_position(self._main.position_horizon, self._main.position_ids)
            return position if position.count(",") < MAX_POSITION_RANGES else None
        states = [(group, node.state) for group, node in sorted(self._nodes.items())]
        if sum(len(state.position_ids) for _, state in states) > MAX_POSITION_RANGES * 4:
            return None
        parts = [f"{group}.{format_position(state.position_horizon, state.position_ids)}" for group, state in states]
        ranges = sum(part.count(",") + (not part.endswith(":")) for part in parts)
        return ";".join(parts) if ranges <= MAX_POSITION_RANGES else None

    def __aiter__(self) -> WorkflowEvents:
        return self

    async def __anext__(self) -> WorkflowTransition:
        while not self._buffer:
            if self._closed or (self._hub is not None and self._hub.closed):
                raise StopAsyncIteration
            self._wakeup.clear()  # before reading, so a NOTIFY arriving meanwhile is not lost
            self._mark_position()  # everything read so far has been handed out
            if self._nodes is None:
                await self._poll()
            else:
                await self._poll_nodes()
            if self._buffer:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)
        state, transition = self._buffer.popleft()
        state.position_ids.add(transition.id)
        return transition

    # -- internals ---------------------------------------------------------------------------------

    def _notified(self, *_: Any) -> None:
        self._wakeup.set()

    def _resume_of(self, group: int | None) -> tuple[int, set[int]] | None:
        """The resumed position's horizon and ids of one server (None) or a cluster's node; refuses
        (InvalidArgument) a position of the other kind."""
        if self._resume is None:
            return None
        if (None in self._resume) != (group is None):
            raise InvalidArgument(
                "this event position is of one server, and the schema is distributed: resume only from a position "
                "of the cluster"
                if group is not None
                else "this event position is of a cluster's nodes: resume only from a position of this server"
            )
        return self._resume.get(group, (0, set()))  # a node the position does not name: from its start

    async def _check_replay(self) -> None:
        """Refuse (NotFound) a resume that would hand out more than MAX_REPLAY transitions again: a
        client that fell that far behind starts afresh instead of loading the history at once."""
        delivered: list[int] = []
        after = None
        resume = self._resume_of(None)
        if resume is not None:
            horizon, ids = resume
            delivered = sorted(ids)
        else:
            after = self._after
            horizon = await self._source().fetchval(self._q.txid_of, after)
            if horizon is None:
                raise NotFound("workflow transition", after)
        size = await self._source().fetchval(
            self._q.replay_size, horizon, self._customer_id, self._execution_id, MAX_REPLAY, delivered, after
        )
        if size > MAX_REPLAY:
            where = self._after if self._after is not None else "given"
            raise NotFound("event position", f"{where} (more than {MAX_REPLAY:,} transitions back)")

    def _mark_position(self) -> None:
        if self._nodes is None:
            self._main.mark()
            return
        for node in self._nodes.values():
            node.state.mark()

    def _source(self) -> _Reader:
        """The hub's subscribers read through the store; the others through their own connection."""
        reader: _Reader | None = self._reader if self._hub is not None else self._conn
        assert reader is not None
        return reader

    async def _connect(self) -> None:
        assert self._connect_fn is not None
        self._conn = await _listening(self._connect_fn, self._notified)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.terminate()
            self._conn = None

    async def _fetch_since(self, horizon: int) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._source().fetch(
            self._q.events_since, horizon, self._customer_id, self._execution_id
        )
        return rows

    async def _read(self, horizon: int) -> list[asyncpg.Record]:
        """The rows written from `horizon` on, returned once they are durable (module docstring).
        Raises StoreError (StoreUnavailable when the connection is lost meanwhile)."""
        try:
            if self._hub is None and self._conn is None:
                await self._connect()
                self.reconnects += 1
                _log.info("workflow events: reconnected")
            rows = await self._fetch_since(horizon)
            if (
                rows
                and not rows[0]["durable"]
                and any(r["id"] not in self._main.seen for r in rows if r["id"] is not None)
            ):
                await self._wait_durable(rows[0]["lsn"], self._source())
        except StoreError:
            raise
        except Exception as exc:
            raise_translated(exc)
        return rows

    async def _wait_durable(self, lsn: str, source: _Reader) -> None:
        """Until WAL position `lsn` is durable (on the synchronous standby too)."""
        began = time.monotonic()
        delay, warned = 0.002, False
        while not await source.fetchval(self._q.durable_at, lsn):
            if self._closed:
                return
            if not warned and time.monotonic() - began > _DURABLE_WAIT_WARNING:
                _log.warning("workflow events: waiting for the synchronous standby to confirm WAL %s", lsn)
                warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def _poll(self) -> None:
        """Hand out what became durable since the horizon. A lost connection, a server shutting
        down, a failover: back off and read again from the same horizon (a hub's subscription
        through its store's pool, which finds the new primary; the others on a new connection of
        their own), for up to GIVE_UP_AFTER seconds, then StoreUnavailable."""
        failing_since: float | None = None
        attempt = 0
        while not self._closed:
            try:
                rows = await self._read(self._main.horizon)
            except _RETRIED as exc:
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now - failing_since > GIVE_UP_AFTER or self._closed:
                    raise
                self._drop_connection()
                delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
                attempt += 1
                _log.warning("workflow events: cannot read (%s), retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if not self._closed:
                self._main.advance(rows, self._buffer, deliver=True)
            return

    # -- on a cluster (module docstring) -----------------------------------------------------------

    async def _open_nodes(self) -> None:
        if self._after is not None:
            raise InvalidArgument(
                "after= on a distributed schema: transition ids are not ordered across its nodes, so an id cannot "
                "say where to start on the others; resume from a position (resume=)"
            )
        resuming = self._resume is not None
        await self._refresh_nodes()
        assert self._nodes is not None
        nodes = list(self._nodes.values())
        await asyncio.gather(*(self._connect_to(node) for node in nodes))
        if resuming:
            await self._check_replay_nodes(nodes)
            for node, rows in zip(nodes, await asyncio.gather(*(self._read_node(n) for n in nodes)), strict=True):
                node.state.advance(rows, self._buffer, deliver=True)
            return
        # start from now on every node: what is already committed there counts as seen
        for node in nodes:
            assert node.conn is not None
            node.state.horizon = await node.conn.fetchval(self._q.snapshot_xmin)
        for node, rows in zip(nodes, await asyncio.gather(*(self._read_node(n) for n in nodes)), strict=True):
            node.state.advance(rows, self._buffer, deliver=False)
            node.state.mark()

    async def _refresh_nodes(self) -> None:
        """Learn the nodes holding shards of the trail from the coordinator (through the store): a
        node new to this subscription is read from its start (or from where a resumed position
        left it), one gone is dropped."""
        assert self._nodes is not None and self._reader is not None
        found = {row["groupid"]: row for row in await self._reader.fetch(self._q.event_nodes)}
        self._nodes_checked = time.monotonic()
        for group in [g for g in self._nodes if g not in found]:
            _log.info("workflow events: node group %d holds no shard of the trail any more", group)
            self._nodes.pop(group).drop()
        for group, row in found.items():
            node = self._nodes.get(group)
            if node is not None and (node.host, node.port) == (row["nodename"], row["nodeport"]):
                continue
            if node is not None:  # the group's primary moved (a failover of the worker): same state
                node.drop()
                node.host, node.port = row["nodename"], row["nodeport"]
                continue
            resumed = self._resume_of(group) if self._resume is not None else None
            self._nodes[group] = _Node(group, row["nodename"], row["nodeport"], _Horizon(*(resumed or (0, set()))))

    async def _connect_to(self, node: _Node) -> None:
        assert self._connect_node is not None
        connect, host, port = self._connect_node, node.host, node.port
        node.conn = await _listening(lambda: connect(host, port), self._notified)
        node.opened += 1
        if node.opened > 1:
            self.reconnects += 1
            _log.info("workflow events: reconnected to node group %d", node.group)

    async def _check_replay_nodes(self, nodes: list[_Node]) -> None:
        """_check_replay over the nodes of a cluster: MAX_REPLAY counts what all of them would hand
        out again."""
        total = 0
        for node in nodes:
            assert node.conn is not None
            total += await node.conn.fetchval(
                self._q.replay_size_on_node,
                node.state.horizon,
                self._customer_id,
                self._execution_id,
                MAX_REPLAY - total,
                "{" + ",".join(str(i) for i in sorted(node.state.seen)) + "}",
            )
            if total > MAX_REPLAY:
                raise NotFound("event position", f"given (more than {MAX_REPLAY:,} transitions back)")

    async def _read_node(self, node: _Node) -> list[asyncpg.Record]:
        """_read on one node of a cluster, on the node's connection (opened again if lost)."""
        try:
            if node.conn is None:
                await self._connect_to(node)
            assert node.conn is not None
            rows: list[asyncpg.Record] = await node.conn.fetch(
                self._q.events_on_node, node.state.horizon, self._customer_id, self._execution_id
            )
            if (
                rows
                and not rows[0]["durable"]
                and any(r["id"] not in node.state.seen for r in rows if r["id"] is not None)
            ):
                await self._wait_durable(rows[0]["lsn"], node.conn)
        except StoreError:
            raise
        except Exception as exc:
            raise_translated(exc)
        return rows

    async def _poll_nodes(self) -> None:
        """_poll over the nodes of a cluster, read at once. The transitions of the nodes that
        answered are handed out; a node that did not is read again (on a new connection, backing
        off while nothing else is to hand out) until it has failed for GIVE_UP_AFTER seconds, then
        StoreUnavailable."""
        assert self._nodes is not None
        attempt = 0
        while not self._closed:
            if time.monotonic() - self._nodes_checked > NODES_CHECK:
                try:
                    await self._refresh_nodes()
                except _RETRIED as exc:  # the coordinator, for now: the nodes known are read
                    _log.warning("workflow events: cannot read the cluster's nodes (%s)", exc)
            nodes = list(self._nodes.values())
            results = await asyncio.gather(*(self._read_node(n) for n in nodes), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, _RETRIED):
                    raise result
            failed = False
            now = time.monotonic()
            for node, result in zip(nodes, results, strict=True):
                if isinstance(result, BaseException):
                    failed = True
                    node.failing_since = now if node.failing_since is None else node.failing_since
                    if now - node.failing_since > GIVE_UP_AFTER or self._closed:
                        raise result
                    node.drop()
                    _log.warning("workflow events: cannot read node group %d (%s)", node.group, result)
                    continue
                node.failing_since = None
                if not self._closed:
                    node.state.advance(result, self._buffer, deliver=True)
            if not failed or self._buffer:
                return
            delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
            attempt += 1
            await asyncio.sleep(delay)


MAX_POSITION_IDS = 100_000
MAX_POSITION_RANGES = 1000  # what parse_position takes, and so what `position` gives
MAX_POSITION_NODES = 1000  # the nodes a cluster's position may name (a Citus cluster's workers)
MAX_REPLAY = 10_000  # transitions a resume may read again
_INT8 = 2**63 - 1
_RANGE = r"[0-9]{1,19}(?:-[0-9]{1,19})?"
_POSITION = re.compile(rf"([0-9]{{1,19}}):((?:{_RANGE})(?:,{_RANGE}){{0,{MAX_POSITION_RANGES - 1}}})?")


def format_position(horizon: int, ids: set[int]) -> str:
    """`<horizon>:<ids as ranges>`, e.g. `7421:1200-1203,1207`."""
    ranges: list[str] = []
    start = previous = None
    for i in sorted(ids):
        if previous is not None and i == previous + 1:
            previous = i
            continue
        if start is not None:
            ranges.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = i
    if start is not None:
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
    return f"{horizon}:{','.join(ranges)}"


def parse_position(text: str) -> tuple[int, set[int]]:
    """The horizon and ids of a position; InvalidArgument for anything that is not one."""
    match = _POSITION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidArgument(f"not an event position: {str(text)[:80]!r}")
    ids: set[int] = set()
    for part in filter(None, (match.group(2) or "").split(",")):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first or last > _INT8 or len(ids) + last - first >= MAX_POSITION_IDS:
            raise InvalidArgument(f"not an event position: {text[:80]!r}")
        ids.update(range(first, last + 1))
    horizon = int(match.group(1))
    if horizon > _INT8:
        raise InvalidArgument(f"not an event position: {text[:80]!r}")
    return horizon, ids


_NODE_POSITION = re.compile(r"([0-9]{1,10})[.](.*)")


def parse_positions(text: str) -> dict[int | None, tuple[int, set[int]]]:
    """The horizon and ids of a position, by node: of one server (`parse_position`) under None, of
    a cluster's nodes (`<group>.<position>` joined by `;`) under each group. InvalidArgument for
    anything that is not one (more than MAX_POSITION_NODES nodes, MAX_POSITION_RANGES ranges or
    MAX_POSITION_IDS ids in all, a group named twice)."""
    if not isinstance(text, str) or ";" not in text and "." not in text:
        return {None: parse_position(text)}
    if text.count(";") >= MAX_POSITION_NODES:
        raise InvalidArgument(f"not an event position: {text[:80]!r} names more than {MAX_POSITION_NODES:,} nodes")
    nodes: dict[int | None, tuple[int, set[int]]] = {}
    ranges = ids = 0
    for part in text.split(";"):
        match = _NODE_POSITION.fullmatch(part)
        if match is None or int(match[1]) in nodes or int(match[1]) > 2**31 - 1:
            raise InvalidArgument(f"not an event position: {text[:80]!r}")
        horizon, node_ids = parse_position(match[2])
        ranges += len(match[2].partition(":")[2].split(",")) if node_ids else 0
        ids += len(node_ids)
        if ranges > MAX_POSITION_RANGES or ids > MAX_POSITION_IDS:
            raise InvalidArgument(f"not an event position: {text[:80]!r}")
        nodes[int(match[1])] = (horizon, node_ids)
    return nodes


def customer_tag(key: bytes, customer_id: UUID) -> str:
    """The tag a notification carries for a customer: hex of the first 16 bytes of
    HMAC-SHA256(key, the id's 16 bytes), as `optiinfra_notify_tag` computes it in the database."""
    return hmac.new(key, customer_id.bytes, hashlib.sha256).hexdigest()[:32]


class EventsHub:
    """One listening connection for a whole process. Subscriptions opened with
    `store.workflow_events(hub=hub)` are woken by its notifications and read through their own
    store, so a thousand subscribers cost one server connection, plus a pooled one while each reads.
    The hub checks its connection every `check_interval` seconds; if it is lost, the hub re-opens
    it (backing off, logging each failure) and wakes everyone: each catches up from its own horizon,
    and the subscribers' periodic polls cover the gap. Closing the hub ends its subscriptions.
    Open it with `store.events_hub()`."""

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], *, check_interval: float = 10.0) -> None:
        self._connect_fn = connect
        self._check_interval = check_interval
        self._q = load("workflow_transitions")
        self._conn: asyncpg.Connection | None = None
        # by customer (None: every customer's); weak: a lost subscriber drops out
        self._subscribers: dict[UUID | None, weakref.WeakSet[asyncio.Event]] = {}
        self._key: bytes | None = None  # of the notifications' customer tags, read when listening
        self._customers: dict[str, UUID] = {}  # tag -> customer, of the customers subscribed
        self.woken = 0  # subscriber wake-ups so far (for operators and tests)
        self._watchdog: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.closed = False
        self.reconnects = 0

    @property
    def backend_pid(self) -> int | None:
        """The server process of the listening connection."""
        return None if self._conn is None else self._conn.get_server_pid()

    @property
    def listening(self) -> bool:
        """Whether the hub holds a live listening connection (else its subscribers only poll)."""
        return self._conn is not None and not self._conn.is_closed()

    @property
    def subscribers(self) -> int:
        return sum(len(group) for group in self._subscribers.values())

    async def open(self) -> None:
        await self._connect()
        self._watchdog = asyncio.create_task(self._keep_listening(), name="optiinfra-events-hub")

    async def close(self) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        self._wake()

    def register(self, wakeup: asyncio.Event, customer_id: UUID | None = None) -> None:
        """Wake `wakeup` on every notification about `customer_id`'s workflows (None: anyone's)."""
        self._subscribers.setdefault(customer_id, weakref.WeakSet()).add(wakeup)
        if customer_id is not None and self._key is not None:
            self._customers[customer_tag(self._key, customer_id)] = customer_id

    def unregister(self, wakeup: asyncio.Event) -> None:
        for customer_id, group in list(self._subscribers.items()):
            group.discard(wakeup)
            if not group:
                del self._subscribers[customer_id]
                if customer_id is not None and self._key is not None:
                    self._customers.pop(customer_tag(self._key, customer_id), None)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        _, _, tag = payload.partition(":")
        if not tag or self._key is None:  # a payload without a customer, or no key to read it: anyone's
            self._wake()
            return
        about = self._customers.get(tag)
        self._wake([None] if about is None else [about, None])

    def _wake(self, customers: list[UUID | None] | None = None) -> None:
        groups = self._subscribers.values() if customers is None else [self._subscribers.get(c, ()) for c in customers]
        for group in list(groups):
            for wakeup in list(group):
                self.woken += 1
                wakeup.set()

    async def _connect(self) -> None:
        conn = await _listening(self._connect_fn, self._notified)
        try:
            key = await conn.fetchval(self._q.notify_key)
        except (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedFunctionError):
            # a login that is not the application's, or a schema from before 0017: no tags to read,
            # so every notification wakes every subscriber (each still reads only what its own
            # store may see)
            _log.warning("events hub: this role may not read the notification key; every notification wakes everyone")
            key = None
        except Exception as exc:
            conn.terminate()
            raise_translated(exc)
        if key is not None and self._key != key:
            self._key = bytes(key)
            self._customers = {customer_tag(self._key, c): c for c in self._subscribers if c is not None}
        conn.add_termination_listener(lambda _conn: self._lost.set())
        self._conn = conn

    async def _healthy(self) -> bool:
        """Whether the connection answers (a half-open one raises nothing until it is used)."""
        try:
            assert self._conn is not None
            await self._conn.fetchval("SELECT 1", timeout=self._check_interval)
        except Exception:
            return False
        return True

    async def _keep_listening(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._check_interval)
            if not self._lost.is_set() and await self._healthy():
                continue
            self._lost.clear()
            old, self._conn = self._conn, None
            if old is not None:
                old.terminate()
            attempt = 0
            while self._conn is None:
                try:
                    await self._connect()
                except Exception as exc:  # any failure: keep trying, never leave the process deaf
                    delay = _RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)]
                    _log.warning("events hub: cannot listen (%s), retrying in %.2f s", type(exc).__name__, delay)
                    await asyncio.sleep(delay)
                    attempt += 1
            self.reconnects += 1
            _log.info("events hub: listening again after %d attempts", attempt + 1)
            self._wake()  # what was notified while nobody listened
