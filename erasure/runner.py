"""Runs that tie the pieces together for cron and the CLI: one poll, watching,
delivering the outbox, the retention purge.

These are the side-effect edges: they open the state database, the mailbox,
the view store and the delivery transport, and make sure each is closed again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import sys
import time
import typing
from pathlib import Path
from typing import Callable

from erasure import audit, retention
from erasure.config import Config, read_secret
from erasure.errors import ConfigError, ErasureError, MailboxError, TemporaryError
from erasure.mailbox import MaildirSource, MailSource
from erasure.notify import DeliveryReport, deliver, parked_after
from erasure.state import State
from erasure.workflow import Desk, PollResult, utcnow

log = logging.getLogger("erasure.runner")

LOCK_NAME = ".erasure-poll.lock"


def lock_path(config: Config) -> Path:
    """One lock per config folder: overlapping cron runs of the same installation exclude each other."""
    return config.base_dir / LOCK_NAME


def open_source(config: Config) -> MailSource:
    """The configured mailbox as a MailSource (the caller closes it), with relative paths
    (``mailbox.path``, ``mailbox.ca_file``) resolved against the config file's folder."""
    m = config.mailbox
    if m.kind == "maildir":
        return MaildirSource(
            config.path(m.path),
            processed_folder=m.processed_folder,
            review_folder=m.review_folder,
            max_message_bytes=m.max_message_bytes,
        )
    from erasure.imap import ImapSource

    if m.ca_file:
        m = dataclasses.replace(m, ca_file=str(config.path(m.ca_file)))
    return ImapSource(m, read_secret(m.password_env, "mailbox.password_env"))


def check_mailbox(config: Config) -> str | None:
    """`erasure init`: connect to an IMAP mailbox as a poll would, so a wrong host, password or
    folder shows at setup rather than at the first cron run; returns what was checked (None for a Maildir).

    Refusals a retry will not fix are ConfigErrors here (exit 2); an unreachable server stays temporary (75).
    """
    if config.mailbox.kind != "imap":
        return None
    from erasure.imap import ImapSource

    try:
        with typing.cast(ImapSource, open_source(config)) as source:
            folders = source.check_folders()
            return f"mailbox: {source.name} ready (folders {', '.join(repr(f) for f in folders)})"
    except MailboxError as exc:
        if isinstance(exc, (TemporaryError, ConfigError)):
            raise
        raise ConfigError(str(exc)) from exc


def deliver_outbox(config: Config, state: State, *, stream=None) -> DeliveryReport:  # type: ignore[no-untyped-def]
    """Send what is due in the outbox through the configured transport."""
    from erasure.delivery import claim_lease, make_transport, retry_delay

    from erasure import digest
    from erasure.notify import TemplateRenderer

    with state.session() as session:  # the run's digest letters first, so they go out with everything else
        digest.combine(session, config, TemplateRenderer(
            config.path(config.templates.directory) if config.templates.directory else None), now=utcnow())
    transport = make_transport(config.delivery, base_dir=config.base_dir, stream=stream or sys.stdout)
    try:
        return deliver(state, transport, now=utcnow, retry_delay=retry_delay, lease=claim_lease(config.delivery))
    finally:
        transport.close()


def poll_once(config: Config, *, dry_run: bool = False) -> PollResult:
    """One cron pass under the poll lock: intake, advance, deliver.

    The lock is the state database's when that is PostgreSQL or MariaDB (so
    hosts sharing it take turns), a file beside the config for SQLite; see
    ``erasure.polllock``. It is taken before the desk opens the database, so
    two hosts never run the schema migrations at once either.
    """
    from erasure.polllock import poll_lock
    from erasure.state import make_engine

    lock_engine = make_engine(config.state.url, base_dir=config.base_dir)
    try:
        with poll_lock(lock_engine, lock_path(config)) as lock:
            if lock is None:
                return PollResult(source=config.mailbox.kind, locked=True)
            with Desk.open(config) as desk:
                try:
                    with desk.state.session() as session:
                        before = audit.head(session)
                    with open_source(config) as source:
                        result = desk.poll(source, dry_run=dry_run, lock_held=lock.still_held)
                    if not dry_run:
                        report = deliver_outbox(config, desk.state)
                        result.sent, result.deferred = report.sent, report.deferred
                        result.problems.extend(report.problems)
                        with desk.state.session() as session:
                            # Parked when queued (over the cap) or when delivery failed for good: either way
                            # a person must act, so `poll` says how many and exits 1.
                            result.parked = parked_after(session, before.seq if before else 0)
                    log.info(result.summary())
                    return result
                finally:
                    if not dry_run:
                        refresh_textfile(config, desk)
    finally:
        lock_engine.dispose()


