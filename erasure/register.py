"""The request register as the officer reads it: `requests list` and `requests show`.

Reading only: nothing here changes a request (the workflow's Desk does that).
Each answer is a dataclass whose ``to_json()`` is the contract in docs/json.md;
the CLI prints it as it is or as a table.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure import audit, personal
from erasure.deadlines import days_left, is_overdue
from erasure.errors import ConfigError, RequestNotFoundError
from erasure.models import AuditEvent, ErasureRequest, RequestStatus
from erasure.state import State


@dataclass(frozen=True)
class RequestSummary:
    """One row of the register, with its deadline as seen on ``today`` (office-local)."""

    reference: str | None  # set at intake, in the same transaction as the row
    status: str
    channel: str
    tenant: str | None
    regulation: str
    kind: str
    requester: str | None
    received_at: dt.datetime
    due: dt.date
    days_left: int | None  # None once closed
    overdue: bool
    reason_code: str | None
    reason: str | None
    match_count: int | None
    rows_erased: int | None
    response: str | None
    closed_at: dt.datetime | None

    @classmethod
    def of(cls, r: ErasureRequest, today: dt.date) -> RequestSummary:
        return cls(
            reference=r.reference, status=r.status, channel=r.channel, tenant=r.tenant, regulation=r.regulation,
            kind=r.kind, requester=r.requester, received_at=r.received_at, due=r.due,
            days_left=days_left(r.due, today) if r.is_open else None,
            overdue=bool(r.is_open and is_overdue(r.due, today)),
            reason_code=r.reason_code, reason=r.reason, match_count=r.match_count, rows_erased=r.rows_erased,
            response=r.response, closed_at=r.closed_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "status": self.status,
            "channel": self.channel,
            "tenant": self.tenant,
            "regulation": self.regulation,
            "kind": self.kind,
            "requester": self.requester,
            "received_at": self.received_at.isoformat(),
            "due": self.due.isoformat(),
            "days_left": self.days_left,
            "overdue": self.overdue,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "match_count": self.match_count,
            "rows_erased": self.rows_erased,
            "response": self.response,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }


@dataclass(frozen=True)
class EventLine:
    seq: int
    at: dt.datetime
    actor: str
    event: str
    reason: str | None
    data: Any

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "event": self.event,
                "reason": self.reason, "data": self.data}


@dataclass(frozen=True)
class ReplyLine:
    kind: str
    to: str
    status: str
    message_id: str | None
    attempts: int
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "to": self.to, "status": self.status, "message_id": self.message_id,
                "attempts": self.attempts, "last_error": self.last_error}


@dataclass(frozen=True)
class RequestDetail:
    """`requests show`: the summary, the subjects masked, the request's audit events and replies."""

    summary: RequestSummary
    subjects: tuple[str, ...]  # masked (audit.masked_viewer_id): never a raw id
    events: tuple[EventLine, ...]
    replies: tuple[ReplyLine, ...]
    # Processor role: the controller's legal date, when its receipt date was given (deadlines.request_dates).
    controller_due: dt.date | None = None

    def to_json(self) -> dict[str, Any]:
        data = self.summary.to_json()
        data["controller_due"] = self.controller_due.isoformat() if self.controller_due else None
        data["subjects"] = list(self.subjects)
        data["events"] = [e.to_json() for e in self.events]
        data["replies"] = [m.to_json() for m in self.replies]
        return data


def check_status(status: str | None) -> None:
    if status is not None and status not in RequestStatus.ALL:
        raise ConfigError(f"--status {status!r} is not a state; use one of {', '.join(RequestStatus.ALL)}")


def list_requests(state: State, *, today: dt.date, status: str | None = None, tenant: str | None = None,
                  overdue: bool = False, due_within: int | None = None) -> list[RequestSummary]:
    """The register in order of arrival; ``due_within`` keeps open requests due within that many days
    (overdue ones included)."""
    check_status(status)
    with state.session() as session:
        stmt = select(ErasureRequest).order_by(ErasureRequest.received_at, ErasureRequest.id)
        if status:
            stmt = stmt.where(ErasureRequest.status == status)
        if tenant:
            stmt = stmt.where(ErasureRequest.tenant == tenant)
        rows = [RequestSummary.of(r, today) for r in session.scalars(stmt)]
    if overdue:
        rows = [r for r in rows if r.overdue]
    if due_within is not None:
        rows = [r for r in rows if r.days_left is not None and r.days_left <= due_within]
    return rows


def lookup(session: Session, reference: str) -> ErasureRequest:
    """The request by reference, or by its numeric id; unlocked (for reading)."""
    request = session.scalar(select(ErasureRequest).where(ErasureRequest.reference == reference))
    if request is None and reference.isdigit():
        request = session.get(ErasureRequest, int(reference))
    if request is None:
        raise RequestNotFoundError(f"no request {reference!r}; see `erasure requests list`")
    return request


def _event_lines(session: Session, reference: str | None) -> tuple[EventLine, ...]:
    """A request's events as people read them: personal values shown while kept, "pruned" after."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.request_ref == reference).order_by(AuditEvent.seq)).all()
    fields = personal.revealed(session, [e.seq for e in events])
    lines = []
    for e in events:
        reason, data = personal.shown(e.reason, json.loads(e.data), fields.get(e.seq, {}))
        lines.append(EventLine(e.seq, e.at, e.actor, e.event, reason, data))
    return tuple(lines)


def _not_found(session: Session, reference: str) -> RequestNotFoundError:
    """Not found, or pruned: then say when, by which event, and where its events still are."""
    pruned = personal.pruned_by(session, reference)
    if pruned is None:
        return RequestNotFoundError(f"no request {reference!r}; see `erasure requests list`")
    seq, at, event = pruned
    return RequestNotFoundError(
        f"{reference} was pruned on {at:%Y-%m-%d} (audit event {seq}, {event}), past "
        f"policy.record_retention_months; its events remain, without personal data: "
        f"erasure audit export --request {reference}"
    )


def show_request(state: State, reference: str, *, today: dt.date) -> RequestDetail:
    with state.session() as session:
        try:
            r = lookup(session, reference)
        except RequestNotFoundError:
            raise _not_found(session, reference) from None
        return RequestDetail(
            summary=RequestSummary.of(r, today),
            subjects=tuple(audit.masked_viewer_id(s.viewer_id, s.viewer_hmac) for s in r.subjects),
            events=_event_lines(session, r.reference),
            replies=tuple(ReplyLine(m.kind, m.recipient, m.status, m.message_id, m.attempts, m.last_error)
                          for m in r.replies),
            controller_due=r.controller_due_on,
        )
