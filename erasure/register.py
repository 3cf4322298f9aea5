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

from erasure import audit, holds, personal
from erasure.deadlines import days_left, is_overdue, office_zone
from erasure.holds import HoldView
from erasure.errors import ConfigError, RequestNotFoundError
from erasure.models import AuditEvent, ErasureRequest, RequestStatus, Subject
from erasure.refusals import REFUSALS
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
    received_on: dt.date  # the office-local day of received_at: the day deadlines count from
    due: dt.date
    days_left: int | None  # None once closed
    overdue: bool
    reason_code: str | None
    reason: str | None
    match_count: int | None
    rows_erased: int | None
    response: str | None
    closed_at: dt.datetime | None
    refusal_code: str | None = None  # a full rejection's code (erasure.refusals)

    @classmethod
    def of(cls, r: ErasureRequest, today: dt.date, time_zone: str) -> RequestSummary:
        at = r.received_at if r.received_at.tzinfo else r.received_at.replace(tzinfo=dt.timezone.utc)
        return cls(
            reference=r.reference, status=r.status, channel=r.channel, tenant=r.tenant, regulation=r.regulation,
            kind=r.kind, requester=r.requester, received_at=r.received_at,
            received_on=at.astimezone(office_zone(time_zone)).date(), due=r.due,
            days_left=days_left(r.due, today) if r.is_open else None,
            overdue=bool(r.is_open and is_overdue(r.due, today)),
            reason_code=r.reason_code, reason=r.reason, match_count=r.match_count, rows_erased=r.rows_erased,
            response=r.response, closed_at=r.closed_at, refusal_code=r.refusal_code,
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
            "received_on": self.received_on.isoformat(),
            "due": self.due.isoformat(),
            "days_left": self.days_left,
            "overdue": self.overdue,
            "reason_code": self.reason_code,
            "reason": self.reason,
            "match_count": self.match_count,
            "rows_erased": self.rows_erased,
            "response": self.response,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "refusal_code": self.refusal_code,
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
class SubjectDecision:
    """An officer's refusal of one viewer id: the id masked, the code and its citation, their words."""

    subject: str  # masked (audit.masked_viewer_id)
    code: str
    citation: str | None  # None for a code this version does not know
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "code": self.code, "citation": self.citation, "reason": self.reason}


@dataclass(frozen=True)
class StoreLine:
    """The request's part in one view store (``StoreProgress``): pending or verified, and its evidence."""

    store: str
    description: str
    state: str
    counts: dict[str, int]
    rows_erased: int | None
    attempts: int
    last_error: str | None
    failing_since: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "description": self.description, "state": self.state, "counts": self.counts,
                "rows_erased": self.rows_erased, "attempts": self.attempts, "last_error": self.last_error,
                "failing_since": self.failing_since.isoformat() if self.failing_since else None}


@dataclass(frozen=True)
class RequestDetail:
    """`requests show`: the summary, the subjects masked, the request's audit events and replies."""

    summary: RequestSummary
    subjects: tuple[str, ...]  # masked (audit.masked_viewer_id): never a raw id
    events: tuple[EventLine, ...]
    replies: tuple[ReplyLine, ...]
    # Processor role: the controller's legal date, when its receipt date was given (deadlines.request_dates).
    controller_due: dt.date | None = None
    refused: tuple[SubjectDecision, ...] = ()  # the ids an officer refused (partial decisions, or all of them)
    # One line per view store the request has been erased in (or is waiting for); empty before `erasing`.
    stores: tuple[StoreLine, ...] = ()
    # The active legal holds that cover this open request (erasure.holds): nothing of it is erased meanwhile.
    holds: tuple[HoldView, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = self.summary.to_json()
        data["controller_due"] = self.controller_due.isoformat() if self.controller_due else None
        data["stores"] = [line.to_json() for line in self.stores]
        data["holds"] = [{"id": h.ref, "scope": h.scope, "reason": h.reason} for h in self.holds]
        data["subjects"] = list(self.subjects)
        data["refused"] = [d.to_json() for d in self.refused]
        data["events"] = [e.to_json() for e in self.events]
        data["replies"] = [m.to_json() for m in self.replies]
        return data


def check_status(status: str | None) -> None:
    if status is not None and status not in RequestStatus.ALL:
        raise ConfigError(f"--status {status!r} is not a state; use one of {', '.join(RequestStatus.ALL)}")


def list_requests(state: State, *, today: dt.date, time_zone: str, status: str | None = None, tenant: str | None = None,
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
        rows = [RequestSummary.of(r, today, time_zone) for r in session.scalars(stmt)]
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


def show_request(state: State, reference: str, *, today: dt.date, time_zone: str,
                 descriptions: dict[str, str] | None = None, keys: holds.KeySource | None = None) -> RequestDetail:
    """One request as `requests show` reads it; ``descriptions`` names each store as the config describes it;
    with ``keys`` (the audit keys, read only if a comparison needs them), also the legal holds that cover it
    while it is open."""
    descriptions = descriptions or {}
    with state.session() as session:
        try:
            r = lookup(session, reference)
        except RequestNotFoundError:
            raise _not_found(session, reference) from None
        cover = holds.cover_of(session, r, keys) if keys is not None and r.is_open else holds.Cover()
        return RequestDetail(
            summary=RequestSummary.of(r, today, time_zone),
            subjects=tuple(audit.masked_viewer_id(s.viewer_id, s.viewer_hmac) for s in r.subjects),
            events=_event_lines(session, r.reference),
            replies=tuple(ReplyLine(m.kind, m.recipient, m.status, m.message_id, m.attempts, m.last_error)
                          for m in r.replies),
            controller_due=r.controller_due_on,
            refused=tuple(_decision(s, r.regulation) for s in r.subjects if s.refusal_code is not None),
            stores=tuple(StoreLine(p.store, descriptions.get(p.store, ""), p.state,
                                   {k: int(v) for k, v in json.loads(p.counts or "{}").items()},
                                   p.rows_erased, p.attempts, p.last_error, p.failing_since) for p in r.stores),
            holds=cover.holds + cover.unchecked,
        )


def _decision(subject: Subject, regulation: str) -> SubjectDecision:
    refusal = REFUSALS.get(subject.refusal_code or "")
    citation = refusal.citation(regulation) if refusal is not None and regulation in refusal.bases else None
    return SubjectDecision(audit.masked_viewer_id(subject.viewer_id, subject.viewer_hmac),
                           subject.refusal_code or "", citation, subject.refusal_reason)
