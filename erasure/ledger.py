"""The intake ledger and the mailbox cursor: what was taken from each mailbox, and when it was read.

Every message ever taken is one ``mailbox_messages`` row, keyed by source and
message key, and also findable by its bytes' SHA-256: so a message is never
taken twice, not after a crash between commit and move, and not after a
UIDVALIDITY change renumbers the folder. The cursor (``mailbox_cursor``)
remembers each source's UIDVALIDITY and its last poll, for `erasure status`.

``workflow.Desk`` decides what a message becomes; this module only records
that it was taken, and where it went. Times are passed in (the desk's clock).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import audit
from erasure.mailbox import MessageRef
from erasure.models import MailboxCursor, MailboxMessage
from erasure.state import State

log = logging.getLogger("erasure.workflow")


def ledger_key(ref: MessageRef) -> str:
    """The key a message is recorded under (bounded to the column's length)."""
    return ref.key[:255]


def already_taken(session: Session, source_name: str, ref: MessageRef, body_sha: str | None,
                  now: dt.datetime) -> tuple[int | None, str] | None:
    """(request id, destination) of a message taken before, under this key or as the same bytes; else None.

    The same bytes under another key (a UIDVALIDITY change) get their own
    ledger row pointing at the first one's request, so the next pass finds
    them by key.
    """
    known = session.scalar(
        select(MailboxMessage).where(MailboxMessage.source == source_name, MailboxMessage.message_key == ledger_key(ref))
    )
    if known is not None:
        return known.request_id, known.destination
    if body_sha is not None:
        same = session.scalar(select(MailboxMessage).where(MailboxMessage.body_sha256 == body_sha).limit(1))
        if same is not None:
            session.add(MailboxMessage(
                source=source_name, message_key=ledger_key(ref), message_id=same.message_id,
                body_sha256=body_sha, size=ref.size, request_id=same.request_id,
                destination=same.destination, moved=False, created_at=now,
            ))
            return same.request_id, same.destination
    return None


def record(session: Session, source_name: str, ref: MessageRef, *, message_id: str | None, body_sha: str | None,
           request_id: int, destination: str, now: dt.datetime) -> None:
    """The ledger row of a message just taken, in the transaction that records its request."""
    session.add(MailboxMessage(
        source=source_name, message_key=ledger_key(ref), message_id=message_id,
        body_sha256=body_sha, size=ref.size, request_id=request_id,
        destination=destination, moved=False, created_at=now,
    ))


def recorded(state: State, source_name: str, refs: Sequence[MessageRef]) -> dict[str, MailboxMessage]:
    """Ledger rows for the refs already taken from this source, by key (looked up in chunks)."""
    keys = [ledger_key(r) for r in refs]
    found: dict[str, MailboxMessage] = {}
    with state.session() as session:
        for i in range(0, len(keys), 500):
            for row in session.scalars(select(MailboxMessage).where(
                MailboxMessage.source == source_name, MailboxMessage.message_key.in_(keys[i:i + 500]),
            )):
                found[row.message_key] = row
    return found


def mark_moved(state: State, source_name: str, key: str) -> None:
    """The message left the intake folder: a later pass need not move it again."""
    with state.session() as session:
        row = session.scalar(
            select(MailboxMessage).where(MailboxMessage.source == source_name, MailboxMessage.message_key == key)
        )
        if row is not None:
            row.moved = True


def cursor(session: Session, source_name: str) -> MailboxCursor:
    """The source's cursor row, created on first use."""
    row = session.get(MailboxCursor, source_name)
    if row is None:
        row = MailboxCursor(source=source_name)
        session.add(row)
    return row


def note_uidvalidity(state: State, source_name: str, refs: Sequence[MessageRef], now: dt.datetime) -> None:
    """Remember the folder's UIDVALIDITY, and put a change of it in the audit trail."""
    values = {r.uidvalidity for r in refs if r.uidvalidity is not None}
    if not values:
        return
    current = max(values)
    with state.session() as session:
        row = cursor(session, source_name)
        if row.uidvalidity is not None and row.uidvalidity != current:
            audit.record(session, "mailbox_uidvalidity_changed", now=now,
                         data={"source": source_name, "old": row.uidvalidity, "new": current},
                         reason="the folder was recreated; messages already recorded are recognised by their bytes")
        row.uidvalidity = current


def note_poll(state: State, source_name: str, *, success: bool, problems: Sequence[str] = (),
              now: dt.datetime, seconds: float | None = None, fetched: int | None = None) -> None:
    """When the pass ran, whether it finished, and its problems (kept until a later pass has some);
    for a finished pass also how long it took and how many new messages it fetched (monitoring)."""
    try:
        with state.session() as session:
            row = cursor(session, source_name)
            row.last_poll_at = now
            if success:
                row.last_success_at = row.last_poll_at
                row.last_poll_seconds = seconds
                row.last_poll_fetched = fetched
            if problems:
                row.last_problem = "; ".join(problems)
                row.last_problem_at = row.last_poll_at
    except Exception:
        if success:
            raise
        # Noting a failed pass must not hide why it failed.
        log.error("could not note the failed poll of %s in the state database", source_name)
