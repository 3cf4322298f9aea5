"""A small, real world for workflow and CLI tests: a SQLite view store with
synthetic views, a Maildir, a state database and .eml delivery, all in tmp_path."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
import itertools
from pathlib import Path

import pytest
import sqlalchemy as sa

from erasure.config import Config, config_from_dict
from erasure.mailbox import MaildirSource
from erasure.state import State, open_state
from erasure.viewschema import create_demo_schema, fill_synthetic_views
from erasure.workflow import Desk

AUTHSERV = "mx.test.example"
KEY_ENV = "ERASURE_TEST_AUDIT_KEY"
NOW = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone.utc)
TENANTS = {"acme": ["env_acme_prod", "env_acme_dev"], "globex": ["env_globex"]}
_counter = itertools.count(1)


#: The office time zone every test config states (policy.time_zone is required).
ZONE = "UTC"


def zoned(data: dict) -> dict:
    """``data`` with policy.time_zone set (to ``ZONE``) unless it names one: a config file must."""
    return {**data, "policy": {"time_zone": ZONE, **data.get("policy", {})}}


def config_dict(tmp: Path, **policy: object) -> dict:
    return {
        "state": {"url": "sqlite:///state.db"},
        "store": {
            "url": "sqlite:///views.db",
            "tables": [
                {"name": "views", "viewer_column": "viewer_id", "tenant_column": "environment_id", "key": "view_id",
                 "time_column": "view_start"},
                {"name": "view_events", "parent": "views", "parent_key": "view_id", "time_column": "ts"},
            ],
        },
        "mailbox": {"kind": "maildir", "path": "Maildir"},
        "delivery": {"kind": "directory", "directory": "replies", "from_address": "privacy@analytics.example"},
        "tenants": [
            {"name": "acme", "senders": ["@acme.example"], "environments": TENANTS["acme"]},
            {"name": "globex", "senders": ["privacy@globex.example"], "environments": TENANTS["globex"]},
        ],
        "policy": {"role": "processor", "time_zone": ZONE, "trusted_authserv_ids": [AUTHSERV], "auto_approve_max_views": 100,
                   **policy},
        "audit": {"hmac_key_env": KEY_ENV},
    }


def mail(sender: str, body: str, *, subject: str = "Erasure request", authenticated: bool = True,
         headers: dict[str, str] | None = None, message_id: str | None = None) -> bytes:
    domain = sender.rpartition("@")[2]
    auth = (f"{AUTHSERV}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}" if authenticated
            else f"{AUTHSERV}; dkim=fail header.d={domain}; dmarc=fail header.from={domain}")
    h = {
        "Return-Path": f"<{sender}>",
        "Authentication-Results": auth,
        "From": sender,
        "To": "privacy@analytics.example",
        "Subject": subject,
        "Date": email.utils.format_datetime(NOW),
        "Message-ID": message_id or f"<m{next(_counter)}@{domain}>",
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=utf-8",
        **(headers or {}),
    }
    return ("".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n" + body.replace("\n", "\r\n")).encode()



def with_attachment(data: bytes, *, filename: str, content_type: str, text: str,
                    sender: str = "dpo@acme.example") -> bytes:
    """A request with one base64 attachment, as mail clients send files (no charset parameter unless given)."""
    encoded = base64.encodebytes(data).decode()
    body = (
        f"--b\nContent-Type: text/plain\n\n{text}\n"
        f'--b\nContent-Type: {content_type}\nContent-Disposition: attachment; filename="{filename}"\n'
        f"Content-Transfer-Encoding: base64\n\n{encoded}--b--\n"
    )
    return mail(sender, body, headers={"Content-Type": 'multipart/mixed; boundary="b"'})

@dataclasses.dataclass
class World:
    root: Path
    config: Config
    state: State
    desk: Desk

    @property
    def maildir(self) -> Path:
        return self.root / "Maildir"

    def deliver(self, raw: bytes, name: str | None = None) -> Path:
        path = self.maildir / "new" / (name or f"{next(_counter)}.test")
        path.write_bytes(raw)
        return path

    def source(self) -> MaildirSource:
        return MaildirSource(self.maildir)

    def poll(self, **kw):
        from erasure.runner import deliver_outbox
        import io

        with self.source() as source:
            result = self.desk.poll(source, **kw)
        if not kw.get("dry_run"):
            deliver_outbox(self.config, self.state, stream=io.StringIO())
        return result

    def views(self, env: str | None = None, viewer: str | None = None) -> int:
        engine = sa.create_engine(f"sqlite:///{self.root / 'views.db'}")
        q = "SELECT COUNT(*) FROM views WHERE 1=1"
        params = {}
        if env:
            q += " AND environment_id = :e"
            params["e"] = env
        if viewer:
            q += " AND viewer_id = :v"
            params["v"] = viewer
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(q), params).scalar_one()
        finally:
            engine.dispose()

    def replies(self) -> list[Path]:
        d = self.root / "replies"
        return sorted(d.glob("*.eml")) if d.exists() else []


def make_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, state_url: str | None = None,
               **policy: object) -> World:
    """``state_url``: another state database (e.g. the ``store_url`` of a server backend)."""
    monkeypatch.setenv(KEY_ENV, "test-key")
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'views.db'}")
    create_demo_schema(engine)
    fill_synthetic_views(engine, TENANTS, viewer_ids_per_env=10, views_per_viewer=3, seed=1, now=NOW,
                         max_age_days=60)
    engine.dispose()
    settings = config_dict(tmp_path, **policy)
    if state_url is not None:
        settings["state"]["url"] = state_url
    config = config_from_dict(settings, base_dir=tmp_path)
    state = open_state(config.state.url, base_dir=tmp_path)
    return World(tmp_path, config, state, Desk(config, state, now=lambda: NOW))


@pytest.fixture
def world(tmp_path, monkeypatch):
    w = make_world(tmp_path, monkeypatch)
    yield w
    w.desk.close()
    w.state.close()


def shown_events(w: World, name: str) -> list:  # type: ignore[type-arg]
    """The audit events called ``name`` as people read them: reasons and personal data values
    from beside the chain while they are kept (the chain itself holds their salted digests)."""
    import json
    import types

    from erasure import audit
    from erasure.models import AuditEvent

    with w.state.session() as session:
        rows = session.scalars(sa.select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.seq)).all()
        out = []
        for row in rows:
            reason, data = audit.shown(session, row)
            out.append(types.SimpleNamespace(seq=row.seq, at=row.at, actor=row.actor, event=row.event,
                                             request_ref=row.request_ref, tenant=row.tenant, reason=reason,
                                             data=json.dumps(data, sort_keys=True, separators=(",", ":"))))
        return out


def count_views(url: str, env: str, viewer: str) -> int:
    """Views of one viewer in one environment, read from the store database itself."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT COUNT(*) FROM views WHERE environment_id = :e AND viewer_id = :v"),
                                {"e": env, "v": viewer}).scalar_one()
    finally:
        engine.dispose()
