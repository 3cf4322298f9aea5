"""The privacy desk: decides when a request moves forward, and takes the step.

Which steps exist, where each may start and where it ends is the table in
``erasure.transitions`` (the only code that changes a request's status);
what was taken from which mailbox is ``erasure.ledger``'s; pruning old
records is ``erasure.retention``'s.

Every arrow is one state-database transaction that also appends its audit
event and queues its reply, so a crash anywhere leaves the request in a state
from which ``advance`` resumes: nothing lost, nothing erased twice by mistake,
no reply queued twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Callable, Iterable, Self, Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, object_session

from erasure import audit, holds, ledger, progress, retention, transitions
from erasure.config import Config, Tenant
from erasure.deadlines import (
    Deadlines,
    controller_receipt_problem,
    deadlines_for,
    extension_allowed,
    format_date,
    number_in_words,
    receipt_date_problem,
    receipt_time,
    received_date,
    request_dates,
)
from erasure.errors import (
    ErasureError,
    InvalidTransitionError,
    MailboxUnavailableError,
    RequestHeldError,
    RequestNotFoundError,
    StateUnavailableError,
    TemporaryError,
    TenantOverrideRequiredError,
    UsageError,
)
from erasure.ledger import ledger_key
from erasure.mailbox import IncomingMessage, MailSource, MessageRef
from erasure.models import (
    ADDRESS_LEN,
    HEADER_LEN,
    ErasureRequest,
    OutboxMessage,
    RequestStatus,
    Subject,
)
from erasure.notify import (
    ReplySpec,
    TemplateRenderer,
    last_queued_to,
    notice_context,
    queue_recipient_notice,
    queue_reply,
)
from erasure.parse import ParsedMessage, clean_viewer_ids
from erasure.parse.budget import ParseBudget, parse_within_budget
from erasure.parse.headers import storable, valid_message_id
from erasure.refusals import Refusal, letter_basis, refusal_for
from erasure.register import RequestDetail, show_request
from erasure.replies import ASK_FOR_INFORMATION, acknowledgement_due, customer_text, direct_reply_due, reply_after
from erasure.state import State, open_state
from erasure.status import ACKNOWLEDGED_BY_OFFICER
from erasure.store import ErasureResult, Target
from erasure.store.stores import Counted, Stores
from erasure.verify import REASONS, Decision, DirectReply, decide, direct_reply
from erasure.vocabulary import Channel, ManualChannel

log = logging.getLogger("erasure.workflow")

MAX_THREAD_LOOKUP = 50  # references of one mail looked up among our letters (as many as parse keeps)

S = RequestStatus


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (e.g. a container without a passwd entry)
        return "officer"


@dataclass(frozen=True)
class RequestOutcome:
    """Where one request stands after a step; what the CLI prints per request."""

    reference: str
    status: str
    tenant: str | None
    regulation: str
    reason_code: str | None
    reason: str | None
    rows_erased: int | None
    match_count: int | None
    replies: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what an officer's decision changed that they should know (who gets letters)
    # An officer's decision that owes the requester a letter: whether one was queued (None: no letter due).
    letter_sent: bool | None = None
    matches_by_store: dict[str, int] | None = None  # a dry run's count, store by store

    @property
    def needs_attention(self) -> bool:
        return self.status in (S.NEEDS_REVIEW, S.AWAITING_APPROVAL)

    def to_json(self) -> dict[str, Any]:
        """The outcome as `requests reject --json` prints it (docs/json.md)."""
        return {"reference": self.reference, "status": self.status, "tenant": self.tenant,
                "regulation": self.regulation, "reason_code": self.reason_code, "reason": self.reason,
                "rows_erased": self.rows_erased, "match_count": self.match_count, "replies": list(self.replies),
                "notes": list(self.notes), "letter_sent": self.letter_sent}


@dataclass
class PollResult:
    source: str
    fetched: int = 0
    duplicates: int = 0
    locked: bool = False
    dry_run: bool = False
    outcomes: list[RequestOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    quarantined: int = 0  # messages that could not be recorded normally; filed for review
    sent: int = 0
    deferred: int = 0
    parked: int = 0

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems) or self.parked > 0 or any(o.needs_attention for o in self.outcomes)

    def summary(self) -> str:
        if self.locked:
            return "poll: another `erasure poll` is running; this one did nothing"
        counts = Counter(o.status for o in self.outcomes)
        states = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items())) or "nothing to do"
        prefix = "poll (dry run)" if self.dry_run else "poll"
        return (
            f"{prefix}: {self.fetched} new message(s), {self.duplicates} already recorded"
            + (f", {self.quarantined} quarantined for review" if self.quarantined else "")
            + f"; requests: {states}; "
            f"replies: {self.sent} sent, {self.deferred} deferred, {self.parked} parked; {len(self.problems)} problem(s)"
        )


@dataclass(frozen=True)
class TenantChange:
    """What an approval did to a request's tenant, and so to whom its letters go."""

    from_tenant: str | None
    to_tenant: str | None
    overridden: bool = False
    letters_to: str | None = None

    @property
    def notes(self) -> tuple[str, ...]:
        if not self.overridden:
            return ()
        if self.letters_to is None:
            return ((f"no letter will be sent: tenant {self.to_tenant!r} has no contact address "
                     f"(set contact = \"...\" in its [[tenants]] block, or list a full address in its senders); "
                     f"tenant {self.from_tenant!r}'s requester is not told about {self.to_tenant!r}'s data"),)
        return ((f"letters go to {self.letters_to} (tenant {self.to_tenant!r}'s contact), "
                 f"not to tenant {self.from_tenant!r}'s requester"),)


@dataclass(frozen=True)
class HoldRemoval:
    """`holds remove`: the hold as released, and what became of the requests it was holding."""

    hold: holds.HoldView
    released: tuple[RequestOutcome, ...] = ()  # went on at once (classified again, or their erasure resumed)
    still_held: tuple[str, ...] = ()  # references another active hold still covers
    problems: tuple[str, ...] = ()  # released, but the next step failed for now; the next poll retries it

    @property
    def needs_attention(self) -> bool:
        return bool(self.problems) or any(o.needs_attention for o in self.released)


@dataclass(frozen=True)
class ApprovalPreview:
    """`requests approve --dry-run`: what would be erased, and what the officer should know."""

    result: Counted
    notes: tuple[str, ...] = ()


