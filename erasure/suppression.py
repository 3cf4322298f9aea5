"""The suppression sweep: keep deleting views that reappear under erased viewer ids.

A customer's player SDK may keep sending views under a viewer id that was
erased. By default those are new data (the packaged ``completed`` reply says
so). With ``policy.suppression = true`` the viewer ids of completed requests,
kept only as HMACs (``subjects.viewer_hmac``), become a suppression list
(CCPA 11 CCR 7022(e): deleted ids may be kept so the data stays deleted), and
``erasure suppression sweep`` deletes every view that arrived under them since.

The list holds no raw ids, so the sweep works the other way round: it reads
each tenant's distinct viewer ids from the store, HMACs them with every key
version still available, and erases the ones on the list through
``ViewStore.erase`` (exact, tenant-scoped, atomic, verified). The raw ids it
finds live only in memory for the length of the run; the audit event records
counts, never ids. A legal hold (``erasure.holds``) keeps what it covers: a
tenant under a tenant-wide hold is not swept, and ids a per-viewer hold covers
(or may cover: its key is not available) are left in the store.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from erasure import audit, holds
from erasure.config import Config, Tenant
from erasure.errors import ConfigError, ErasureError
from erasure.models import ErasureRequest, LegalHold, RequestStatus, Subject
from erasure.state import State, open_state
from erasure.store import Target, ViewStore, batches

#: Raw ids per ``ViewStore.erase`` call: each call is one store transaction.
ERASE_BATCH = 10_000
#: Rows fetched per round trip while streaming ids from the store or the state database.
SCAN_CHUNK = 5_000

#: Request responses whose viewer ids were erased, hence are on the list.
ERASED_RESPONSES = ("completed", "no_data_found")

Progress = Callable[[str, str, int], None]


@dataclass(frozen=True)
class TenantSweep:
    """One tenant's part of a sweep: rows per table, and how many listed ids were found in the store."""

    counts: dict[str, int]
    ids_matched: int
    ids_listed: int
    held: tuple[str, ...] = ()  # legal holds (LH-...) that kept views of this tenant from the sweep
    ids_held: int = 0  # erased ids whose views a hold kept (all of them under a tenant-wide hold)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class SweepResult:
    """What one sweep deleted (or, on a dry run, would delete), per tenant and table.

    ``unchecked`` counts listed subjects per key version whose key is not
    available (a rotated key missing from ``audit.retired_keys``): their ids
    could not be recognised, so their views were not looked for.
    """

    tenants: dict[str, TenantSweep]
    dry_run: bool
    unchecked: dict[int, int] = field(default_factory=dict)
    store: str = "default"

    @property
    def total(self) -> int:
        return sum(t.total for t in self.tenants.values())

    @property
    def ids_matched(self) -> int:
        return sum(t.ids_matched for t in self.tenants.values())

    def audit_data(self) -> dict[str, Any]:
        """The audit event's details: counts only, never an id or an HMAC."""
        return {
            "store": self.store,
            "dry_run": self.dry_run,
            "ids_matched": self.ids_matched,
            "total": self.total,
            "tenants": {
                name: {"counts": dict(t.counts), "ids_matched": t.ids_matched, "ids_listed": t.ids_listed,
                       **({"held_by": list(t.held), "ids_held": t.ids_held} if t.held else {})}
                for name, t in self.tenants.items()
            },
            "unchecked_key_versions": {str(v): n for v, n in sorted(self.unchecked.items())},
        }


# ---------------------------------------------------------------- the list


def require_enabled(config: Config) -> None:
    """Refuse unless the operator opted in: the default reply promises the opposite."""
    if not config.policy.suppression:
        raise ConfigError(
            "policy.suppression is off, so views that reappear under erased viewer ids are kept as new data "
            "(as the packaged `completed` reply says); to delete them instead, set `suppression = true` under "
            "[policy] and adjust the reply template to match"
        )


def suppression_list(state: State, tenants: list[str]) -> dict[str, set[tuple[int, str]]]:
    """(key_version, viewer_hmac) of every subject of a completed request, per tenant.

    Only requests that were carried out count: a rejected, cancelled or still
    open request never made its ids "erased", so they are not suppressed; nor
    are the ids an officer refused in a request that was otherwise carried out.
    """
    listed: dict[str, set[tuple[int, str]]] = {t: set() for t in tenants}
    stmt = (
        sa.select(ErasureRequest.tenant, Subject.key_version, Subject.viewer_hmac)
        .join(Subject, Subject.request_id == ErasureRequest.id)
        .where(
            ErasureRequest.status == RequestStatus.COMPLETED,
            ErasureRequest.response.in_(ERASED_RESPONSES),
            ErasureRequest.tenant.in_(tenants),
            Subject.refusal_code.is_(None),
        )
        .execution_options(yield_per=SCAN_CHUNK)
    )
    with state.session() as session:
        for tenant, version, digest in session.execute(stmt):
            if tenant is not None:
                listed[tenant].add((version, digest))
    return listed


def matches(
    viewer_ids: Iterator[str], tenant: str, listed: set[tuple[int, str]], keys: dict[int, bytes]
) -> Iterator[str]:
    """The ids whose HMAC, under any key version on the list, is on the list (pure)."""
    versions = sorted({v for v, _ in listed} & set(keys))
    for viewer_id in viewer_ids:
        if any((v, audit.viewer_hmac(keys[v], tenant, viewer_id)) in listed for v in versions):
            yield viewer_id


# ---------------------------------------------------------------- the sweep


