"""The tool's own state database: requests, their subjects, the audit trail, the
outbox and the mailbox ledger.

The schema is owned by Alembic (``erasure/migrations``); these classes mirror it
and a test checks that the migrations and the models agree. All times are stored
as naive UTC and returned as aware UTC datetimes, so SQLite, PostgreSQL and
MariaDB behave the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from erasure.deadlines import effective_due
from erasure.parse.headers import storable
from erasure.vocabulary import OUTBOX_STATES, OutboxState, Regulation, RequestStatus  # noqa: F401 (re-exported)

# The vocabularies live in erasure.vocabulary (no SQLAlchemy there); they are
# re-exported here, where callers have always imported them from.


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC on disk."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        # MariaDB's plain DATETIME drops microseconds, which would change the
        # hashed timestamps of audit events; DATETIME(6) keeps them.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(timezone.utc)")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


class CleanString(TypeDecorator[str]):
    """The state boundary's one guard for text that came from outside (mail headers, errors).

    Whatever path a value takes, what is bound is ``parse.headers.storable``:
    valid Unicode, no NUL or control characters, cut to the column's length. So
    one hostile header can make no INSERT fail on any of the three databases
    (PostgreSQL refuses NUL; every driver refuses lone surrogates; MariaDB in
    strict mode refuses over-long values). Lookups bind through the same type,
    so they compare what was stored.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.limit = length

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return storable(value, self.limit)


