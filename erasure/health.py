"""`erasure check`: can this host reach everything a poll needs, right now?

Each dependency is reached the way a poll would reach it (the same code opens
it) and left unchanged: the mailbox is logged into and its intake folder
opened, the state database answers and its schema revision is read, every view
store is connected and its tables reflected, and the SMTP server is greeted
and left without a message. A deploy or a load balancer can gate on the exit
code: 0 when all answer, 75 (temporary) naming what is down.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from erasure.config import Config, store_key
from erasure.errors import ConfigError, ErasureError


@dataclass(frozen=True)
class Check:
    """One dependency: whether it answered, how fast, and what was seen or went wrong."""

    name: str
    ok: bool
    seconds: float
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "seconds": self.seconds, "detail": self.detail}


def timed(name: str, probe: Callable[[], str]) -> Check:
    """Run one probe; an ErasureError (or an OS error from a socket) is "down", with its message.

    A ConfigError is not "down": the configuration is wrong, and the CLI's
    usage exit (2) says so instead of a retryable 75.
    """
    started = time.monotonic()
    try:
        detail = probe()
        ok = True
    except ConfigError:
        raise
    except (ErasureError, OSError) as exc:
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return Check(name, ok, round(time.monotonic() - started, 3), detail)


def check_all(config: Config) -> list[Check]:
    """Every dependency in the order a poll meets them."""
    return [
        timed("state database", lambda: _state(config)),
        timed("mailbox", lambda: _mailbox(config)),
        *(timed(f"view store {s.name}", (lambda i=i: _store(config, i))) for i, s in enumerate(config.stores)),
        timed("delivery", lambda: _delivery(config)),
    ]


def _state(config: Config) -> str:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    from erasure.errors import StateUnavailableError
    from erasure.state import current_revision, head_revision, make_engine, resolve_sqlite_url

    url = resolve_sqlite_url(config.state.url, config.base_dir)
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:" and not Path(database).exists():  # connecting would create it
            raise StateUnavailableError(f"state database {database} does not exist yet; run `erasure init`")
    engine = make_engine(config.state.url, base_dir=config.base_dir)
    try:
        revision = current_revision(engine)
    except sa_exc.SQLAlchemyError as exc:
        raise StateUnavailableError(f"state.url: {' '.join(str(exc).split())[:300]}") from exc
    finally:
        engine.dispose()
    if revision is None:
        raise StateUnavailableError("the state database has no schema yet; run `erasure init`")
    if revision != head_revision():
        return f"schema {revision}; `erasure poll` upgrades it to {head_revision()} (or run `erasure init`)"
    return f"schema {revision} (current)"


def _mailbox(config: Config) -> str:
    from erasure.runner import open_source

    with open_source(config) as source:
        return f"{source.name}: intake folder open"


def _store(config: Config, index: int) -> str:
    from erasure.store.stores import Stores

    with Stores.from_config(config) as stores:
        name = config.stores[index].name
        try:
            warnings = stores[name].check_schema()
        except ErasureError as exc:
            raise type(exc)(f"{store_key(config, index)}: {exc}") from exc
        return f"{len(config.stores[index].tables)} table(s) as configured" + (
            f"; {len(warnings)} warning(s), see `erasure init`" if warnings else "")


def _delivery(config: Config) -> str:
    from erasure.delivery import make_transport

    transport = make_transport(config.delivery, base_dir=config.base_dir, stream=io.StringIO())
    try:
        return transport.check()
    finally:
        transport.close()
