"""Replies: templates -> messages -> outbox -> delivery.

A reply is rendered once, when the state change that causes it is committed,
and stored as bytes in the outbox in that same transaction. Delivery reads those
bytes, so a retry sends exactly what was first rendered, with the same
Message-ID, and a crash never loses or re-words a reply.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from erasure import audit
from erasure.config import Config
from erasure.delivery import CLAIM_LEASE, claim_token, recipient_key
from erasure.errors import TemplateError
from erasure.models import ErasureRequest, OutboxMessage, OutboxState, Regulation
from erasure.parse.headers import valid_message_id
from erasure.vocabulary import Channel

KINDS = ("acknowledgement", "completed", "no_data_found", "needs_information", "rejected", "extended",
         "direct_request")
#: Letters that say nothing about any data, any request's outcome or any viewer: the only
#: ones that may go to a requester a request may not otherwise answer (``reply_allowed``
#: false), and then only to the address ``verify.direct_reply`` allowed.
DATA_FREE_KINDS = frozenset({"direct_request"})
REGULATION_NAMES: dict[str, str] = {Regulation.GDPR: "GDPR", Regulation.CCPA: "CCPA"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def packaged_templates() -> Path:
    """The default templates: inside the wheel, or ``templates/`` in a source checkout."""
    inside = Path(__file__).parent / "templates"
    if inside.is_dir():
        return inside
    return Path(__file__).resolve().parent.parent / "templates"


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".html"))


class TemplateRenderer:
    """Jinja2 over a ChoiceLoader: the operator's folder first, then the packaged defaults.

    StrictUndefined because a blank field in a legal notice is a bug; autoescape
    for HTML; requester-supplied values only ever arrive as context data.
    """

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            if not override_dir.is_dir():
                raise TemplateError(f"templates.directory {override_dir} does not exist; create it or remove the setting")
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.FileSystemLoader(str(packaged_templates())))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=_autoescape,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, context: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, text body, html body) for one reply kind."""
        try:
            text = self.env.get_template(f"{kind}.txt").render(context)
            html = self.env.get_template(f"{kind}.html").render(context)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name} not found in the templates folder or the packaged defaults") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {kind}: {exc.message}; pass the value or fix the template") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {kind} is broken: {exc}") from exc
        first, _, body = text.partition("\n")
        if not first.lower().startswith("subject:"):
            raise TemplateError(f"template {kind}.txt must start with a 'Subject: ...' line")
        subject = _CONTROL.sub(" ", first[len("subject:"):]).strip()
        return subject, body.lstrip("\n"), html


@dataclass(frozen=True)
class ReplySpec:
    """What to say: the kind and the values only that kind needs."""

    kind: str
    extra: dict[str, Any] = field(default_factory=dict)


def message_id_for(request: ErasureRequest, kind: str, n: int, from_address: str) -> str:
    """Deterministic per (request, kind, n): a retried or re-queued reply keeps its id."""
    domain = from_address.rpartition("@")[2] or "localhost"
    suffix = "" if n == 0 else f".{n}"
    return f"<{request.reference}.{kind}{suffix}@{domain}>"


def base_context(config: Config, request: ErasureRequest) -> dict[str, Any]:
    """The values every letter may show; a step's own values (``ReplySpec.extra``) are laid over them.

    ``role`` picks the letters' voice: "processor" letters go to the customer's
    privacy team about its viewers' data, "controller" letters to the data
    subject. ``retention_months`` and ``suppression_on`` come from the policy the
    letters describe, so they never promise what the configuration does not do.
    ``controller_due_date`` is the customer's own legal date ("" when unknown).
    The defaults below (nobody notified, nothing refused, no legal basis) are
    what a step that does not know better supplies; ``Desk._reply(..., **extra)``
    passes the real ones: ``recipients_notified`` (names, Art. 19), ``refused``
    (``{"id": masked id, "basis": ..., "reason": ...}`` per id kept) and ``basis``.
    """
    from erasure.deadlines import format_date, received_date

    return {
        "role": config.policy.role,
        "retention_months": config.policy.record_retention_months,
        "suppression_on": config.policy.suppression,
        "controller_due_date": format_date(request.controller_due_on) if request.controller_due_on else "",
        "recipients_notified": [],
        "refused": [],
        "stores": [],  # completed: one {store, description, counts, total, ...} per view store (progress.StoreOutcome)
        "basis": "",
        "reference": request.reference,
        "regulation": request.regulation,
        "regulation_name": REGULATION_NAMES[request.regulation],
        # The office-local day, as deadlines count it (not the UTC date of the stored instant).
        "received_date": format_date(received_date(request.received_at, config.policy)),
        "due_date": format_date(request.due),
        "tenant": request.tenant or "",
        "viewer_id_count": len(request.subjects),
        "controller": config.controller,
        # The requester's subject may name a viewer; letters never carry a raw id.
        "original_subject": audit.without_viewer_ids(request.subject_line or "",
                                                     [s.viewer_id for s in request.subjects if s.viewer_id is not None]),
    }