class CleanText(TypeDecorator[str]):
    """As ``CleanString``, for multi-line text; cut to ``TEXT_CHARS`` so that even
    4-byte characters fit MariaDB's 64 KiB TEXT."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return storable(value, TEXT_CHARS, multiline=True)


# Bounded lengths keep every indexed column within MariaDB's index size limit.
TEXT_CHARS = 16_000
REF_LEN = 32
ADDRESS_LEN = 320
HEADER_LEN = 255


class Base(DeclarativeBase):
    pass


class ErasureRequest(Base):
    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(REF_LEN), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | manual
    status: Mapped[str] = mapped_column(String(24), index=True)
    # The decision taken at intake, kept so that a crash between intake and
    # classification can resume without the original message.
    planned: Mapped[str] = mapped_column(String(16))  # erase | review | ignore
    kind: Mapped[str] = mapped_column(String(16))  # erasure | access | other
    regulation: Mapped[str] = mapped_column(String(8))
    tenant: Mapped[str | None] = mapped_column(String(100), index=True)
    requester: Mapped[str | None] = mapped_column(CleanString(ADDRESS_LEN))
    reply_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_line: Mapped[str] = mapped_column(CleanString(HEADER_LEN), default="")
    message_id: Mapped[str | None] = mapped_column(CleanString(HEADER_LEN))
    thread_refs: Mapped[str | None] = mapped_column(CleanText)  # Message-ID + References, for threading replies
    reason_code: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(CleanText)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    acknowledge_by: Mapped[dt.date | None] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date, index=True)
    extended_to: Mapped[dt.date | None] = mapped_column(Date)
    # Processor role: the controller's own legal date, when the day it received the request is known.
    controller_due_on: Mapped[dt.date | None] = mapped_column(Date)
    # The state a legal hold stopped this request in (received or erasing), while it is held
    # (erasure.holds); on release it goes back there: classified again, or its erasure resumed.
    held_from: Mapped[str | None] = mapped_column(String(24))
    match_count: Mapped[int | None] = mapped_column(BigInteger)
    rows_erased: Mapped[int | None] = mapped_column(BigInteger)
    response: Mapped[str | None] = mapped_column(String(32))  # completed | no_data_found | rejected | ignored | cancelled
    # The refusal code (erasure.refusals) of a full rejection; per-id decisions are on the subjects.
    refusal_code: Mapped[str | None] = mapped_column(String(32))
    approved_by: Mapped[str | None] = mapped_column(CleanString(100))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    subjects: Mapped[list[Subject]] = relationship(
        back_populates="request", order_by="Subject.position", cascade="all, delete-orphan"
    )
    replies: Mapped[list[OutboxMessage]] = relationship(back_populates="request", order_by="OutboxMessage.id")
    stores: Mapped[list[StoreProgress]] = relationship(
        back_populates="request", order_by="StoreProgress.id", cascade="all, delete-orphan"
    )

    @property
    def due(self) -> dt.date:
        return effective_due(self.due_on, self.extended_to)

    @property
    def is_open(self) -> bool:
        return self.status in RequestStatus.OPEN


class Subject(Base):
    """One viewer id named by a request. The raw id is dropped when the request closes."""

    __tablename__ = "subjects"
    __table_args__ = (Index("ix_subjects_hmac", "viewer_hmac"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    viewer_id: Mapped[str | None] = mapped_column(Text)
    viewer_hmac: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(Integer)
    # An officer refused this id (erasure.refusals code, and their words): it is neither counted nor erased.
    refusal_code: Mapped[str | None] = mapped_column(String(32))
    refusal_reason: Mapped[str | None] = mapped_column(CleanText)

    request: Mapped[ErasureRequest] = relationship(back_populates="subjects")

    @property
    def refused(self) -> bool:
        return self.refusal_code is not None


class StoreProgress(Base):
    """One request's erasure in one view store: pending until that store has erased and verified it.

    There is no transaction across stores, so this row is what lets a run
    erase the stores that answer while one is down, and resume after a crash
    between two stores' commits without erasing any store twice with a
    different answer: ``match_count`` is what was counted on the way into
    ``erasing``, the figure a retry that finds nothing left falls back on.
    """

    __tablename__ = "store_progress"
    __table_args__ = (
        UniqueConstraint("request_id", "store", name="uq_store_progress_request_store"),
        Index("ix_store_progress_store_state", "store", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    store: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # pending | verified
    match_count: Mapped[int | None] = mapped_column(BigInteger)
    rows_erased: Mapped[int | None] = mapped_column(BigInteger)
    counts: Mapped[str | None] = mapped_column(Text)  # JSON: rows erased per table
    resumed: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(CleanText)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the store first failed since it last succeeded: `status` flags a store failing for over a day.
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[ErasureRequest] = relationship(back_populates="stores")


class LegalHold(Base):
    """A legal hold: nothing of the tenant (or of one of its viewers) is erased while it is active.

    A per-viewer hold keeps only the viewer id's HMAC (``audit.viewer_hmac``,
    scoped by tenant) and the key version it was made with, like ``Subject``:
    a hold outlives every request, so the raw id is never stored. Released
    holds are kept, with who released them, when and why.
    """

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), index=True)
    viewer_hmac: Mapped[str | None] = mapped_column(String(64))  # None: every request of the tenant
    key_version: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(CleanText)
    actor: Mapped[str] = mapped_column(CleanString(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(CleanString(100))
    release_reason: Mapped[str | None] = mapped_column(CleanText)

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class AuditEvent(Base):
    """One link of the hash chain; see audit.py for the canonical encoding."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(40))
    request_ref: Mapped[str | None] = mapped_column(String(REF_LEN), index=True)
    tenant: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)  # canonical JSON object
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class PersonalValue(Base):
    """A personal value of one audit event (an address, an officer's words), kept beside the chain.

    The event itself holds only ``sha256:<hex>`` of ``salt + value`` (see
    erasure/personal.py), so the value can be pruned with its request record
    while the chain stays unchanged and verifiable. Pruning sets ``value`` and
    ``salt`` to NULL and ``pruned_seq`` to the ``records_pruned`` event that did
    it: the row stays as a tombstone that says what was pruned, when, and by
    which event. No foreign key to ``audit_events``: the chain is verified on
    its own, and this table is never read while verifying.
    """

    __tablename__ = "audit_personal"
    __table_args__ = (UniqueConstraint("seq", "field", name="uq_audit_personal_seq_field"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # the audit event's seq (the unique key serves lookups by seq)
    field: Mapped[str] = mapped_column(String(64))  # "reason", or "data.<key>"
    request_ref: Mapped[str | None] = mapped_column(String(REF_LEN), index=True)
    value: Mapped[str | None] = mapped_column(CleanText)
    salt: Mapped[str | None] = mapped_column(String(64))
    pruned_seq: Mapped[int | None] = mapped_column(Integer)


class AuditCheckpoint(Base):
    """One row (id 1): the newest event a whole-chain or incremental verification found intact.

    `erasure status` checks only the events after it (and that it still
    matches), so the morning screen stays fast at millions of events;
    `erasure audit verify` always checks the whole chain and moves it.
    """

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditLock(Base):
    """One row (id 1) that every audit writer locks first, so appends to the chain queue up.

    Locking the newest event instead is not enough: on PostgreSQL a writer
    that waited for that lock still sees the old head (its ORDER BY is not
    re-evaluated) and reuses its seq; on MariaDB two writers' gap locks on the
    head deadlock. A plain primary-key row lock has neither problem, and the
    head read after it is a locking read, so it sees the newest committed event.
    """

    __tablename__ = "audit_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class OutboxMessage(Base):
    """A reply rendered once, stored as bytes, delivered at least once."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(HEADER_LEN), unique=True)
    recipient: Mapped[str] = mapped_column(CleanString(ADDRESS_LEN), index=True)
    # erasure.delivery.recipient_key(recipient): what the per-recipient cap counts by,
    # so DPO@ and dpo@ (or dpo+x@) are one recipient.
    recipient_key: Mapped[str | None] = mapped_column(String(ADDRESS_LEN), index=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"))  # not a 64 KB BLOB
    status: Mapped[str] = mapped_column(String(16), index=True)  # one of OUTBOX_STATES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(CleanText)
    receipt: Mapped[str | None] = mapped_column(CleanText)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A deliverer claims a row before sending it and releases it after (see
    # notify.deliver): a row claimed until a time still to come is someone
    # else's; one whose claim has run out belonged to a deliverer that died.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[ErasureRequest] = relationship(back_populates="replies")


class MailboxMessage(Base):
    """The intake ledger: every message ever taken from a mailbox, so none is taken twice."""

    __tablename__ = "mailbox_messages"
    __table_args__ = (
        UniqueConstraint("source", "message_key", name="uq_mailbox_messages_source_key"),
        Index("ix_mailbox_messages_body", "body_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(CleanString(HEADER_LEN))
    message_key: Mapped[str] = mapped_column(CleanString(HEADER_LEN))
    message_id: Mapped[str | None] = mapped_column(CleanString(HEADER_LEN))
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))
    destination: Mapped[str] = mapped_column(String(16))  # processed | review
    moved: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MailboxCursor(Base):
    """Per-source bookkeeping: UIDVALIDITY seen and the last successful poll."""

    __tablename__ = "mailbox_cursor"

    source: Mapped[str] = mapped_column(CleanString(HEADER_LEN), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(Integer)
    last_poll_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The last pass's problems (quarantined messages, moves that failed, a crash),
    # so `erasure status` can say why, not only when the last good poll was.
    last_problem: Mapped[str | None] = mapped_column(CleanText)
    last_problem_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The last finished pass: how long it took and how many new messages it fetched (for monitoring).
    last_poll_seconds: Mapped[float | None] = mapped_column(Float)
    last_poll_fetched: Mapped[int | None] = mapped_column(Integer)
