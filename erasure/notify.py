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
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Callable

import jinja2
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from erasure import audit
from erasure.config import Config
from erasure.errors import TemplateError
from erasure.models import ErasureRequest, OutboxMessage

KINDS = ("acknowledgement", "completed", "no_data_found", "needs_information", "rejected", "extended")
REGULATION_NAMES = {"gdpr": "GDPR", "ccpa": "CCPA"}
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
    from erasure.deadlines import format_date

    return {
        "reference": request.reference,
        "regulation": request.regulation,
        "regulation_name": REGULATION_NAMES[request.regulation],
        "received_date": format_date(request.received_at.date()),
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
    context = base_context(config, request) | spec.extra
    subject, text, html = renderer.render(spec.kind, context)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = config.delivery.from_address
    msg["To"] = request.requester
    # "Re:" marks a reply in the requester's client. The requester's own subject
    # is deliberately not echoed: it is untrusted text (RFC 2047 words decode to
    # anything), and the reference in our subject threads the conversation.
    msg["Subject"] = f"Re: {subject}" if request.message_id else subject
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = message_id
    if request.message_id:
        msg["In-Reply-To"] = request.message_id
    if request.thread_refs:
        msg["References"] = request.thread_refs
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Erasure-Reference"] = request.reference or ""
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def queue_reply(session: Session, config: Config, request: ErasureRequest, spec: ReplySpec,
                renderer: TemplateRenderer, *, now: dt.datetime) -> OutboxMessage | None:
    """Render and queue one reply in the caller's transaction; None when policy forbids replying."""
    if not (request.reply_allowed and request.requester):
        return None
    n = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.request_id == request.id, OutboxMessage.kind == spec.kind
        )
    ) or 0
    message_id = message_id_for(request, spec.kind, n, config.delivery.from_address)
    msg = build_message(config, request, spec, renderer, message_id=message_id, now=now)
    recent = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.recipient == request.requester,
            OutboxMessage.created_at >= now - dt.timedelta(days=1),
        )
    ) or 0
    held = recent >= config.delivery.max_per_recipient_per_day
    row = OutboxMessage(
        request=request,
        kind=spec.kind,
        message_id=message_id,
        recipient=request.requester,
        raw=msg.as_bytes(policy=email.policy.SMTP),
        status="parked" if held else "queued",
        attempts=0,
        last_error=(
            f"held: {recent} replies to this address in 24 hours (delivery.max_per_recipient_per_day); "
            "release with `erasure outbox retry`" if held else None
        ),
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, "reply_parked" if held else "reply_queued", request=request,
                 data={"kind": spec.kind, "message_id": message_id}, now=now,
                 reason=row.last_error)
    return row


@dataclass
class DeliveryReport:
    sent: int = 0
    deferred: int = 0
    parked: int = 0
    unavailable: bool = False
    problems: list[str] = field(default_factory=list)


def due_outbox(session: Session, now: dt.datetime) -> list[int]:
    return list(session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "queued")
        .where(or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))
        .order_by(OutboxMessage.id)
    ))


def deliver(state: Any, transport: Any, *, now: Callable[[], dt.datetime],
            retry_delay: Callable[[int], dt.timedelta]) -> DeliveryReport:
    """Send every queued reply that is due, one commit per reply.

    A reply is marked sent only after the transport accepted it, so a crash in
    between re-sends it on the next run with the same Message-ID: at least once.
    """

    from erasure.delivery import DeliveryUnavailableError

    report = DeliveryReport()
    with state.session() as session:
        ids = due_outbox(session, now())
    for outbox_id in ids:
        try:
            _deliver_one(state, transport, outbox_id, report, now=now, retry_delay=retry_delay)
        except DeliveryUnavailableError as exc:
            # The server as a whole is unusable (down, TLS or login refused): every
            # reply would fail the same way, so stop and leave them all queued.
            report.problems.append(f"delivery stopped, the remaining replies stay queued: {exc}")
            report.unavailable = True
            break
    return report


def _deliver_one(state: Any, transport: Any, outbox_id: int, report: DeliveryReport, *,
                 now: Callable[[], dt.datetime], retry_delay: Callable[[int], dt.timedelta]) -> None:
    from erasure.delivery import DeliveryPermanentError, DeliveryTemporaryError, DeliveryUnavailableError

    with state.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.status != "queued":
            return
        msg = BytesParser(policy=email.policy.SMTP).parsebytes(row.raw)
        at = now()
        row.attempts += 1  # rolled back with the session if the server as a whole is unavailable
        try:
            receipt = transport.send(msg)
        except DeliveryUnavailableError:
            raise  # not this reply's fault: nothing recorded against it
        except DeliveryTemporaryError as exc:
            row.next_attempt_at = at + retry_delay(row.attempts)
            row.last_error = str(exc)
            report.deferred += 1
            report.problems.append(f"{row.request.reference} {row.kind}: deferred: {exc}")
            audit.record(session, "reply_deferred", request=row.request, reason=str(exc),
                         data={"kind": row.kind, "message_id": row.message_id, "attempts": row.attempts}, now=at)
        except DeliveryPermanentError as exc:
            row.status = "parked"
            row.last_error = str(exc)
            report.parked += 1
            report.problems.append(f"{row.request.reference} {row.kind}: parked: {exc}")
            audit.record(session, "reply_parked", request=row.request, reason=str(exc),
                         data={"kind": row.kind, "message_id": row.message_id}, now=at)
        else:
            row.status = "sent"
            row.sent_at = at
            row.receipt = receipt
            row.last_error = None
            report.sent += 1
            audit.record(session, "reply_sent", request=row.request,
                         data={"kind": row.kind, "message_id": row.message_id}, now=at)