def build_message(config: Config, request: ErasureRequest, spec: ReplySpec, renderer: TemplateRenderer,
                  *, message_id: str, now: dt.datetime) -> EmailMessage:
    return _build(config, request, spec, renderer, message_id=message_id, now=now)[0]


def _build(config: Config, request: ErasureRequest, spec: ReplySpec, renderer: TemplateRenderer,
           *, message_id: str, now: dt.datetime) -> tuple[EmailMessage, str, str]:
    """The reply, and the two bodies exactly as the templates rendered them (for ``check_rendered``)."""
    context = base_context(config, request) | spec.extra
    subject, text, html = renderer.render(spec.kind, context)
    # "Re:" marks a reply in the requester's client. The requester's own subject
    # is deliberately not echoed: it is untrusted text (RFC 2047 words decode to
    # anything), and the reference in our subject threads the conversation.
    threading = thread_headers(request)
    msg = _compose(config, to=request.requester or "", subject=f"Re: {subject}" if threading[0] else subject,
                   text=text, html=html, message_id=message_id, now=now, threading=threading,
                   reference=request.reference or "", auto_submitted="auto-replied")
    return msg, text, html


def _compose(config: Config, *, to: str, subject: str, text: str, html: str, message_id: str, now: dt.datetime,
             threading: tuple[str | None, str | None], reference: str, auto_submitted: str) -> EmailMessage:
    """One message from rendered parts: the header fields every letter of ours carries, in one order."""
    in_reply_to, references = threading
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = config.delivery.from_address
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg["Auto-Submitted"] = auto_submitted
    msg["X-Erasure-Reference"] = reference
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


#: Serialising at RFC 5322's hard limit (998), not the advisory 78: the stdlib
#: turns a word that does not fit a 78-character line into RFC 2047 encoded
#: words, and an encoded msg-id (Outlook's are ~80 characters) threads nothing.
#: Bodies are unaffected: their transfer encoding was chosen by ``set_content``.
WIRE_POLICY = email.policy.SMTP.clone(max_line_length=998)

#: References kept in a reply: the thread's first id and the newest ones (RFC 5322 3.6.4 lets a long chain be trimmed).
MAX_REPLY_REFERENCES = 20


