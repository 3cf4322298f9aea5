"""Legal holds: while one is active, nothing it covers is erased.

A hold covers every request of one tenant, or the requests of that tenant that
name one viewer id. It exists because the operator may be told to preserve
data (litigation, a regulator's investigation; GDPR Art. 17(3)(e)) while
erasure requests keep arriving: erasing then would destroy what must be kept.
The workflow asks :func:`cover_of` wherever an erasure could start
(classification, an officer's approval, an erasure that has not run yet) and
routes a covered request to ``awaiting_approval`` with reason ``legal_hold``;
removing the hold lets it go on. The customer is not told about a hold.

A per-viewer hold keeps the viewer id only as its HMAC under the audit key
(``audit.viewer_hmac``, scoped by tenant) with that key's version, like a
request's subjects: holds outlive requests, so the raw id is never stored.
Matching compares HMACs made under the same key version; a subject hashed
under another version is hashed again under the hold's key from its raw id,
which an open request still has. A hold whose key is not available cannot be
compared and counts as covering: a hold that may apply is never ignored.

Here: the pure matching rule (:func:`covers`) and the session operations on
holds (add, remove, list, which holds cover a request), each writing its audit
event in the caller's transaction. Moving requests is ``workflow.Desk``'s.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from erasure import audit
from erasure.config import Config
from erasure.errors import HoldNotFoundError, InvalidTransitionError, UsageError
from erasure.models import ErasureRequest, LegalHold
from erasure.parse import clean_viewer_ids
from erasure.vocabulary import RequestStatus

#: Holds are shown and named as LH-<id>; the bare number is accepted too.
PREFIX = "LH-"

#: The reason code of a request a hold stopped (verify.REASONS, replies.CUSTOMER_TEXTS).
REASON_CODE = "legal_hold"

#: Lazily read audit keys by version (``Config.audit_keys``): only a comparison across
#: key versions needs them, so screens that only read work without the key set.
KeySource = Callable[[], Mapping[int, bytes]]


def hold_ref(hold_id: int) -> str:
    return f"{PREFIX}{hold_id}"


def parse_hold_ref(text: str) -> int | None:
    """``LH-3``, ``lh-3`` or ``3`` -> 3; anything else -> None."""
    value = text.strip()
    if value[: len(PREFIX)].upper() == PREFIX:
        value = value[len(PREFIX):]
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None


class HeldSubject(Protocol):
    """What matching needs of one viewer id a request names (``models.Subject`` has it)."""

    @property
    def viewer_id(self) -> str | None: ...
    @property
    def viewer_hmac(self) -> str: ...
    @property
    def key_version(self) -> int: ...


class HoldLike(Protocol):
    @property
    def tenant(self) -> str: ...
    @property
    def viewer_hmac(self) -> str | None: ...
    @property
    def key_version(self) -> int | None: ...


@dataclass(frozen=True)
class SubjectKey:
    """A viewer id as matching sees it, for ids not (yet) stored as subjects (`poll --dry-run`)."""

    viewer_id: str | None
    viewer_hmac: str
    key_version: int


def covers(hold: HoldLike, tenant: str | None, subjects: Iterable[HeldSubject],
           keys: Mapping[int, bytes]) -> bool | None:
    """Whether ``hold`` covers a request of ``tenant`` naming ``subjects``: True, False, or None
    when it cannot be told (the hold's key version is not in ``keys``); callers treat None as True.

    Tenant first and always: a hold on acme's viewer ``v-1`` never touches globex's
    ``v-1`` (the HMAC is scoped by tenant as well, so the two could not match anyway).
    """
    if tenant is None or hold.tenant != tenant:
        return False
    if hold.viewer_hmac is None:
        return True
    unknown = False
    for subject in subjects:
        if subject.key_version == hold.key_version:
            digest: str | None = subject.viewer_hmac
        elif subject.viewer_id is not None and hold.key_version in keys:
            digest = audit.viewer_hmac(keys[hold.key_version], tenant, subject.viewer_id)  # type: ignore[index]
        else:
            digest = None
        if digest is None:
            unknown = True
        elif hmac.compare_digest(digest, hold.viewer_hmac):
            return True
    return None if unknown else False


def _needs_keys(holds: Sequence[HoldLike], subjects: Sequence[HeldSubject]) -> bool:
    """Only a per-viewer hold and a subject hashed under different key versions need the keys."""
    versions = {h.key_version for h in holds if h.viewer_hmac is not None}
    return any(s.key_version != v for s in subjects for v in versions)


@dataclass(frozen=True)
class HoldView:
    """One hold as the officer reads it; ``holding``: the open requests it covers (active holds)."""

    id: int
    tenant: str
    viewer_hmac: str | None
    key_version: int | None
    reason: str
    actor: str
    created_at: dt.datetime
    released_at: dt.datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None
    holding: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: LegalHold, holding: Iterable[str] = ()) -> HoldView:
        return cls(id=row.id, tenant=row.tenant, viewer_hmac=row.viewer_hmac, key_version=row.key_version,
                   reason=row.reason, actor=row.actor, created_at=row.created_at, released_at=row.released_at,
                   released_by=row.released_by, release_reason=row.release_reason, holding=tuple(holding))

    @property
    def ref(self) -> str:
        return hold_ref(self.id)

    @property
    def active(self) -> bool:
        return self.released_at is None

    @property
    def scope(self) -> str:
        """What it covers, in words; a viewer is shown as the start of its HMAC, as closed subjects are."""
        if self.viewer_hmac is None:
            return f"every request of tenant {self.tenant}"
        return f"viewer {audit.masked_viewer_id(None, self.viewer_hmac)} of tenant {self.tenant}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.ref,
            "tenant": self.tenant,
            "scope": "tenant" if self.viewer_hmac is None else "viewer",
            "viewer_hmac": self.viewer_hmac,
            "key_version": self.key_version,
            "reason": self.reason,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "active": self.active,
            "released_at": self.released_at.isoformat() if self.released_at else None,
            "released_by": self.released_by,
            "release_reason": self.release_reason,
            "holding": list(self.holding),
        }


@dataclass(frozen=True)
class Cover:
    """The active holds that cover one request, and those that may (their key is not available)."""

    holds: tuple[HoldView, ...] = ()
    unchecked: tuple[HoldView, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.holds or self.unchecked)

    @property
    def refs(self) -> list[str]:
        return [h.ref for h in self.holds + self.unchecked]

    def describe(self) -> str:
        """Which hold(s), on what, and why, in one line."""
        parts = [f"legal hold {h.ref} on {h.scope}: {h.reason}" for h in self.holds]
        parts += [f"legal hold {h.ref} on {h.scope} may cover it: it was made under audit key version "
                  f"{h.key_version}, which is not available (list it in audit.retired_keys)" for h in self.unchecked]
        return "; ".join(parts)

    def reason(self) -> str:
        """The request's reason while held: which hold(s), why, and how it ends (for the officer only)."""
        return (f"Held by {self.describe()}. Nothing is erased while a hold is active; when it ends, "
                f"`erasure holds remove {self.refs[0]} --reason ...` lets the request go on.")


# ---------------------------------------------------------------- session operations


def add_hold(session: Session, config: Config, *, tenant: str, viewer_id: str | None = None, reason: str,
             actor: str, now: dt.datetime) -> HoldView:
    """Record a hold (and its `hold_added` event); requests it covers stop wherever an erasure would start."""
    config.tenant(tenant)  # a ConfigError naming the known tenants
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("a legal hold needs --reason: what the data is kept for (a case, a regulator's request); "
                         "it is kept in the audit trail")
    digest: str | None = None
    version: int | None = None
    if viewer_id is not None:
        ids, problems = clean_viewer_ids([viewer_id], max_length=config.policy.max_viewer_id_length)
        if problems or not ids:
            why = "; ".join(p.text for p in problems) or "the viewer id is empty"
            raise UsageError(f"--viewer-id: {why}; give the id exactly as the customer's records have it, "
                             "or leave out --viewer-id to hold every request of the tenant")
        digest = audit.viewer_hmac(config.audit_key(), tenant, ids[0])
        version = config.audit.key_version
        reason = audit.without_viewer_ids(reason, ids)
    row = LegalHold(tenant=tenant, viewer_hmac=digest, key_version=version, reason=reason, actor=actor,
                    created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, "hold_added", actor=actor, tenant=tenant, reason=row.reason, now=now, data=_event_data(row))
    return HoldView.of(row)


def remove_hold(session: Session, reference: str, *, reason: str, actor: str, now: dt.datetime) -> HoldView:
    """Release a hold (and record `hold_removed`); the caller then lets the requests it held go on."""
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("removing a legal hold needs --reason: why it ended (kept in the audit trail)")
    row = _get(session, reference, lock=True)
    if not row.is_active:
        raise InvalidTransitionError(
            f"{hold_ref(row.id)} was already removed on {row.released_at:%Y-%m-%d} by {row.released_by}; "
            "`erasure holds list` shows the active holds"
        )
    row.released_at, row.released_by, row.release_reason = now, actor, reason
    audit.record(session, "hold_removed", actor=actor, tenant=row.tenant, reason=row.release_reason, now=now,
                 data=_event_data(row))
    return HoldView.of(row)


def _event_data(row: LegalHold) -> dict[str, Any]:
    return {"hold": hold_ref(row.id), "scope": "tenant" if row.viewer_hmac is None else "viewer",
            "viewer_hmac": row.viewer_hmac, "key_version": row.key_version}


def _get(session: Session, reference: str, *, lock: bool = False) -> LegalHold:
    hold_id = parse_hold_ref(reference)
    row = session.get(LegalHold, hold_id, with_for_update=lock) if hold_id is not None else None
    if row is None:
        raise HoldNotFoundError(f"no legal hold {reference!r}; `erasure holds list --all` shows every hold with its id (LH-...)")
    return row


def active_holds(session: Session, tenant: str | None = None) -> list[LegalHold]:
    stmt = select(LegalHold).where(LegalHold.released_at.is_(None)).order_by(LegalHold.id)
    if tenant is not None:
        stmt = stmt.where(LegalHold.tenant == tenant)
    return list(session.scalars(stmt))


def covering(session: Session, tenant: str | None, subjects: Sequence[HeldSubject], keys: KeySource) -> Cover:
    """The active holds that cover (or may cover) a request of ``tenant`` naming ``subjects``."""
    if tenant is None:
        return Cover()
    rows = active_holds(session, tenant)
    if not rows:
        return Cover()
    available = keys() if _needs_keys(rows, subjects) else {}
    verdicts = [(row, covers(row, tenant, subjects, available)) for row in rows]
    return Cover(holds=tuple(HoldView.of(r) for r, v in verdicts if v is True),
                 unchecked=tuple(HoldView.of(r) for r, v in verdicts if v is None))


def cover_of(session: Session, request: ErasureRequest, keys: KeySource) -> Cover:
    """The active holds that cover (or may cover) ``request``, under its current tenant."""
    return covering(session, request.tenant, request.subjects, keys)


def list_holds(session: Session, keys: KeySource, *, include_released: bool = False) -> list[HoldView]:
    """Holds in order of creation, each active one with the open requests it covers."""
    stmt = select(LegalHold).order_by(LegalHold.id)
    if not include_released:
        stmt = stmt.where(LegalHold.released_at.is_(None))
    rows = list(session.scalars(stmt))
    active = [r for r in rows if r.is_active]
    tenants = sorted({r.tenant for r in active})
    requests = list(session.scalars(
        select(ErasureRequest).options(selectinload(ErasureRequest.subjects))
        .where(ErasureRequest.tenant.in_(tenants), ErasureRequest.status.in_(list(RequestStatus.OPEN)))
        .order_by(ErasureRequest.id)
    )) if tenants else []
    subjects = [s for r in requests for s in r.subjects]
    available = keys() if _needs_keys(active, subjects) else {}
    return [
        HoldView.of(row, [r.reference or str(r.id) for r in requests
                          if covers(row, r.tenant, r.subjects, available) is not False] if row.is_active else ())
        for row in rows
    ]