def refresh_textfile(config: Config, desk: Desk) -> None:
    """Rewrite ``monitoring.textfile`` after a poll, also one that failed (its facts say so).

    Best effort: monitoring that cannot be written is logged, never a reason
    for the poll itself to fail (a stale file's timestamp then tells the alert).
    """
    if not config.monitoring.textfile:
        return
    from erasure import monitoring

    try:
        with desk.state.session() as session:
            facts = monitoring.facts(session, config, now=desk.now(), today=desk.today())
        monitoring.write_textfile(config.path(config.monitoring.textfile), facts, config)
    except Exception as exc:  # noqa: BLE001 (see the docstring)
        log.error("could not write monitoring.textfile %s: %s: %s", config.monitoring.textfile, type(exc).__name__, exc)


def watch_forever(config: Config, *, report: Callable[[PollResult], None], idle_seconds: float = 240.0,
                  stop: Callable[[], bool] = lambda: False, sleep: Callable[[float], None] = time.sleep) -> None:
    """`poll --watch`: a pass, then wait for new mail, again and again, until ``stop()``.

    One IMAP connection stays open in IDLE between passes, re-issued every
    ``idle_seconds`` (servers drop idle clients after about 30 minutes); each
    pass itself runs exactly like a cron `poll` (same lock, its own connection).
    A dropped connection or an unreachable database is retried with
    exponential backoff; any other error ends the watch, for the service
    manager to report.
    """
    from erasure.imap import backoff_delays

    delays = backoff_delays()
    watcher = None
    try:
        while not stop():
            try:
                report(poll_once(config))
                delays = backoff_delays()
                if config.mailbox.kind != "imap":
                    sleep(min(idle_seconds, 30.0))  # a Maildir has no push; look again shortly
                    continue
                if watcher is None:
                    watcher = open_source(config)
                watcher.wait_for_new(idle_seconds)  # type: ignore[attr-defined]
            except TemporaryError as exc:
                if watcher is not None:
                    watcher.close()
                    watcher = None
                wait = next(delays)
                log.warning("mailbox or database unavailable, retrying in %.0f s: %s", wait, exc)
                sleep(wait)
    finally:
        if watcher is not None:
            watcher.close()


def prune_records(config: Config, *, dry_run: bool = False) -> list[str]:
    """Delete request records past policy.record_retention_months; returns their references."""
    with Desk.open(config) as desk:
        return desk.prune_records(dry_run=dry_run)


def check_stores(config: Config, *, echo: Callable[[str], None]) -> list[str]:
    """`erasure init`: reflect every store against its tables; the first that fails is named with its key.

    Returns the warnings (missing indexes, a store with no tables) for the caller to print.
    """
    from erasure.config import store_key
    from erasure.errors import StoreError
    from erasure.store.stores import Stores

    warnings: list[str] = []
    with Stores.from_config(config) as stores:
        for i, (name, store) in enumerate(stores):
            label = f"view store {name!r} ({store_key(config, i)})" if config.stores_listed else "view store"
            try:
                found = store.check_schema()
            except StoreError as exc:
                raise type(exc)(f"{label}: {exc}") from exc
            echo(f"{label}: {len(store.settings.tables)} table(s) checked")
            warnings += [f"{label}: {w}" for w in found] if config.stores_listed else found
            if not store.settings.tables:
                warnings.append(f"{label}: no tables configured ([[store.tables]]); nothing can be erased")
    return warnings


def purge(config: Config, *, days: int | None = None, dry_run: bool = False,
          progress: Callable[[str, int], None] | None = None,
          now: dt.datetime | None = None) -> dict[str, retention.PurgeResult]:
    """Delete views older than each store's retention period, store by store, and record each in the audit trail.

    ``days`` (``--days``) overrides every store's period. A store that fails
    does not stop the others: its error is raised after they have run.
    """
    from erasure.store.stores import Stores

    results: dict[str, retention.PurgeResult] = {}
    failures: list[tuple[str, Exception]] = []
    with contextlib.ExitStack() as opened:
        stores = opened.enter_context(Stores.from_config(config))
        desk = None if dry_run else opened.enter_context(Desk.open(config))  # one state handle for every store's event
        for name, store in stores:
            period = days or store.settings.retention_days or config.policy.retention_days
            try:
                result = retention.purge(store, days=period, dry_run=dry_run, now=now,
                                         progress=(lambda table, n, name=name: progress(f"{name}: {table}", n))
                                         if progress and len(stores.names) > 1 else progress)
            except ErasureError as exc:
                failures.append((name, exc))
                continue
            results[name] = result
            if desk is not None:  # recorded as soon as the store is done: a later store's failure loses nothing
                with desk.state.session() as session:
                    audit.record(session, "retention_purge", now=now, data={
                        "store": name, "cutoff": result.cutoff.isoformat(), "days": period, "counts": result.counts,
                    })
    if failures:
        name, exc = failures[0]
        done = ", ".join(results) or "none"
        raise type(exc)(f"retention purge of store {name!r} failed: {exc} (stores purged: {done})") from exc
    return results