def thread_headers(request: ErasureRequest) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) for a reply, made only of validated ``<local@domain>`` ids.

    The stored values already passed the same validator at intake; checking
    again here means no stored text, however it got there, reaches a header we
    send. An id Python's header code could decode (``=?``) is never one of them.
    """
    in_reply_to = valid_message_id(request.message_id)
    refs = [r for r in (valid_message_id(t) for t in (request.thread_refs or "").split()) if r is not None]
    refs = list(dict.fromkeys(refs))
    if len(refs) > MAX_REPLY_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REPLY_REFERENCES - 1):]
    return in_reply_to, " ".join(refs) or None


class UnsafeReplyError(TemplateError):
    """The rendered reply is not the message that was built; it is not queued."""


_HEADER_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")


def header_block(raw: bytes) -> list[tuple[str, str]]:
    """The top-level header fields of rendered bytes, read strictly on the wire.

    Lines end in CRLF; a line starting with space or tab continues the field
    before it; a bare CR or LF anywhere, a line without a colon, or a header
    name outside RFC 5322 is an error. Unfolded values are returned, so they can
    be compared with what was built.
    """
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        raise UnsafeReplyError("the rendered reply has no header/body separator")
    head = raw[: end + 2]
    lines = head.split(b"\r\n")[:-1]
    if any(b"\r" in line or b"\n" in line for line in lines):
        raise UnsafeReplyError("the rendered reply has a bare CR or LF in its header")
    fields: list[tuple[str, list[bytes]]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise UnsafeReplyError("the rendered reply's header starts with a continuation line")
            fields[-1][1].append(line)
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise UnsafeReplyError("the rendered reply has a malformed header line")
        fields.append((name.decode("ascii"), [value]))
    return [(name, b"".join(parts).decode("ascii", "replace").strip()) for name, parts in fields]


def check_rendered(raw: bytes, msg: EmailMessage, text: str, html: str,
                   threading: tuple[str | None, str | None]) -> None:
    """Refuse to queue bytes that are not exactly the reply we built.

    Checked on the rendered bytes themselves, not after re-parsing them (a
    parser would repair a split header): exactly the header fields we set, in
    order, none split by a CR or LF; In-Reply-To and References exactly the
    validated ids; and the two body parts exactly what the templates rendered.
    """
    built = list(msg.keys())
    fields = header_block(raw)
    if [name for name, _ in fields] != built:
        raise UnsafeReplyError(f"the rendered reply's header fields are {[n for n, _ in fields]}, not {built}")
    values = dict(fields)
    in_reply_to, references = threading
    if values.get("In-Reply-To") != in_reply_to or values.get("References") != references:
        raise UnsafeReplyError("the rendered reply's In-Reply-To or References differ from the validated ids")
    parsed = BytesParser(policy=email.policy.SMTP).parsebytes(raw)
    bodies = [part.get_content() for part in parsed.walk() if part.get_content_maintype() == "text"]
    def normal(body: str) -> str:  # set_content ends a body with exactly one newline
        return body.replace("\r\n", "\n").rstrip("\n")

    if [normal(b) for b in bodies] != [normal(text), normal(html)]:
        raise UnsafeReplyError("the rendered reply's body is not what the templates rendered")


def replies_to_recipient_since(session: Session, address: str, since: dt.datetime) -> int:
    """Replies queued since ``since`` to ``address`` in any spelling (``recipient_key``): the cap's count."""
    return session.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.recipient_key == recipient_key(address),
            OutboxMessage.created_at >= since,
        )
    ) or 0


def last_queued_to(session: Session, address: str, kind: str) -> dt.datetime | None:
    """When a reply of ``kind`` was last queued to ``address`` in any spelling (``recipient_key``), or None."""
    return session.scalar(
        select(func.max(OutboxMessage.created_at)).where(
            OutboxMessage.recipient_key == recipient_key(address), OutboxMessage.kind == kind,
        )
    )


def may_answer(request: ErasureRequest, kind: str, *, data_free_to: str | None = None) -> bool:
    """Whether a reply of ``kind`` may be queued for ``request`` at all.

    Ordinary letters need ``reply_allowed`` (verify.decide). A data-free letter
    needs instead that the caller names, in ``data_free_to``, the address
    ``verify.direct_reply`` allowed, and that it is the request's requester;
    ``data_free_to`` never lets an ordinary letter through.
    """
    if not request.requester:
        return False
    if kind in DATA_FREE_KINDS:
        return data_free_to is not None and data_free_to == request.requester
    return bool(request.reply_allowed) and data_free_to is None


def queue_reply(session: Session, config: Config, request: ErasureRequest, spec: ReplySpec,
                renderer: TemplateRenderer, *, now: dt.datetime,
                data_free_to: str | None = None) -> OutboxMessage | None:
    """Render and queue one reply in the caller's transaction; None when policy forbids replying (``may_answer``)."""
    if not may_answer(request, spec.kind, data_free_to=data_free_to):
        return None
    n = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.request_id == request.id, OutboxMessage.kind == spec.kind
        )
    ) or 0
    message_id = message_id_for(request, spec.kind, n, config.delivery.from_address)
    msg, text, html = _build(config, request, spec, renderer, message_id=message_id, now=now)
    raw = msg.as_bytes(policy=WIRE_POLICY)
    check_rendered(raw, msg, text, html, thread_headers(request))
    return _enqueue(session, config, request, spec.kind, message_id, request.requester, raw, now=now)


def parked_after(session: Session, seq: int) -> int:
    """Replies parked (at queueing, or by a failed delivery) by audit events after ``seq``: what a run parked."""
    from erasure.models import AuditEvent

    return session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.seq > seq, AuditEvent.event == "reply_parked")
    ) or 0