def sweep(
    config: Config,
    state: State,
    store: ViewStore,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    batch_size: int = ERASE_BATCH,
) -> SweepResult:
    """Delete every view, in every tenant, under a viewer id that tenant had erased.

    Each batch of ids is one ``ViewStore.erase`` (its own store transaction),
    so a sweep that stops half way leaves whole batches done and a re-run
    finishes the job. One ``suppression_sweep`` audit event records what was
    deleted, also when the sweep stopped early (then the error is re-raised).
    ``progress(tenant, what, n)`` reports ids scanned and rows deleted so far.
    """
    require_enabled(config)
    if batch_size < 1:
        raise ConfigError("batch_size must be at least 1")
    keys = config.audit_keys()
    store.check_schema()  # a config that does not match the store fails here, naming the key to fix
    tenants: list[Tenant] = list(config.tenants)
    listed = suppression_list(state, [t.name for t in tenants])
    unchecked: dict[int, int] = defaultdict(int)
    for entries in listed.values():
        for version, _ in entries:
            if version not in keys:
                unchecked[version] += 1
    with state.session() as session:
        active = holds.active_holds(session)
    done: dict[str, TenantSweep] = {}
    try:
        for tenant in tenants:
            done[tenant.name] = _sweep_tenant(store, tenant, listed[tenant.name], keys, dry_run=dry_run,
                                              progress=progress, batch_size=batch_size, done=done,
                                              holds_on=[h for h in active if h.tenant == tenant.name],
                                              key_version=config.audit.key_version)
    except ErasureError as exc:
        if not dry_run:
            partial = SweepResult(tenants=done, dry_run=False, unchecked=dict(unchecked), store=store.settings.name)
            _record(state, partial, now=now, reason=f"stopped early ({type(exc).__name__}); what is listed was deleted, re-run to finish")
        raise
    result = SweepResult(tenants=done, dry_run=dry_run, unchecked=dict(unchecked), store=store.settings.name)
    if not dry_run:
        _record(state, result, now=now, reason="policy.suppression: views under viewer ids erased earlier")
    return result


def _sweep_tenant(
    store: ViewStore,
    tenant: Tenant,
    listed: set[tuple[int, str]],
    keys: dict[int, bytes],
    *,
    dry_run: bool,
    progress: Progress | None,
    batch_size: int,
    done: dict[str, TenantSweep],
    holds_on: list[LegalHold] | None = None,
    key_version: int = 1,
) -> TenantSweep:
    counts = {name: 0 for name in store.table_names}
    if not listed:
        return TenantSweep(counts=counts, ids_matched=0, ids_listed=0)
    tenant_wide = [h for h in holds_on or [] if h.viewer_hmac is None]
    if tenant_wide:  # nothing of the tenant may go: not even read
        return TenantSweep(counts=counts, ids_matched=0, ids_listed=len(listed),
                           held=tuple(holds.hold_ref(h.id) for h in tenant_wide), ids_held=len(listed))
    scanned = 0

    def counted(ids: Iterator[str]) -> Iterator[str]:
        nonlocal scanned
        for viewer_id in ids:
            scanned += 1
            if progress is not None and scanned % SCAN_CHUNK == 0:
                progress(tenant.name, "viewer ids scanned", scanned)
            yield viewer_id

    # Bounded by the list's size: only ids the tenant had erased are kept.
    found = list(dict.fromkeys(matches(counted(store.distinct_viewer_ids(tenant.environments)), tenant.name, listed, keys)))
    held_by: set[str] = set()
    if holds_on:
        kept = []
        for viewer_id in found:
            ids = [holds.SubjectKey(viewer_id, audit.viewer_hmac(keys[key_version], tenant.name, viewer_id), key_version)]
            covering = [h for h in holds_on if holds.covers(h, tenant.name, ids, keys) is not False]
            held_by.update(holds.hold_ref(h.id) for h in covering)
            if not covering:
                kept.append(viewer_id)
        ids_held, found = len(found) - len(kept), kept
    else:
        ids_held = 0
    try:
        for batch in batches(found, batch_size):
            target = Target(key=f"suppression:{tenant.name}", environments=tenant.environments, viewer_ids=tuple(batch))
            result = store.count(target) if dry_run else store.erase(target)
            for name, n in result.counts.items():
                counts[name] += n
            if progress is not None:
                progress(tenant.name, "rows would be deleted" if dry_run else "rows deleted", sum(counts.values()))
    except ErasureError:
        done[tenant.name] = TenantSweep(counts=counts, ids_matched=len(found), ids_listed=len(listed),
                                        held=tuple(sorted(held_by)), ids_held=ids_held)
        raise
    return TenantSweep(counts=counts, ids_matched=len(found), ids_listed=len(listed),
                       held=tuple(sorted(held_by)), ids_held=ids_held)


def _record(state: State, result: SweepResult, *, now: dt.datetime | None, reason: str) -> None:
    with state.session() as session:
        audit.record(session, "suppression_sweep", data=result.audit_data(), reason=reason, now=now)


def sweep_configured(
    config: Config, *, dry_run: bool = False, progress: Progress | None = None, now: dt.datetime | None = None
) -> list[SweepResult]:
    """``erasure suppression sweep``: every store in turn (each its own audit event), then close them all.

    Views reappear wherever viewers are recorded, so every system that holds
    viewer data is swept; a store that fails stops the sweep with its error
    (the stores before it are done and recorded; a re-run finishes the job).
    """
    from erasure.store.stores import Stores

    require_enabled(config)
    state = open_state(config.state.url, base_dir=config.base_dir)
    try:
        with Stores.from_config(config) as stores:
            return [sweep(config, state, store, dry_run=dry_run, progress=progress, now=now) for _name, store in stores]
    finally:
        state.close()