class Desk:
    """The privacy desk: intake, decisions and erasure over one config and state database."""

    def __init__(
        self,
        config: Config,
        state: State,
        *,
        stores: Stores | None = None,
        renderer: TemplateRenderer | None = None,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.config = config
        self.state = state
        self._stores = stores
        self.renderer = renderer or TemplateRenderer(
            config.path(config.templates.directory) if config.templates.directory else None
        )
        self.now = now
        self._owned_state: State | None = None

    @classmethod
    def open(cls, config: Config, **kwargs: Any) -> Desk:
        """The one handle on an installation: owns its state database and (opened on first
        use) its view stores, and closes them; use as ``with Desk.open(config) as desk:``."""
        state = open_state(config.state.url, base_dir=config.base_dir)
        try:
            desk = cls(config, state, **kwargs)
        except BaseException:
            state.close()
            raise
        desk._owned_state = state
        return desk

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def find(self, reference: str) -> RequestDetail:
        """One request by reference (or numeric id) as `requests show` reads it; RequestNotFoundError if none."""
        return show_request(self.state, reference, today=self.today(), time_zone=self.config.policy.time_zone,
                            descriptions={s.name: s.description for s in self.config.stores},
                            keys=self.config.audit_keys)

    # ------------------------------------------------------------ helpers

    @property
    def stores(self) -> Stores:
        """Every configured view store ([[stores]], or the one [store]), each opened on first use."""
        if self._stores is None:
            self._stores = Stores.from_config(self.config)
        return self._stores

    def close(self) -> None:
        """Close the view stores, and the state database when ``Desk.open`` opened it."""
        if self._stores is not None:
            self._stores.close()
        if self._owned_state is not None:
            self._owned_state.close()
            self._owned_state = None

    def _key(self) -> bytes:
        return self.config.audit_key()

    def _hmac(self, tenant: str | None, viewer_id: str) -> str:
        return audit.viewer_hmac(self._key(), tenant or "", viewer_id)

    def today(self) -> dt.date:
        """Today in the office time zone: deadlines are office-local dates."""
        return received_date(self.now(), self.config.policy)

    def _get(self, session: Session, reference: str) -> ErasureRequest:
        """The request by reference (or id), row-locked for the decision about to be taken."""
        request = session.scalar(
            select(ErasureRequest).where(ErasureRequest.reference == reference).with_for_update()
        )
        if request is None and reference.isdigit():
            request = session.get(ErasureRequest, int(reference), with_for_update=True)
        if request is None:
            raise RequestNotFoundError(f"no request {reference!r}; see `erasure requests list`")
        return request

    @staticmethod
    def outcome(request: ErasureRequest) -> RequestOutcome:
        return RequestOutcome(
            reference=request.reference or str(request.id),
            status=request.status,
            tenant=request.tenant,
            regulation=request.regulation,
            reason_code=request.reason_code,
            reason=request.reason,
            rows_erased=request.rows_erased,
            match_count=request.match_count,
            replies=tuple(r.kind for r in request.replies),
        )

    def _reply(self, session: Session, request: ErasureRequest, kind: str | None,
               **extra: object) -> OutboxMessage | None:
        """Queue the reply ``kind``; None when there is none or the requester may not be answered."""
        if kind is None:
            return None
        return queue_reply(session, self.config, request, ReplySpec(kind, dict(extra)), self.renderer, now=self.now())

    def _acknowledge_at_intake(self, session: Session, request: ErasureRequest) -> None:
        if acknowledgement_due(self.config.policy.acknowledge, at_intake=True, status=request.status, replies_so_far=0):
            self._reply(session, request, "acknowledgement")

    def acknowledge_if_due(self, request_id: int) -> None:
        """At the end of a run: acknowledge a request that is still open and has heard nothing."""
        with self.state.session() as session:
            request = session.get(ErasureRequest, request_id)
            if request is None or self._answers_our_reply(session, (request.thread_refs or "").split(), request.message_id):
                return
            said = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.request_id == request_id)
            ) or 0
            if acknowledgement_due(self.config.policy.acknowledge, at_intake=False, status=request.status,
                                   replies_so_far=said):
                self._reply(session, request, "acknowledgement")

    @staticmethod
    def _without_ids(request: ErasureRequest, text: str, more: Iterable[str] = ()) -> str:
        """Free text about to enter the audit trail or a letter, with the request's raw ids masked.

        Defence in depth: parse problems never quote ids, but reasons also come
        from store errors and officers' words.
        """
        ids = [s.viewer_id for s in request.subjects if s.viewer_id is not None]
        return audit.without_viewer_ids(text, [*ids, *more])

    def _new_request(
        self,
        session: Session,
        *,
        channel: str,
        decision: Decision,
        kind: str,
        received_at: dt.datetime,
        requester: str | None,
        subject_line: str = "",
        message_id: str | None = None,
        thread_refs: str | None = None,
        actor: str = audit.SYSTEM,
        audit_data: dict[str, object] | None = None,
        controller_received_on: dt.date | None = None,
    ) -> ErasureRequest:
        now = self.now()
        decision, dropped = self._capped(decision)
        dates = request_dates(decision.regulation, received_at, self.config.policy,
                              controller_received_on=controller_received_on)
        deadlines = dates.deadlines
        # Header values are normalised here as well as by the columns' guard, so
        # the request, its audit event and any reply built from it agree.
        refs = [r for r in (valid_message_id(t) for t in (thread_refs or "").split()) if r is not None]
        request = ErasureRequest(
            channel=channel,
            status=S.RECEIVED,
            planned=decision.outcome,
            kind=kind,
            regulation=decision.regulation,
            tenant=decision.tenant,
            requester=storable(requester, ADDRESS_LEN),
            reply_allowed=decision.reply_to is not None,
            subject_line=storable(subject_line, HEADER_LEN) or "",
            message_id=valid_message_id(message_id),
            thread_refs=" ".join(refs) or None,
            reason_code=decision.reason_code,
            reason=storable(audit.without_viewer_ids(decision.reason, decision.viewer_ids), multiline=True),
            received_at=received_at,
            acknowledge_by=deadlines.acknowledge_by,
            due_on=dates.due_on,
            controller_due_on=dates.controller_due_on,
            created_at=now,
            updated_at=now,
        )
        if decision.outcome != "ignore":
            key_version = self.config.audit.key_version
            for i, viewer_id in enumerate(decision.viewer_ids):
                request.subjects.append(
                    Subject(position=i, viewer_id=viewer_id, viewer_hmac=self._hmac(decision.tenant, viewer_id),
                            key_version=key_version)
                )
        session.add(request)
        session.flush()
        request.reference = f"ER-{received_at.year}-{request.id:06d}"
        audit.record(
            session, "received", actor=actor, request=request, now=now,
            data={"channel": channel, "received_on": received_date(received_at, self.config.policy).isoformat(),
                  "viewer_ids": len(request.subjects), "regulation": request.regulation,
                  "due": request.due_on.isoformat(), **({"viewer_ids_not_stored": dropped} if dropped else {}),
                  **({"controller_received_on": controller_received_on.isoformat(),
                      "controller_due": str(request.controller_due_on)} if controller_received_on else {}),
                  **{k: storable(v, HEADER_LEN) if isinstance(v, str) else v for k, v in (audit_data or {}).items()}},
        )
        return request

    def _capped(self, decision: Decision) -> tuple[Decision, int]:
        """The decision with at most ``policy.max_viewer_ids`` ids, and how many were left out.

        What a message names is not what the state database must hold: one
        unauthenticated 11 MB message once stored a million raw ids. Whatever the
        parser returned, no request stores more than the cap, raw or hashed;
        the rest are only counted (in the `received` event and the reason), and
        such a request always goes to review, so nothing is erased on a part of
        what was asked. Up to the cap the raw ids are kept, even for an unknown
        sender, because an officer may approve the request naming its tenant.
        """
        cap = self.config.policy.max_viewer_ids
        named = len(decision.viewer_ids)
        if named <= cap:
            return decision, 0
        reason = (f"the request names {named} viewer ids; only the first {cap} were kept "
                  "(policy.max_viewer_ids); ask the requester to split it")
        outcome = decision.outcome if decision.outcome == "ignore" else "review"
        return dataclasses.replace(
            decision, viewer_ids=decision.viewer_ids[:cap], outcome=outcome,
            reason_code=decision.reason_code if outcome == "ignore" else "too_many_viewer_ids",
            reason=decision.reason if outcome == "ignore" else reason,
        ), named - cap

    # ------------------------------------------------------------ intake

    def _decision_for(self, incoming: IncomingMessage) -> tuple[Decision, ParsedMessage | None]:
        if incoming.raw is None:
            return (
                Decision(
                    outcome="review", reason_code="message_too_large",
                    reason=f"the message is {incoming.ref.size} bytes, over mailbox.max_message_bytes; it was not read",
                    tenant=None, regulation=self.config.policy.default_regulation, viewer_ids=(), reply_to=None,
                ),
                None,
            )
        # In a worker process with a time and memory budget: one hostile message
        # goes to review instead of holding the poll (and its lock) hostage.
        policy = self.config.policy
        parsed = parse_within_budget(
            incoming.raw,
            ParseBudget(timeout_seconds=policy.parse_timeout_seconds, memory_mb=policy.parse_memory_mb),
            max_viewer_id_length=self.config.policy.max_viewer_id_length,
            max_viewer_ids=self.config.policy.max_viewer_ids,
            max_attachment_bytes=self.config.policy.max_attachment_bytes,
            own_addresses=(self.config.delivery.from_address,),
        )
        return decide(parsed, self.config), parsed

    @staticmethod
    def _answers_our_reply(session: Session, references: Iterable[str], message_id: str | None) -> bool:
        """True when the mail answers one of our own letters (its References name one).

        Such mail is never acknowledged: an acknowledgement of a reply to our
        letter is how two machines start writing to each other. It is still
        read: naming no id it goes to a person (``reply_to_our_reply``);
        naming ids it is a follow-up, decided like any request, and only
        letters that carry a decision (completion, rejection) are sent.
        """
        refs = [r[:255] for r in references if r != message_id]
        return bool(refs) and session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.message_id.in_(refs)).limit(1)
        ) is not None

    def _controller_receipt(self, decision: Decision, parsed: ParsedMessage | None,
                            received_at: dt.datetime) -> tuple[Decision, dt.date | None]:
        """The controller's receipt date the message states, unless it lies after our own receipt.

        The parser has no clock, so this check is here: a date after the day the
        mail reached us is a typo or worse, and a request that would have been
        erased goes to review instead of running on a guessed deadline.
        """
        stated = parsed.controller_received_on if parsed is not None else None
        if stated is None:
            return decision, None
        problem = controller_receipt_problem(stated, received_date(received_at, self.config.policy))
        if problem is None:
            return decision, stated
        if decision.outcome == "erase":
            decision = dataclasses.replace(
                decision, outcome="review", reason_code="received_on_future",
                reason=f"{REASONS['received_on_future']} ({problem})",
            )
        return decision, None

    def intake(self, source_name: str, incoming: IncomingMessage) -> tuple[int | None, str, bool]:
        """Record one message as a request (one transaction). Returns (request id, destination, duplicate).

        A message already in the ledger, under this key or as the same bytes
        under another key (a UIDVALIDITY change), is not taken again.
        """
        ref = incoming.ref
        body_sha = hashlib.sha256(incoming.raw).hexdigest() if incoming.raw is not None else None
        with self.state.session() as session:
            taken = ledger.already_taken(session, source_name, ref, body_sha, self.now())
            if taken is not None:
                request_id, destination = taken
                return request_id, destination, True
            decision, parsed = self._decision_for(incoming)
            original = self._asked_for_these(session, parsed, decision) if parsed is not None else None
            if original is not None:
                self._add_information(session, original, decision, audit_data={
                    "source": source_name, "message_key": ref.key, "size": ref.size, "body_sha256": body_sha})
                ledger.record(session, source_name, ref, message_id=valid_message_id(parsed.message_id),  # type: ignore[union-attr]
                              body_sha=body_sha, request_id=original.id, destination="processed", now=self.now())
                log.info("intake %s: the information asked for in %s", ref.key, original.reference)
                return original.id, "processed", False
            follows_ours = parsed is not None and self._answers_our_reply(session, parsed.references, parsed.message_id)
            if follows_ours and decision.reason_code == "no_viewer_id":
                # A reply to our reply that names no ids is conversation, not a new
                # request: a person reads it, and we do not answer (no reply loop).
                decision = dataclasses.replace(
                    decision, reason_code="reply_to_our_reply",
                    reason="A reply to one of our own messages, naming no viewer id; a person reads it.", reply_to=None,
                )
            received_at = receipt_time(ref.internal_date, self.now())
            decision, controller_received_on = self._controller_receipt(decision, parsed, received_at)
            request = self._new_request(
                session,
                channel=Channel.EMAIL,
                decision=decision,
                kind=parsed.kind if parsed else "other",
                received_at=received_at,
                requester=parsed.from_address if parsed else None,
                subject_line=parsed.subject if parsed else "",
                message_id=parsed.message_id if parsed else None,
                thread_refs=" ".join(parsed.references) if parsed and parsed.references else None,
                audit_data={"source": source_name, "message_key": ref.key, "size": ref.size, "body_sha256": body_sha,
                            "from": parsed.from_address if parsed else None,
                            **({"forwarded": True} if parsed and parsed.forwarded else {}),
                            # A stated receipt date that was not used (after ours): kept for the officer.
                            **({"controller_received_on_refused": parsed.controller_received_on.isoformat()}
                               if parsed and parsed.controller_received_on and controller_received_on is None else {})},
                controller_received_on=controller_received_on,
            )
            if not follows_ours:
                self._acknowledge_at_intake(session, request)
            if parsed is not None:
                self._answer_direct_requester(session, request, direct_reply(parsed, self.config), follows_ours)
            destination = "processed" if request.planned == "erase" else "review"  # after the id cap
            # Logs carry references and reason codes, never viewer ids or message text.
            log.info("intake %s: %s from %s as %s (%s)", ref.key, request.reference, request.requester or "-",
                     request.planned, request.reason_code)
            ledger.record(session, source_name, ref,
                          message_id=valid_message_id(parsed.message_id) if parsed else None,
                          body_sha=body_sha, request_id=request.id, destination=destination, now=self.now())
            return request.id, destination, False

    def _answer_direct_requester(self, session: Session, request: ErasureRequest, verdict: DirectReply | None,
                                 follows_ours: bool) -> None:
        """Mail from a sender no tenant lists: queue the one data-free letter, or record why not.

        ``verify.direct_reply`` says whether the sender may get it at all; here
        are the two rules that need the state database: never in answer to one
        of our own letters (no loop), and at most once per address in any
        spelling within ``policy.direct_reply_window_days``. Either way the
        trail says so: the outbox's ``reply_queued`` (kind ``direct_request``),
        or a ``direct_reply_withheld`` event with its reason code. The request
        itself goes to review as before; this letter never answers it.
        """
        if verdict is None:
            return
        code, now = verdict.code, self.now()
        if verdict.to is not None:
            if follows_ours:
                code = "direct_reply_thread"
            elif not direct_reply_due(last_queued_to(session, verdict.to, "direct_request"), now,
                                      self.config.policy.direct_reply_window_days):
                code = "direct_reply_recent"
            elif queue_reply(session, self.config, request, ReplySpec("direct_request"), self.renderer, now=now,
                             data_free_to=verdict.to) is not None:
                return
            else:  # the From address could not be stored as written (longer than the column)
                code = "bad_from"
        audit.record(session, "direct_reply_withheld", request=request, reason=REASONS[code],
                     data={"reason_code": code}, now=now)

    def _asked_for_these(self, session: Session, parsed: ParsedMessage, decision: Decision) -> ErasureRequest | None:
        """The open request whose `needs_information` letter this mail answers with the ids, or None.

        A customer who replies to our letter with the missing ids is completing
        that request, not opening a second one. Only a reply that would itself
        be erased unattended (authenticated tenant, plain erasure wording, ids,
        nothing doubtful) qualifies, from the same tenant, to a request still in
        review for a reason we asked the customer about.
        """
        if decision.outcome != "erase" or not decision.viewer_ids or decision.tenant is None:
            return None
        if len(decision.viewer_ids) > self.config.policy.max_viewer_ids:
            return None
        refs = [r for r in parsed.references if r != parsed.message_id][:MAX_THREAD_LOOKUP]
        if not refs:
            return None
        request_id = session.scalar(
            select(OutboxMessage.request_id)
            .where(OutboxMessage.message_id.in_(refs), OutboxMessage.kind == "needs_information")
            .order_by(OutboxMessage.id.desc()).limit(1)
        )
        if request_id is None:
            return None
        request = session.get(ErasureRequest, request_id, with_for_update=True)
        if (request is None or request.status != S.NEEDS_REVIEW or request.tenant != decision.tenant
                or request.reason_code not in ASK_FOR_INFORMATION):
            return None
        return request

    def _add_information(self, session: Session, request: ErasureRequest, decision: Decision,
                         audit_data: dict[str, object]) -> None:
        """Add the ids a reply supplied to the request that asked for them, and send it round again."""
        known = {s.viewer_id for s in request.subjects}
        position = len(request.subjects)
        added = 0
        for viewer_id in decision.viewer_ids:
            if viewer_id in known:
                continue
            request.subjects.append(Subject(position=position, viewer_id=viewer_id,
                                            viewer_hmac=self._hmac(request.tenant, viewer_id),
                                            key_version=self.config.audit.key_version))
            position += 1
            added += 1
        request.planned, request.kind = "erase", "erasure"
        request.reason_code, request.reason = decision.reason_code, decision.reason
        transitions.move(session, request, "information_received", now=self.now(),
                         data={"viewer_ids": added, **{k: storable(v, HEADER_LEN) if isinstance(v, str) else v
                                                        for k, v in audit_data.items()}})

    # ------------------------------------------------------------ advancing

    def advance(self, request_id: int) -> RequestOutcome:
        """Move one request as far as it can go now (a temporary store failure is raised)."""
        if self._classify_id(request_id) == S.ERASING:
            failed = self._erase_group([request_id])
            if request_id in failed:
                raise failed[request_id]
        return self._outcome_of(request_id)

    def _outcome_of(self, request_id: int) -> RequestOutcome:
        with self.state.session() as session:
            outcome = self.outcome(session.get(ErasureRequest, request_id))  # type: ignore[arg-type]
        log.info("request %s: %s%s", outcome.reference, outcome.status,
                 f", {outcome.rows_erased} rows erased" if outcome.rows_erased is not None else "")
        return outcome

    def _classify_id(self, request_id: int) -> str:
        """Classify a `received` request (one transaction); returns the status it is in afterwards."""
        with self.state.session() as session:
            request = session.get(ErasureRequest, request_id, with_for_update=True)
            if request is None:
                raise RequestNotFoundError(f"no request with id {request_id}")
            if request.status == S.RECEIVED:
                self._classify(session, request)
            return request.status

    def _classify(self, session: Session, request: ErasureRequest) -> None:
        now = self.now()
        request.updated_at = now
        if request.planned == "ignore":
            transitions.move(session, request, "ignore", reason=request.reason,
                             data={"reason_code": request.reason_code}, now=now)
            return
        if request.planned == "review":
            transitions.move(session, request, "review", reason=request.reason,
                             data={"reason_code": request.reason_code}, now=now)
            if reply_after("needs_review", reason_code=request.reason_code):
                self._reply(session, request, "needs_information", missing=customer_text(request.reason_code))
            return
        audit.record(session, "verified", request=request, data={"tenant": request.tenant}, now=now)
        self._route_for_approval(session, request)

    def _target(self, request: ErasureRequest) -> Target:
        """What the store counts and erases: the request's ids, less those an officer refused."""
        tenant = self.config.tenant(request.tenant or "")
        ids = tuple(s.viewer_id for s in request.subjects if s.viewer_id is not None and not s.refused)
        return Target(key=request.reference or str(request.id), environments=tenant.environments, viewer_ids=ids)

    def _route_for_approval(self, session: Session, request: ErasureRequest) -> None:
        """Large or policy-held erasures wait for an officer; the rest go ahead; a legal hold stops it first."""
        cover = self._cover(session, request)
        if cover:
            self._stop_for_hold(session, request, cover)
            return
        policy = self.config.policy
        counted = self.stores.count(self._target(request))
        # The approval threshold is about views in every store; child rows (events) ride along.
        views = counted.views
        count = counted.total
        request.match_count = count
        if not policy.auto_approve or views > policy.auto_approve_max_views:
            why = ("policy.auto_approve is off" if not policy.auto_approve
                   else f"{views} views match, over policy.auto_approve_max_views = {policy.auto_approve_max_views}")
            transitions.move(session, request, "hold", reason=why,
                             data={"match_count": count, "views": views, "by_store": counted.to_json()}, now=self.now())
        else:
            self._start_erasing(session, request, counted)

    def _cover(self, session: Session, request: ErasureRequest) -> holds.Cover:
        """The active legal holds that cover (or may cover) the request; see erasure.holds."""
        return holds.cover_of(session, request, self.config.audit_keys)

    def _cover_ids(self, tenant: str | None, viewer_ids: Sequence[str]) -> holds.Cover:
        """The holds that would cover a request of ``tenant`` for these ids (`poll --dry-run`: nothing stored)."""
        with self.state.session() as session:
            if tenant is None or not holds.active_holds(session, tenant):
                return holds.Cover()
            version = self.config.audit.key_version
            subjects = [holds.SubjectKey(v, self._hmac(tenant, v), version) for v in viewer_ids]
            return holds.covering(session, tenant, subjects, self.config.audit_keys)

    def _stop_for_hold(self, session: Session, request: ErasureRequest, cover: holds.Cover) -> None:
        """A legal hold covers the request: it waits in `awaiting_approval`, naming the hold(s).

        No letter: the customer is not told about a hold by the tool (the
        acknowledgement an open request gets says nothing of it). ``held_from``
        says where it stopped, so removing the hold sends it back there.
        """
        held_from = request.status
        request.held_from = held_from
        request.reason_code = holds.REASON_CODE
        request.reason = self._without_ids(request, cover.reason())
        transitions.move(session, request, "legal_hold", reason=request.reason, now=self.now(),
                         data={"reason_code": holds.REASON_CODE, "holds": cover.refs, "from": held_from})

    def _start_erasing(self, session: Session, request: ErasureRequest, counted: Counted) -> None:
        """The one way into `erasing`: the rows that match now are recorded first, store by store.

        Each store's count is what that store's verification falls back on
        when the store's own transaction committed but the state's did not (a
        crash between stores, or a concurrent poll that finished first): the
        retry then erases nothing, and without the count the requester would be
        told no data was found (``progress.record_erased``).
        """
        request.match_count = counted.total
        progress.start(request, counted, self.stores.names)
        # From `received` on its own; from review or approval only by an officer's approval.
        step = "start_erasing" if request.status == S.RECEIVED else "approve"
        transitions.move(session, request, step, data={"match_count": counted.total, "by_store": counted.to_json()},
                         now=self.now())

    def _erase_group(self, request_ids: Sequence[int]) -> dict[int, ErasureError]:
        """Erase `erasing` requests store by store, several per store transaction (group commit).

        Each store is its own transaction, so each store's verdict is recorded
        on its own: done (that store's rows are verified), not verifiable (->
        needs_review, naming the store), or a temporary failure, returned so
        the caller can report it; that store's part stays pending and the next
        run retries it while the other stores go ahead. A request completes in
        the transaction that verifies its last store.
        """
        if not request_ids:
            return {}
        failed: dict[int, ErasureError] = {}
        with self.state.session() as session:
            # The last look before the stores: a hold added since the request started
            # erasing (an erasure that failed for now and waits for the next run) stops it.
            going: list[int] = []
            for request_id in request_ids:
                request = session.get(ErasureRequest, request_id, with_for_update=True)
                if request is None or request.status != S.ERASING:
                    continue
                if cover := self._cover(session, request):
                    self._stop_for_hold(session, request, cover)
                    continue
                progress.ensure_rows(request, self.stores.names)
                if progress.all_verified(request, self.stores.names):
                    # Nothing left to erase anywhere (a store was taken out of the config
                    # while this request waited on it): it completes on what was verified.
                    self._complete(session, request)
                    continue
                going.append(request_id)
        request_ids = going
        for name in self.stores.names:
            with self.state.session() as session:
                pending = progress.pending_requests(session, name, request_ids)
                targets = [self._target(session.get(ErasureRequest, i)) for i in pending]  # type: ignore[arg-type]
            if not pending:
                continue
            try:
                results: list[ErasureResult | ErasureError] = list(self.stores[name].erase_many(targets))
            except ErasureError as exc:  # the store could not even be opened
                results = [exc] * len(pending)
            for request_id, result in zip(pending, results, strict=True):
                if isinstance(result, TemporaryError):
                    self._store_failed(request_id, name, result)
                    failed.setdefault(request_id, result)
                elif isinstance(result, ErasureError):
                    self._erasure_not_verified(request_id, result, store=name)
                else:
                    self._store_erased(request_id, name, result)
        return failed

    def _locked(self, session: Session, request_id: int, status: str) -> ErasureRequest | None:
        """The request, row-locked, if it is still in ``status``.

        An officer's `approve` and a cron `poll` may finish the same erasure at
        the same moment; whichever commits second finds the state moved on and
        does nothing, so no request is completed (or answered) twice.
        """
        request = session.get(ErasureRequest, request_id, with_for_update=True)
        return request if request is not None and request.status == status else None

    def _store_label(self, name: str) -> str:
        description = self.stores.description(name)
        return f"{name} ({description})" if description else name

    def _erasure_not_verified(self, request_id: int, exc: ErasureError, *, store: str | None = None) -> None:
        with self.state.session() as session:
            request = self._locked(session, request_id, S.ERASING)
            if request is None:
                return
            request.reason_code = "erasure_not_verified"
            where = f"view store {self._store_label(store)}: " if store and len(self.stores.names) > 1 else ""
            request.reason = self._without_ids(request, f"{where}{exc}")
            transitions.move(session, request, "not_verified", reason=request.reason,
                             data={"reason_code": "erasure_not_verified", "store": store}, now=self.now())

    def _store_failed(self, request_id: int, store: str, exc: ErasureError) -> None:
        """The store was unreachable or busy: its part stays pending, and how long it has failed is kept."""
        with self.state.session() as session:
            request = self._locked(session, request_id, S.ERASING)
            if request is None:
                return
            row = progress.rows_by_store(request).get(store)
            if row is not None:
                progress.record_failure(row, self._without_ids(request, str(exc)), self.now())

    def _store_erased(self, request_id: int, store: str, result: ErasureResult) -> None:
        """One store erased and verified: its evidence goes on the record, and the request completes
        in this same transaction when it was the last store."""
        with self.state.session() as session:
            request = self._locked(session, request_id, S.ERASING)
            if request is None:
                self._erased_after_completion(session, request_id, store, result)
                return
            row = progress.rows_by_store(request)[store]
            if row.state == progress.VERIFIED:  # a concurrent run verified this store first
                self._erased_twice(session, request, store, result)
                return
            counts, total, resumed = progress.record_erased(row, result, self.now())
            audit.record(session, "erased", request=request, now=self.now(),
                         data={"store": store, "description": self.stores.description(store),
                               "counts": counts, "total": total, "resumed": resumed})
            if progress.all_verified(request, self.stores.names):
                self._complete(session, request)

    def _complete(self, session: Session, request: ErasureRequest) -> None:
        """Every store is verified: the letter gives the evidence store by store."""
        parts = progress.outcomes(request, self.stores.names,
                                  {n: self.stores.description(n) for n in self.stores.names})
        request.rows_erased = sum(p.total for p in parts)
        refused = self._refused_for_letter(request)
        if request.rows_erased:
            counts = self._letter_counts(parts)
            told = self._notify_recipients(session, request, counts)
            self._reply(session, request, reply_after("completed"), counts=counts,
                        stores=[p.to_json() for p in parts], total_rows=request.rows_erased,
                        total_rows_words=number_in_words(request.rows_erased), recipients_notified=told,
                        refused=refused)
            response = "completed"
        else:
            self._reply(session, request, reply_after("no_data_found"), refused=refused)
            response = "no_data_found"
        transitions.move(session, request, "complete", response=response,
                         data={"response": response, "by_store": {p.store: p.total for p in parts}}, now=self.now())

    def _letter_counts(self, parts: Sequence[progress.StoreOutcome]) -> dict[str, int]:
        """Rows per table for the letter; with several stores, each line names its store."""
        if len(parts) == 1:
            return dict(parts[0].counts)
        return {f"{p.description or p.store}: {table}": n for p in parts for table, n in p.counts.items()}

    def _notify_recipients(self, session: Session, request: ErasureRequest, counts: dict[str, int]) -> list[str]:
        """Queue a notice to each of the tenant's recipients (GDPR Art. 19, 28(4); CCPA 7022(b)-(c)); their names.

        In the completion's own transaction, so a completion is never recorded
        without its notices, nor notices without the completion. Only a
        `completed` erasure is told: after `no_data_found` nothing was erased,
        so there is no erasure to pass on, and a notice would only tell third
        parties that someone asked about a viewer we hold nothing on. The
        notice names the reference and the counts, never a viewer id, the
        tenant or the requester. Each notice has a Message-ID fixed by request
        and recipient, so queueing again (a resumed run) finds it and adds none.
        """
        recipients = self.config.tenant(request.tenant or "").recipients
        if not recipients:
            return []
        context = dict(counts=counts, total_rows=request.rows_erased or 0, completed_on=format_date(self.today()))
        told = []
        for recipient in recipients:
            row = queue_recipient_notice(
                session, self.config, request, recipient.name, recipient.address,
                notice_context(self.config, request, recipient.name, **context), self.renderer, now=self.now(),
            )
            told.append({"name": recipient.name.strip(), "address": recipient.address, "message_id": row.message_id})
        # Addresses too: they are the recipients' business addresses, not the data
        # subject's data, and the trail must show where each notice went even
        # after the config changes.
        audit.record(session, "recipients_notified", request=request, now=self.now(), data={"recipients": told})
        return [t["name"] for t in told]

    def _erased_after_completion(self, session: Session, request_id: int, store: str, result: ErasureResult) -> None:
        """Two runs erased one request at once (an officer's approve and a poll) and the
        one that deleted the rows committed its state second: its rows still go on
        the record, so the trail shows every deletion and the count is not zero."""
        if not result.total:
            return
        request = session.get(ErasureRequest, request_id, with_for_update=True)
        if request is None or request.status != S.COMPLETED:
            return
        self._erased_twice(session, request, store, result)

    def _erased_twice(self, session: Session, request: ErasureRequest, store: str, result: ErasureResult) -> None:
        if not result.total:
            return
        audit.record(session, "erased", request=request, now=self.now(),
                     data={"store": store, "counts": dict(result.counts), "total": result.total, "resumed": False,
                           "after_completion": request.status == S.COMPLETED})
        row = progress.rows_by_store(request).get(store)
        if row is not None:
            progress.add_late_evidence(row, dict(result.counts))
        if request.status == S.COMPLETED:
            request.rows_erased = sum(int(r.rows_erased or 0) for r in request.stores)
            request.updated_at = self.now()

    def open_request_ids(self, statuses: Iterable[str] = (S.RECEIVED, S.ERASING)) -> list[int]:
        with self.state.session() as session:
            return list(session.scalars(
                select(ErasureRequest.id).where(ErasureRequest.status.in_(list(statuses))).order_by(ErasureRequest.id)
            ))

    # ------------------------------------------------------------ the mailbox pass

    def poll(self, source: MailSource, *, dry_run: bool = False,
             lock_held: Callable[[], bool] = lambda: True) -> PollResult:
        """One pass: take new mail, move every request as far as it can go.

        Delivery of the outbox is a separate call (``deliver``), so a broken SMTP
        server never stops intake. ``lock_held`` is asked before each step that
        another host's poll must not also take (a message's intake, classifying,
        erasing); once the poll lock is lost, the pass stops (exit 75).
        """
        self._lock_held = lock_held
        result = PollResult(source=source.name, dry_run=dry_run)
        if dry_run:
            return self._dry_run(source, source.pending(), result)
        started = time.monotonic()
        try:
            self._poll(source, result)
        except Exception as exc:
            # Whatever stopped the pass, `erasure status` says so (and when), not only "never".
            ledger.note_poll(self.state, source.name, success=False, now=self.now(),
                             problems=result.problems + [f"the poll stopped: {type(exc).__name__}: {exc}"])
            raise
        ledger.note_poll(self.state, source.name, success=True, problems=result.problems, now=self.now(),
                         seconds=round(time.monotonic() - started, 3), fetched=result.fetched)
        return result

    def _poll(self, source: MailSource, result: PollResult) -> None:
        refs = source.pending()
        ledger.note_uidvalidity(self.state, source.name, refs, self.now())
        known = ledger.recorded(self.state, source.name, refs)
        # Recorded but not yet moved (a crash between commit and move): only move.
        for ref in refs:
            row = known.get(ledger_key(ref))
            if row is not None:
                result.duplicates += 1
                self._move(source, ref, row.destination, result)
        new_refs = [r for r in refs if ledger_key(r) not in known]
        touched: list[int] = []
        for incoming in source.fetch(new_refs):
            self._check_lock()
            result.fetched += 1
            try:
                request_id, destination, duplicate = self.intake(source.name, incoming)
            except TemporaryError:
                # The database is down or busy, or the parser's worker cannot start:
                # nothing is wrong with this message. Leave it where it is, exit 75, retry later.
                raise
            except Exception as exc:  # noqa: BLE001 - one message must never block the mailbox
                request_id, destination, duplicate = self._quarantine(source.name, incoming, exc, result), "review", False
            if duplicate:
                result.duplicates += 1
                result.fetched -= 1
            elif request_id is not None:
                touched.append(request_id)
            self._move(source, incoming.ref, destination, result)
        self._check_lock()
        released = self.release_unblocked()
        for request_id in dict.fromkeys(touched + self.open_request_ids([S.RECEIVED])):
            try:
                self._classify_id(request_id)
            except (StateUnavailableError, MailboxUnavailableError):
                raise
            except ErasureError as exc:  # e.g. the store is unreachable for the count: stays `received`
                result.problems.append(f"request {request_id}: will retry: {exc}")
            except SQLAlchemyError as exc:  # one request the state database refuses must not stop the others
                log.error("request %s: could not be classified: %s", request_id, type(exc).__name__)
                result.problems.append(f"request {request_id}: could not be classified ({type(exc).__name__}); "
                                       "it stays received and is retried on the next poll")
        erasing = self.open_request_ids([S.ERASING])
        self._check_lock()
        for request_id, error in self._erase_group(erasing).items():
            result.problems.append(f"request {request_id}: erasure will be retried: {error}")
        for request_id in touched:
            self.acknowledge_if_due(request_id)
        for request_id in dict.fromkeys(touched + released + erasing):
            result.outcomes.append(self._outcome_of(request_id))

    def _check_lock(self) -> None:
        if not getattr(self, "_lock_held", lambda: True)():
            raise StateUnavailableError(
                "lost the poll lock (its connection to the state database broke): stopping this pass so that "
                "no other host's poll takes the same step; the next run carries on"
            )

    def _quarantine(self, source_name: str, incoming: IncomingMessage, exc: Exception, result: PollResult) -> int | None:
        """File a message that could not be recorded: a minimal record, for review, and go on.

        In a fresh transaction the message gets its ledger row and a request in
        `needs_review` with reason code ``record_failed`` naming the error class
        (nothing read from the message is stored: no header, no id, no text).
        The caller then moves it to the review folder, so it can never block
        the mailbox. If even that record fails, it is moved unrecorded and the
        poll reports the problem (exit 1); the officer finds it in the folder.
        """
        ref = incoming.ref
        error = type(exc).__name__
        log.error("intake %s: could not be recorded (%s); quarantined for review", ref.key, error)
        result.quarantined += 1
        body_sha = hashlib.sha256(incoming.raw).hexdigest() if incoming.raw is not None else None
        decision = Decision(
            outcome="review", reason_code="record_failed",
            reason=f"the message could not be recorded ({error}); read it in the review folder "
                   f"(mailbox key {storable(ref.key, HEADER_LEN)})",
            tenant=None, regulation=self.config.policy.default_regulation, viewer_ids=(), reply_to=None,
        )
        try:
            with self.state.session() as session:
                request = self._new_request(
                    session, channel=Channel.EMAIL, decision=decision, kind="other",
                    received_at=receipt_time(ref.internal_date, self.now()), requester=None,
                    audit_data={"source": source_name, "message_key": ref.key, "size": ref.size,
                                "body_sha256": body_sha, "error": error},
                )
                ledger.record(session, source_name, ref, message_id=None, body_sha=body_sha,
                              request_id=request.id, destination="review", now=self.now())
                result.problems.append(f"message {storable(ref.key, HEADER_LEN)}: could not be recorded ({error}); "
                                       f"filed for review as {request.reference}")
                return request.id
        except TemporaryError:
            raise
        except Exception as again:  # noqa: BLE001 - still never a traceback, never a blocked mailbox
            log.error("intake %s: not even a minimal record could be made (%s); moved to review unrecorded",
                      ref.key, type(again).__name__)
            result.problems.append(
                f"message {storable(ref.key, HEADER_LEN)}: could not be recorded ({error}, then {type(again).__name__}); "
                "moved to the review folder unrecorded: read it there and enter it with `erasure requests add`"
            )
            return None

    def _move(self, source: MailSource, ref: MessageRef, destination: str, result: PollResult) -> None:
        try:
            source.move(ref, destination)  # type: ignore[arg-type]
        except TemporaryError:
            raise
        except ErasureError as exc:
            result.problems.append(f"message {ref.key}: recorded, but could not be moved to {destination}: {exc}")
            return
        ledger.mark_moved(self.state, source.name, ledger_key(ref))

    def _dry_run(self, source: MailSource, refs: list[MessageRef], result: PollResult) -> PollResult:
        known = ledger.recorded(self.state, source.name, refs)
        for incoming in source.fetch([r for r in refs if ledger_key(r) not in known]):
            result.fetched += 1
            decision, _parsed = self._decision_for(incoming)
            matches = None
            by_store = None
            status = {"erase": S.ERASING, "review": S.NEEDS_REVIEW, "ignore": S.IGNORED}[decision.outcome]
            reason_code, reason = decision.reason_code, audit.without_viewer_ids(decision.reason, decision.viewer_ids)
            cover = self._cover_ids(decision.tenant, decision.viewer_ids) if decision.outcome == "erase" else None
            if cover:
                status, reason_code = S.AWAITING_APPROVAL, holds.REASON_CODE
                reason = audit.without_viewer_ids(cover.reason(), decision.viewer_ids)
            elif decision.outcome == "erase" and decision.tenant:
                tenant = self.config.tenant(decision.tenant)
                counted = self.stores.count(Target(incoming.ref.key, tenant.environments, decision.viewer_ids))
                matches = counted.total
                by_store = {name: result.total for name, result in counted.by_store.items()}
                views = counted.views
                policy = self.config.policy
                if not policy.auto_approve or views > policy.auto_approve_max_views:
                    status = S.AWAITING_APPROVAL
            result.outcomes.append(RequestOutcome(
                reference=f"(message {incoming.ref.key})", status=status, tenant=decision.tenant,
                regulation=decision.regulation, reason_code=reason_code, reason=reason,
                rows_erased=None, match_count=matches, matches_by_store=by_store,
            ))
        return result

    # ------------------------------------------------------------ the register's retention

    def prune_records(self, *, dry_run: bool = False) -> list[str]:
        """The register's retention on this desk's clock; see ``retention.prune_records``."""
        return retention.prune_records(self.state, self.config.policy, now=self.now(), dry_run=dry_run)

    # ------------------------------------------------------------ officer decisions

    def add_manual(
        self,
        *,
        tenant: str,
        viewer_ids: Sequence[str],
        regulation: str | None = None,
        requester: str | None = None,
        actor: str | None = None,
        received_at: dt.datetime | None = None,
        received_on: dt.date | None = None,
        channel: str | None = None,
        controller_received_on: dt.date | None = None,
    ) -> RequestOutcome:
        """Intake from a letter, a phone call or a web form, checked like mail is.

        ``received_on``: the office-local day the letter, call or form reached
        us, so the request is dated on receipt, not on the day it was typed in
        (deadlines.receipt_time). ``channel``: how it came (``ManualChannel``),
        stored as ``manual:<how>``. ``controller_received_on``: the day the
        request reached the controller (the customer, in the processor role),
        when the officer knows it; the due date then follows the controller's
        deadline (deadlines.request_dates).
        """
        how = self._manual_channel(channel)
        ids = self._manual_ids(tenant, viewer_ids)
        policy = self.config.policy
        self._manual_receipt(received_on)
        received_at = received_at or receipt_time(None, self.now(), received_on=received_on, policy=policy)
        if controller_received_on is not None:
            problem = controller_receipt_problem(controller_received_on, received_date(received_at, policy))
            if problem is not None:
                raise UsageError(f"--controller-received-on: {problem}")
        decision = Decision(
            outcome="erase", reason_code="manual", reason="entered by an officer",
            tenant=tenant, regulation=(regulation or self.config.policy.default_regulation),  # type: ignore[arg-type]
            viewer_ids=tuple(ids), reply_to=requester,
        )
        with self.state.session() as session:
            request = self._new_request(
                session, channel=how.stored if how else Channel.MANUAL, decision=decision, kind="erasure",
                received_at=received_at, requester=requester, actor=actor or default_actor(),
                audit_data={"requester": requester, **({"received_on_given": True} if received_on else {})},
                controller_received_on=controller_received_on,
            )
            self._acknowledge_at_intake(session, request)
            request_id = request.id
        outcome = self.advance(request_id)
        self.acknowledge_if_due(request_id)
        return self._outcome_of(request_id) if outcome.status in S.OPEN else outcome

    @staticmethod
    def _manual_channel(channel: str | None) -> ManualChannel | None:
        if channel is None:
            return None
        try:
            return ManualChannel(channel)
        except ValueError:
            raise UsageError(f"--channel {channel!r}: use one of {', '.join(ManualChannel)}") from None

    def _manual_receipt(self, received_on: dt.date | None) -> None:
        problem = receipt_date_problem(received_on, self.today()) if received_on is not None else None
        if problem is not None:
            raise UsageError(f"--received-on: {problem}")

    def _manual_ids(self, tenant: str, viewer_ids: Sequence[str]) -> tuple[str, ...]:
        """Typed ids pass the same checks as ids read from mail."""
        self.config.tenant(tenant)  # a ConfigError naming the known tenants
        ids, problems = clean_viewer_ids(
            viewer_ids, max_length=self.config.policy.max_viewer_id_length,
            max_count=self.config.policy.max_viewer_ids,
        )
        if problems:
            raise InvalidTransitionError("; ".join(p.text for p in problems) + "; correct the viewer ids and try again")
        if not ids:
            raise InvalidTransitionError("no viewer id given; pass --viewer-id at least once")
        return tuple(ids)

    def preview_manual(self, *, tenant: str, viewer_ids: Sequence[str], channel: str | None = None,
                       received_on: dt.date | None = None) -> Counted:
        """`requests add --dry-run`: the same checks as adding, then what the request would erase; nothing is recorded."""
        self._manual_channel(channel)
        self._manual_receipt(received_on)
        ids = self._manual_ids(tenant, viewer_ids)
        return self.stores.count(Target("(dry run)", self.config.tenant(tenant).environments, ids))

    def preview_approval(self, reference: str, *, tenant: str | None = None, override_tenant: bool = False,
                         reason: str | None = None) -> ApprovalPreview:
        """`requests approve --dry-run`: the same checks as approving, then a count; nothing changes."""
        with self.state.sessions() as session:  # never committed
            request = self._get(session, reference)
            plan = self._prepare_approval(request, tenant, override_tenant=override_tenant, reason=reason)
            result = self.stores.count(self._target(request))
            session.rollback()
        return ApprovalPreview(result=result, notes=plan.notes)

    def _prepare_approval(self, request: ErasureRequest, tenant: str | None, *, override_tenant: bool = False,
                          reason: str | None = None) -> TenantChange:
        """Check an approval and apply its tenant change to ``request`` (the caller commits or rolls back).

        A request that already has a tenant was verified for it (its sender is
        listed there): erasing another tenant's views on its word is the
        cross-tenant mistake this tool exists to prevent, so it needs an
        explicit override with a reason, and the letters then go to the new
        tenant's own contact, never to the other tenant's requester. A legal hold
        that covers the request (under its tenant after this change) refuses it:
        an officer's approval does not lift a hold; removing the hold does.
        """
        transitions.check(request, "approve")
        if override_tenant and tenant is None:
            raise InvalidTransitionError("--override-tenant needs --tenant NAME: the tenant to approve the request for")
        change = TenantChange(from_tenant=request.tenant, to_tenant=request.tenant)
        if tenant is not None:
            target = self.config.tenant(tenant)
            if request.tenant is not None and tenant != request.tenant:
                if not override_tenant:
                    raise TenantOverrideRequiredError(
                        f"{request.reference} was verified for tenant {request.tenant!r} (its sender is listed there); "
                        f"approving it for {tenant!r} erases {tenant!r}'s views on another tenant's word. If that is "
                        f"right, repeat with --override-tenant --reason \"why\"; otherwise leave out --tenant"
                    )
                if not (reason or "").strip():
                    raise TenantOverrideRequiredError(
                        "--override-tenant needs --reason: why this request is about another tenant's viewers "
                        "(kept in the audit trail)"
                    )
                change = self._move_to_tenant(request, target)
            elif tenant != request.tenant:
                change = TenantChange(from_tenant=None, to_tenant=tenant)
                request.tenant = tenant
                self._rehash(request)
        if request.tenant is None:
            raise InvalidTransitionError(f"{request.reference} has no tenant; approve it with --tenant NAME")
        if not any(s.viewer_id for s in request.subjects if not s.refused):
            raise InvalidTransitionError(
                f"{request.reference} names no viewer id; reject it, or add a new request with `erasure requests add`"
            )
        session = object_session(request)  # the caller's: it loaded and locked the request
        assert session is not None
        cover = self._cover(session, request)
        if cover:
            raise RequestHeldError(
                f"{request.reference} is held by {self._without_ids(request, cover.describe())}. An approval does "
                f"not lift a hold: remove it first with `erasure holds remove {cover.refs[0]} --reason \"why it ended\"`; "
                "the request then goes on by itself"
            )
        return change

    def _rehash(self, request: ErasureRequest) -> None:
        """Viewer-id HMACs are scoped by tenant: recompute them for the request's (new) tenant.

        Under the current key, so the key version is the current one too: a
        review case recorded before a key rotation would otherwise carry a new
        HMAC under its old version, which neither `audit find` nor a legal hold's
        comparison (erasure.holds.covers) could match.
        """
        for subject in request.subjects:
            if subject.viewer_id is not None:
                subject.viewer_hmac = self._hmac(request.tenant, subject.viewer_id)
                subject.key_version = self.config.audit.key_version

    def _move_to_tenant(self, request: ErasureRequest, target: Tenant) -> TenantChange:
        """Override: the request now belongs to ``target``; letters go to its configured contact, or nowhere."""
        change = TenantChange(from_tenant=request.tenant, to_tenant=target.name, overridden=True,
                              letters_to=target.reply_address)
        request.tenant = target.name
        self._rehash(request)
        request.requester = change.letters_to
        request.reply_allowed = change.letters_to is not None
        # The letters must not thread into (or quote) the other tenant's conversation,
        # which their new recipient never saw: no In-Reply-To, References or subject.
        request.message_id = None
        request.thread_refs = None
        request.subject_line = ""
        return change

    def approve(self, reference: str, *, actor: str | None = None, tenant: str | None = None,
                override_tenant: bool = False, reason: str | None = None) -> RequestOutcome:
        """An officer lets a held or reviewed erasure go ahead (optionally naming the tenant).

        ``tenant`` sets the tenant of a request that has none (an unknown
        sender in review); naming a tenant other than the one a request was
        verified for also needs ``override_tenant`` and a ``reason``.
        """
        actor = actor or default_actor()
        with self.state.session() as session:
            request = self._get(session, reference)
            change = self._prepare_approval(request, tenant, override_tenant=override_tenant, reason=reason)
            if change.overridden:
                audit.record(session, "tenant_overridden", actor=actor, request=request, reason=reason, now=self.now(),
                             data={"from_tenant": change.from_tenant, "to_tenant": change.to_tenant,
                                   "reason": reason, "actor": actor, "letters_to": change.letters_to})
            request.kind = "erasure"
            request.approved_by = actor
            request.held_from = None
            audit.record(session, "approved", actor=actor, request=request, now=self.now(),
                         reason=reason if reason and reason.strip() else None,
                         data={"tenant": request.tenant})
            # Counted again: a review case was never counted, and an awaiting one
            # may have been counted under another tenant or days ago.
            self._start_erasing(session, request, self.stores.count(self._target(request)))
            request_id = request.id
        outcome = self.advance(request_id)
        return dataclasses.replace(outcome, notes=change.notes)

    def reject(self, reference: str, *, reason: str | None = None, code: str | None = None,
               viewer_ids: Sequence[str] = (), actor: str | None = None) -> RequestOutcome:
        """Refuse a request, or only the ``viewer_ids`` named, on a stated ground (erasure.refusals).

        The requester is told the legal basis, the officer's reasons and the
        right to complain (Art. 12(4), 7022(f)). With ``viewer_ids`` (exact
        matches of ids the request names) only those are refused: they are
        left out of counting and erasing, and the rest of the request goes on
        (an officer approves it, or it proceeds as it would have); the final
        letter lists them. Refusing the last ids left is a full rejection. A
        request whose sender may not be answered gets no letter, and the
        outcome says so: the officer must tell the requester another way.
        """
        actor = actor or default_actor()
        with self.state.session() as session:
            request = self._get(session, reference)
            transitions.check(request, "reject")
            refusal = refusal_for(code, request.regulation, reason=reason)
            words = self._without_ids(request, reason.strip()) if reason and reason.strip() else None
            if viewer_ids:
                subjects = self._refusable(request, viewer_ids)
            else:
                subjects = [s for s in request.subjects if not s.refused]
            left = [s for s in request.subjects if not s.refused and s not in subjects]
            if subjects:
                for subject in subjects:
                    subject.refusal_code, subject.refusal_reason = refusal.code, words
                audit.record(session, "refused", actor=actor, request=request, reason=words, now=self.now(),
                             data={"code": refusal.code, "citation": refusal.citation(request.regulation),
                                   "count": len(subjects), "viewer_hmacs": [s.viewer_hmac for s in subjects],
                                   "partial": bool(left)})
            if left:
                request.updated_at = self.now()
                unanswerable = () if request.reply_allowed and request.requester else (
                    f"no letter will be sent for {request.reference}: it came from a sender we may not answer; tell "
                    "the requester of the refused ids and the grounds another way",)
                return dataclasses.replace(self.outcome(request),
                                           notes=(self._partial_note(request, subjects, left), *unanswerable))
            return self._reject_whole(session, request, refusal, words, actor)

    def _refusable(self, request: ErasureRequest, viewer_ids: Sequence[str]) -> list[Subject]:
        """The subjects an officer's ``--viewer-id`` values name: exact matches, not yet refused, before erasure."""
        if request.status == S.ERASING:
            raise InvalidTransitionError(
                f"{request.reference} is erasing: its ids can no longer be refused one by one; reject the whole "
                "request, or wait for it to complete")
        by_id = {s.viewer_id: s for s in request.subjects if s.viewer_id is not None}
        wanted = list(dict.fromkeys(viewer_ids))
        unknown = [v for v in wanted if v not in by_id]
        if unknown:
            raise InvalidTransitionError(
                f"--viewer-id {', '.join(repr(v) for v in unknown)}: not among the ids {request.reference} names "
                "(matched exactly, case and spaces included); `erasure requests show` lists them masked")
        again = [v for v in wanted if by_id[v].refused]
        if again:
            raise InvalidTransitionError(
                f"--viewer-id {', '.join(repr(v) for v in again)}: already refused in {request.reference}")
        return [by_id[v] for v in wanted]

    @staticmethod
    def _partial_note(request: ErasureRequest, refused: Sequence[Subject], left: Sequence[Subject]) -> str:
        then = {S.RECEIVED: "they are processed on the next `erasure poll`",
                S.NEEDS_REVIEW: f"approve them with `erasure requests approve {request.reference}`",
                S.AWAITING_APPROVAL: f"approve them with `erasure requests approve {request.reference}`"}
        return (f"refused {len(refused)} of the {len(request.subjects)} viewer ids; the other {len(left)} go ahead: "
                f"{then.get(request.status, 'they stay in the request')}. The final letter lists the refused ids")

    def _reject_whole(self, session: Session, request: ErasureRequest, refusal: Refusal, words: str | None,
                      actor: str) -> RequestOutcome:
        """Close the request as rejected: one letter with every ground given (earlier partial ones included)."""
        codes = [refusal.code, *(s.refusal_code for s in request.subjects)]
        basis = letter_basis(codes, request.regulation)
        said = list(dict.fromkeys(t for t in [words, *(s.refusal_reason for s in request.subjects)] if t))
        reasons = "\n\n".join(said) or basis  # the `reasons` a template has always shown: never blank
        letter = self._reply(session, request, reply_after("rejected"), reasons=reasons, basis=basis,
                             refused=self._refused_for_letter(request))
        request.refusal_code = refusal.code
        request.reason = words or f"{refusal.code} ({refusal.citation(request.regulation)})"
        transitions.move(session, request, "reject", actor=actor, reason=request.reason, now=self.now(),
                         data={"code": refusal.code})
        notes: tuple[str, ...] = ()
        if letter is None:
            notes = (f"no letter was sent: {request.reference} came from a sender we may not answer (unknown, "
                     "unauthenticated or automatic mail, or no address); tell the requester of the refusal and "
                     "its grounds another way",)
        return dataclasses.replace(self.outcome(request), notes=notes, letter_sent=letter is not None)

    def _refused_for_letter(self, request: ErasureRequest) -> list[dict[str, str]]:
        """The refused ids as a letter lists them: masked, with the basis and the officer's words."""
        return [{"id": audit.masked_viewer_id(s.viewer_id, s.viewer_hmac),
                 "basis": letter_basis([s.refusal_code], request.regulation),
                 "reason": s.refusal_reason or ""}
                for s in request.subjects if s.refused]

    def cancel(self, reference: str, *, reason: str, actor: str | None = None) -> RequestOutcome:
        """Withdraw a request before erasure has begun (the requester withdrew it, or it was entered twice)."""
        if not reason.strip():
            raise InvalidTransitionError("a cancellation needs --reason, for the record")
        actor = actor or default_actor()
        with self.state.session() as session:
            request = self._get(session, reference)
            transitions.check(request, "cancel")
            reason = self._without_ids(request, reason)
            request.reason = reason
            transitions.move(session, request, "cancel", actor=actor, reason=reason, now=self.now())
            return self.outcome(request)

    def record_acknowledgement(self, reference: str, *, note: str, actor: str | None = None) -> RequestOutcome:
        """An officer confirmed receipt by other means (CCPA 7021(a)): recorded, so `status` stops flagging it.

        For requests the tool may not answer itself (an unknown or unauthenticated
        sender, a direct requester): the officer writes by hand, or phones, and
        says here how. Nothing is sent and the request does not move.
        """
        if not note.strip():
            raise InvalidTransitionError("an acknowledgement needs --note: how and when receipt was confirmed")
        actor = actor or default_actor()
        with self.state.session() as session:
            request = self._get(session, reference)
            if request.status not in S.OPEN:
                raise InvalidTransitionError(f"{request.reference} is already {request.status}; "
                                             "only open requests need an acknowledgement")
            audit.record(session, ACKNOWLEDGED_BY_OFFICER, actor=actor, request=request, now=self.now(),
                         reason=self._without_ids(request, note), data={"actor": actor})
            return self.outcome(request)

    def extend(self, reference: str, *, reason: str, actor: str | None = None) -> RequestOutcome:
        """Extend the deadline once, with reasons, before the original deadline passes."""
        if not reason.strip():
            raise InvalidTransitionError("an extension needs --reason: the requester is told why")
        actor = actor or default_actor()
        with self.state.session() as session:
            request = self._get(session, reference)
            transitions.check(request, "extend")
            granted = Deadlines(received_on=received_date(request.received_at, self.config.policy),
                                acknowledge_by=request.acknowledge_by, respond_by=request.due_on,
                                extended_to=request.extended_to)
            if not extension_allowed(granted, self.today()):
                if request.extended_to is not None:
                    raise InvalidTransitionError(f"{request.reference} was already extended to {request.extended_to}")
                raise InvalidTransitionError(
                    f"{request.reference} was due on {request.due_on}; an extension must be given before the deadline"
                )
            reason = self._without_ids(request, reason)
            extended = deadlines_for(request.regulation, request.received_at, self.config.policy, extended=True)  # type: ignore[arg-type]
            request.extended_to = extended.extended_to
            transitions.move(session, request, "extend", actor=actor, reason=reason, now=self.now(),
                             data={"due": request.due_on.isoformat(), "extended_to": str(request.extended_to)})
            self._reply(session, request, reply_after("extended"), reasons=reason, new_due_date=format_date(request.due))
            return self.outcome(request)

    # ------------------------------------------------------------ legal holds

    def add_hold(self, *, tenant: str, viewer_id: str | None = None, reason: str,
                 actor: str | None = None) -> holds.HoldView:
        """Put a tenant, or one of its viewers, under legal hold (see erasure.holds).

        Nothing moves now: each request the hold covers stops at its next step
        towards the store (classification, approval, or an erasure still to run).
        """
        with self.state.session() as session:
            added = holds.add_hold(session, self.config, tenant=tenant, viewer_id=viewer_id, reason=reason,
                                   actor=actor or default_actor(), now=self.now())
        return next(h for h in self.list_holds(include_released=True) if h.id == added.id)

    def list_holds(self, *, include_released: bool = False) -> list[holds.HoldView]:
        """`holds list`: the active holds (or all), each with the open requests it covers."""
        with self.state.session() as session:
            return holds.list_holds(session, self.config.audit_keys, include_released=include_released)

    def remove_hold(self, reference: str, *, reason: str, actor: str | None = None) -> HoldRemoval:
        """Release a legal hold; the requests it alone was holding go on at once.

        In the hold's own transaction each of them goes back where the hold
        stopped it (`received`, to be classified again: count, threshold, erase;
        or `erasing`, its erasure resumed), so no request ever waits on a hold
        that is gone. Then each is advanced, as an approval is; one the store
        cannot take right now stays where it is and the next poll retries it.
        """
        actor = actor or default_actor()
        with self.state.session() as session:
            hold = holds.remove_hold(session, reference, reason=reason, actor=actor, now=self.now())
            released, still = self._release_unblocked(
                session, actor=actor, why=f"legal hold {hold.ref} was removed by {actor}: {hold.release_reason}")
        outcomes: list[RequestOutcome] = []
        problems: list[str] = []
        for request_id in released:
            try:
                outcomes.append(self.advance(request_id))
            except StateUnavailableError:
                raise
            except ErasureError as exc:
                outcome = self._outcome_of(request_id)
                problems.append(f"{outcome.reference}: released, but {exc}; the next `erasure poll` retries it")
                outcomes.append(outcome)
        return HoldRemoval(hold=hold, released=tuple(outcomes), still_held=tuple(still), problems=tuple(problems))

    def release_unblocked(self) -> list[int]:
        """On every poll: held requests no active hold covers any more go on (e.g. a hold that
        could not be checked until its retired key was configured); returns their ids."""
        with self.state.session() as session:
            released, _ = self._release_unblocked(session, actor=audit.SYSTEM,
                                                  why="no active legal hold covers it any more")
        return released

    def _release_unblocked(self, session: Session, *, actor: str, why: str) -> tuple[list[int], list[str]]:
        """Send each held request that no active hold covers back where its hold stopped it.

        Returns (ids released, references still held). A request still covered
        by another hold stays, its reason naming the holds that remain.
        """
        held = session.scalars(
            select(ErasureRequest)
            .where(ErasureRequest.status == S.AWAITING_APPROVAL, ErasureRequest.reason_code == holds.REASON_CODE)
            .order_by(ErasureRequest.id).with_for_update()
        ).all()
        released: list[int] = []
        still: list[str] = []
        now = self.now()
        for request in held:
            cover = self._cover(session, request)
            if cover:
                request.reason = self._without_ids(request, cover.reason())
                still.append(request.reference or str(request.id))
                continue
            step = "resume_erasing" if request.held_from == S.ERASING else "release"
            request.held_from = None
            request.reason_code = "hold_released"
            request.reason = self._without_ids(request, f"{why}; the request went on")
            transitions.move(session, request, step, actor=actor, reason=request.reason, now=now,
                             data={"reason_code": "hold_released"})
            released.append(request.id)
        return released, still