def may_digest(request: ErasureRequest) -> bool:
    """An authenticated tenant contact (mail verified for a tenant that we may answer), whose replies over the
    cap go out in a digest letter rather than being parked; an officer-typed ``--requester`` is not one."""
    return request.channel == Channel.EMAIL and bool(request.reply_allowed) and request.tenant is not None


def _enqueue(session: Session, config: Config, request: ErasureRequest, kind: str, message_id: str, to: str,
             raw: bytes, *, now: dt.datetime, capped: bool = True) -> OutboxMessage:
    """Put checked bytes in the outbox (held when ``capped`` and ``to`` has had its day's share) and audit it."""
    recent = replies_to_recipient_since(session, to, now - dt.timedelta(days=1)) if capped else 0
    over = capped and recent >= config.delivery.max_per_recipient_per_day
    # The cap stops storms, not customers: an authenticated tenant contact's replies over it
    # go out together in the run's digest letter (erasure.digest); anyone else's are parked.
    digest = over and may_digest(request)
    status = OutboxState.DIGEST if digest else OutboxState.PARKED if over else OutboxState.QUEUED
    row = OutboxMessage(
        request=request,
        kind=kind,
        message_id=message_id,
        recipient=to,
        recipient_key=recipient_key(to),
        raw=raw,
        status=status,
        attempts=0,
        last_error=(
            f"held: {recent} replies to this address in 24 hours (delivery.max_per_recipient_per_day); "
            + ("sent in this run's digest letter" if digest else "release with `erasure outbox retry`")
            if over else None
        ),
        created_at=now,
    )
    session.add(row)
    session.flush()
    event = {OutboxState.DIGEST: "reply_held_for_digest", OutboxState.PARKED: "reply_parked"}.get(status, "reply_queued")
    audit.record(session, event, request=request, data={"kind": kind, "message_id": message_id}, now=now,
                 reason=row.last_error)
    return row


#: The outbox kind of a notice to a downstream recipient (not a reply: it goes to a third party).
RECIPIENT_NOTICE = "recipient_notice"


def notice_message_id(request: ErasureRequest, recipient_name: str, from_address: str) -> str:
    """Deterministic per (request, recipient): a notice queued again after a crash is recognised, not sent twice.

    Keyed by the recipient's name (unique per tenant, case-insensitive), not
    its position in the config file, so reordering the list changes nothing;
    hashed so that any name makes a valid msg-id.
    """
    token = hashlib.sha256(recipient_name.strip().casefold().encode("utf-8")).hexdigest()[:16]
    return message_id_for(request, f"{RECIPIENT_NOTICE}.{token}", 0, from_address)


def notice_context(config: Config, request: ErasureRequest, recipient_name: str, *, counts: dict[str, int],
                   total_rows: int, completed_on: str) -> dict[str, Any]:
    """Everything a recipient notice may say: the reference, the dates and the counts.

    Built from nothing else (not ``base_context``), so the notice cannot name
    the tenant, the requester, its subject line or a viewer id even if an
    overriding template asks: StrictUndefined turns that into a TemplateError.
    """
    from erasure.deadlines import number_in_words

    return {
        "reference": request.reference,
        "regulation_name": REGULATION_NAMES[request.regulation],
        "recipient_name": recipient_name.strip(),
        "completed_date": completed_on,
        "counts": dict(counts),
        "total_rows": total_rows,
        "total_rows_words": number_in_words(total_rows),
        "viewer_id_count": len(request.subjects),
        "controller": config.controller,
    }


def queue_recipient_notice(session: Session, config: Config, request: ErasureRequest, recipient_name: str,
                           address: str, context: dict[str, Any], renderer: TemplateRenderer,
                           *, now: dt.datetime) -> OutboxMessage:
    """Render and queue one recipient's notice in the caller's transaction; the existing row if already queued.

    A notice is a letter of its own to a third party, not a reply: no
    In-Reply-To or References (it must not thread into the requester's
    conversation, which its recipient never saw), no "Re:", Auto-Submitted:
    auto-generated (RFC 3834), and sent whether or not the requester may be
    answered. Not held by ``delivery.max_per_recipient_per_day``: that cap
    stops reply storms to requesters, while a recipient is an address the
    operator configured that may serve every tenant and get one notice per
    completed erasure; parking those would delay a notice the law requires.
    """
    message_id = notice_message_id(request, recipient_name, config.delivery.from_address)
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.message_id == message_id))
    if existing is not None:
        return existing
    subject, text, html = renderer.render(RECIPIENT_NOTICE, context)
    msg = _compose(config, to=address, subject=subject, text=text, html=html, message_id=message_id, now=now,
                   threading=(None, None), reference=request.reference or "", auto_submitted="auto-generated")
    raw = msg.as_bytes(policy=WIRE_POLICY)
    check_rendered(raw, msg, text, html, (None, None))
    return _enqueue(session, config, request, RECIPIENT_NOTICE, message_id, address, raw, now=now, capped=False)


@dataclass
class DeliveryReport:
    sent: int = 0
    deferred: int = 0
    parked: int = 0
    unavailable: bool = False
    problems: list[str] = field(default_factory=list)


def due_outbox(session: Session, now: dt.datetime) -> list[int]:
    """Replies that are queued, due, and not claimed by a deliverer that is still within its lease."""
    return list(session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.status == OutboxState.QUEUED)
        .where(or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
        .where(or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now))
        .order_by(OutboxMessage.id)
    ))


def requeue(state: Any, ids: Sequence[int] | None = None, *, actor: str = audit.SYSTEM) -> int:
    """`outbox retry`: parked or deferred replies become due now; returns how many.

    Each row is locked by primary key and changed only if it is still parked
    or queued, so a reply sent meanwhile by a running deliverer (``sent``) is
    never put back in the queue. A claim is left alone: the deliverer holding
    it finishes, or its lease runs out. Each reply whose delivery state this
    changes (parked, or deferred to a later attempt) gets a ``reply_released``
    event naming ``actor``: it goes out on a person's word.
    """
    with state.session() as session:
        stmt = select(OutboxMessage.id).where(OutboxMessage.status.in_([OutboxState.PARKED, OutboxState.QUEUED]))
        if ids:
            stmt = stmt.where(OutboxMessage.id.in_(list(ids)))
        locked = [session.get(OutboxMessage, outbox_id, with_for_update=True)
                  for outbox_id in list(session.scalars(stmt.order_by(OutboxMessage.id)))]
        # Every row is locked before the audit trail is: a deliverer holds one row and then
        # waits for the audit lock, so taking the audit lock between rows would deadlock with it.
        released = [row for row in locked if row is not None and row.status in (OutboxState.PARKED, OutboxState.QUEUED)]
        for row in released:
            if row.status == OutboxState.PARKED or row.next_attempt_at is not None:  # a change of delivery state
                audit.record(session, "reply_released", actor=actor, request=row.request,
                             data={"outbox_id": row.id, "kind": row.kind,
                                   "was": "parked" if row.status == OutboxState.PARKED else "deferred"})
            row.status, row.next_attempt_at = OutboxState.QUEUED, None
        return len(released)


def deliver(state: Any, transport: Any, *, now: Callable[[], dt.datetime],
            retry_delay: Callable[[int], dt.timedelta], lease: dt.timedelta = CLAIM_LEASE,
            worker: str | None = None) -> DeliveryReport:
    """Send every queued reply that is due, each claimed first, one commit per step.

    Several deliverers may run at once (cron `poll`, an officer's `outbox
    retry` or `requests approve`, a second host on a shared state database).
    Each reply is *claimed* before it is sent: in one short transaction the
    row is locked (FOR UPDATE by primary key; SQLite serializes writers), and
    ``claimed_by``/``claimed_until`` are set only if it is still queued, due
    and unclaimed (or its claim has run out). A second claimant waits for the
    first to commit and then sees the claim, so exactly one deliverer sends it. No transaction stays open while the transport
    talks to the server. A claim column rather than ``FOR UPDATE SKIP
    LOCKED`` because it works alike on all three databases and survives the
    deliverer: if it dies mid-send, the reply becomes due again once
    ``lease`` has passed, never lost. (That resend carries the same
    Message-ID: at least once, as before.)

    A reply is marked sent only after the transport accepted it.
    """

    from erasure.delivery import DeliveryUnavailableError

    worker = worker or claim_token()
    report = DeliveryReport()
    with state.session() as session:
        ids = due_outbox(session, now())
    for outbox_id in ids:
        try:
            _deliver_one(state, transport, outbox_id, report, now=now, retry_delay=retry_delay,
                         lease=lease, worker=worker)
        except DeliveryUnavailableError as exc:
            # The server as a whole is unusable (down, TLS or login refused): every
            # reply would fail the same way, so stop and leave them all queued.
            report.problems.append(f"delivery stopped, the remaining replies stay queued: {exc}")
            report.unavailable = True
            break
    return report


def _claim(state: Any, outbox_id: int, worker: str, at: dt.datetime, lease: dt.timedelta) -> bytes | None:
    """Claim one reply for ``worker``; its bytes if this deliverer now owns it, else None.

    The row is locked by primary key first and only then checked: locking
    through the ``status`` index instead (as a conditional UPDATE may on
    MariaDB) deadlocks with a deliverer that holds the row and is changing
    its status.
    """
    with state.session() as session:
        row = session.get(OutboxMessage, outbox_id, with_for_update=True)
        if (row is None or row.status != OutboxState.QUEUED
                or (row.next_attempt_at is not None and row.next_attempt_at > at)
                or (row.claimed_until is not None and row.claimed_until > at)):
            return None
        row.claimed_by = worker
        row.claimed_until = at + lease
        return row.raw


def _release(state: Any, outbox_id: int, worker: str) -> None:
    """Give a claim back untouched (the server was unavailable: nothing happened to this reply)."""
    with state.session() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id, OutboxMessage.claimed_by == worker)
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def _deliver_one(state: Any, transport: Any, outbox_id: int, report: DeliveryReport, *,
                 now: Callable[[], dt.datetime], retry_delay: Callable[[int], dt.timedelta],
                 lease: dt.timedelta, worker: str) -> None:
    from erasure.delivery import (
        DeliveryPermanentError,
        DeliveryTemporaryError,
        DeliveryUnavailableError,
    )

    raw = _claim(state, outbox_id, worker, now(), lease)
    if raw is None:
        return  # sent, parked, not yet due, or another deliverer has it
    msg = BytesParser(policy=email.policy.SMTP).parsebytes(raw)
    failure: Exception | None = None
    receipt: str | None = None
    try:
        receipt = transport.send(msg)
    except DeliveryUnavailableError:
        _release(state, outbox_id, worker)  # not this reply's fault: nothing recorded against it
        raise
    except (DeliveryTemporaryError, DeliveryPermanentError) as exc:
        failure = exc
    except BaseException:
        _release(state, outbox_id, worker)  # a bug or an interrupt: the next run may try again at once
        raise
    at = now()
    with state.session() as session:
        row = session.get(OutboxMessage, outbox_id, with_for_update=True)
        if row is None:
            return  # pruned meanwhile
        ours = row.claimed_by == worker
        if not ours:
            # Our lease ran out mid-send and another deliverer took the reply:
            # its outcome stands, except that a reply we did send is sent.
            report.problems.append(
                f"{row.request.reference} {row.kind}: the claim ran out while sending (lease {lease}); "
                "it may go out twice, with the same Message-ID"
            )
            if failure is not None or row.status == OutboxState.SENT:
                return
        row.claimed_by = None
        row.claimed_until = None
        row.attempts += 1
        if isinstance(failure, DeliveryTemporaryError):
            row.next_attempt_at = at + retry_delay(row.attempts)
            row.last_error = str(failure)
            report.deferred += 1
            report.problems.append(f"{row.request.reference} {row.kind}: deferred: {failure}")
            audit.record(session, "reply_deferred", request=row.request, reason=str(failure),
                         data={"kind": row.kind, "message_id": row.message_id, "attempts": row.attempts}, now=at)
        elif failure is not None:
            row.status = OutboxState.PARKED
            row.last_error = str(failure)
            report.parked += 1
            report.problems.append(f"{row.request.reference} {row.kind}: parked: {failure}")
            audit.record(session, "reply_parked", request=row.request, reason=str(failure),
                         data={"kind": row.kind, "message_id": row.message_id}, now=at)
        else:
            row.status = OutboxState.SENT
            row.sent_at = at
            row.receipt = receipt
            row.last_error = None
            report.sent += 1
            audit.record(session, "reply_sent", request=row.request,
                         data={"kind": row.kind, "message_id": row.message_id}, now=at)
