"""`erasure demo`: the real pipeline on throw-away data, with no setup.

Everything the demo makes lives in one folder, marked as the demo's own, so a
re-run can safely clear it and start afresh (and refuses to touch a folder that
is not a demo folder).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from erasure import audit
from erasure.config import Config, load_config
from erasure.errors import ConfigError
from erasure.files import create_private_file, make_private_dirs, write_private
from erasure.mailbox import MaildirSource
from erasure.models import AuditEvent, ErasureRequest
from erasure.state import open_state
from erasure.viewschema import create_demo_schema, fill_synthetic_views
from erasure.workflow import Desk

MARKER = ".erasure-demo"
KEY_ENV = "ERASURE_DEMO_AUDIT_KEY"
DEMO_KEY = "demo-only-audit-key-not-secret"
AUTHSERV = "mx.privacy.example"

TENANTS = {"acme": ["env_acme_prod", "env_acme_staging"], "globex": ["env_globex_prod"]}

# Both demo stores hold the same two tables (as the EU ingest and the analytics store do).
STORE_TABLES = """\
[[stores.tables]]
name = "views"
viewer_column = "viewer_id"
tenant_column = "environment_id"
key = "view_id"
time_column = "view_start"

[[stores.tables]]
name = "view_events"
parent = "views"
parent_key = "view_id"
time_column = "ts"
"""

CONFIG = f"""\
# Written by `erasure demo`. Everything here is relative to this file.
[state]
url = "sqlite:///state.db"

# Two systems hold viewer data, as at a real analytics service: the EU ingest
# location (full IP addresses, kept briefly) and the analytics store the
# post-processed views go to. A request completes only when both are erased.
[[stores]]
name = "eu-ingest"
description = "EU ingest, Frankfurt"
url = "sqlite:///eu-ingest.db"
retention_days = 30

{STORE_TABLES}
[[stores]]
name = "analytics"
description = "analytics, United States"
url = "sqlite:///analytics.db"

{STORE_TABLES}
[mailbox]
kind = "maildir"
path = "Maildir"

[delivery]
kind = "directory"
directory = "replies"
from_address = "privacy@analytics.example"

[[tenants]]
name = "acme"
senders = ["@acme.example"]
environments = ["env_acme_prod", "env_acme_staging"]

[[tenants]]
name = "globex"
senders = ["privacy@globex.example"]
environments = ["env_globex_prod"]

[policy]
role = "processor"
time_zone = "Europe/Berlin"
trusted_authserv_ids = ["{AUTHSERV}"]
require_authentication = true

[audit]
hmac_key_env = "{KEY_ENV}"

[controller]
name = "Example Video Analytics"
contact = "privacy@analytics.example"
"""


def _mail(sender: str, subject: str, body: str, *, authenticated: bool = True, extra: dict[str, str] | None = None,
          when: dt.datetime) -> bytes:
    domain = sender.rpartition("@")[2]
    headers = {
        "Return-Path": f"<{sender}>",
        "Authentication-Results": (
            f"{AUTHSERV}; spf=pass smtp.mailfrom={domain}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
            if authenticated else f"{AUTHSERV}; spf=none; dkim=none; dmarc=none header.from={domain}"
        ),
        "From": sender,
        "To": "privacy@analytics.example",
        "Subject": subject,
        "Date": email.utils.format_datetime(when),
        "Message-ID": f"<{uuid.uuid5(uuid.NAMESPACE_URL, subject + sender)}@{domain}>",
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=utf-8",
        **(extra or {}),
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def sample_mail(now: dt.datetime) -> list[tuple[str, bytes]]:
    """The demo's requests: the good, the doubtful and the automatic."""
    return [
        ("01-acme-gdpr", _mail(
            "dpo@acme.example", "GDPR erasure request",
            "Hello,\n\nUnder Art. 17 GDPR please erase all data for these viewers:\n\n"
            "Viewer ID: viewer-00001\nViewer ID: viewer-00003\n\nKind regards,\nAcme DPO\n", when=now)),
        ("02-globex-ccpa", _mail(
            "privacy@globex.example", "CCPA deletion request",
            "Please delete the personal information of this consumer under the CCPA.\n\n"
            "viewer_id=viewer-00002\n", when=now)),
        ("03-acme-unknown-id", _mail(
            "dpo@acme.example", "Erasure request",
            "Please delete all data for\nViewer ID: viewer-99999\n", when=now)),
        ("04-unknown-sender", _mail(
            "someone@unknown.example", "Delete my data",
            "Please erase everything for\nViewer ID: viewer-00001\n", when=now)),
        ("05-acme-no-id", _mail(
            "dpo@acme.example", "Data deletion",
            "Please delete the data of one of our users under GDPR. Thanks!\n", when=now)),
        ("06-auto-reply", _mail(
            "dpo@acme.example", "Out of office: Data deletion",
            "I am out of the office until Monday.\nViewer ID: viewer-00004\n", when=now,
            extra={"Auto-Submitted": "auto-replied"})),
    ]


@dataclass(frozen=True)
class DemoRequest:
    reference: str
    sender: str
    tenant: str | None
    status: str
    detail: str
    replies: tuple[str, ...]


@dataclass
class DemoResult:
    directory: Path
    config_path: Path
    replies_dir: Path
    key_env: str
    key_hint: str
    requests: list[DemoRequest] = field(default_factory=list)
    audit_events: int = 0
    audit_ok: bool = False
    views_before: int = 0
    views_after: int = 0


def prepare_directory(directory: Path | None) -> Path:
    """A fresh demo folder: new, empty, or one a previous demo made (then cleared)."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="erasure-demo-"))
    directory = directory.expanduser()
    if directory.exists():
        if not directory.is_dir():
            raise ConfigError(f"--dir {directory} is a file; name a folder")
        contents = list(directory.iterdir())
        if contents and not (directory / MARKER).exists():
            raise ConfigError(
                f"--dir {directory} is not empty and was not made by `erasure demo`; name a new or empty folder"
            )
        for entry in contents:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    make_private_dirs(directory)
    write_private(directory / MARKER, "made by `erasure demo`; the next demo run clears this folder\n")
    return directory


#: The demo's stores: file, and the seed and age of its synthetic views (the EU ingest keeps 30 days).
DEMO_STORES = {"eu-ingest.db": (7, 30), "analytics.db": (11, 120)}


def _count_views(directory: Path) -> int:
    """Views in all the demo's stores together."""
    total = 0
    for name in DEMO_STORES:
        engine = sa.create_engine(f"sqlite:///{directory / name}")
        try:
            with engine.connect() as conn:
                total += conn.execute(sa.text("SELECT COUNT(*) FROM views")).scalar_one()
        finally:
            engine.dispose()
    return total


def run_demo(directory: Path | None = None, *, now: dt.datetime | None = None) -> DemoResult:
    """Build the demo world in ``directory`` and run one poll over it."""
    from erasure.runner import deliver_outbox

    now = now or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    directory = prepare_directory(directory)
    os.environ.setdefault(KEY_ENV, DEMO_KEY)
    config_path = directory / "erasure.toml"
    write_private(config_path, CONFIG)
    config = load_config(config_path)

    for name, (seed, max_age_days) in DEMO_STORES.items():
        create_private_file(directory / name)  # synthetic, but shaped like personal data: private like the real thing
        engine = sa.create_engine(f"sqlite:///{directory / name}")
        try:
            create_demo_schema(engine)
            fill_synthetic_views(engine, TENANTS, viewer_ids_per_env=50, views_per_viewer=4, seed=seed, now=now,
                                 max_age_days=max_age_days)
        finally:
            engine.dispose()

    maildir = directory / "Maildir"
    for sub in ("new", "cur", "tmp"):
        make_private_dirs(maildir / sub)
    for name, raw in sample_mail(now):
        write_private(maildir / "new" / f"{int(now.timestamp())}.{name}.demo", raw)

    result = DemoResult(
        directory=directory, config_path=config_path, replies_dir=config.path(config.delivery.directory),
        key_env=KEY_ENV, key_hint=os.environ[KEY_ENV] if os.environ[KEY_ENV] == DEMO_KEY else "...",
        views_before=_count_views(directory),
    )
    state = open_state(config.state.url, base_dir=config.base_dir)
    desk = Desk(config, state)
    try:
        with MaildirSource(maildir) as source:
            desk.poll(source)
        deliver_outbox(config, state, stream=io.StringIO())
        with state.session() as session:
            for r in session.scalars(sa.select(ErasureRequest).order_by(ErasureRequest.id)):
                result.requests.append(DemoRequest(
                    reference=r.reference or "", sender=r.requester or "-", tenant=r.tenant, status=r.status,
                    detail=_detail(session, config, r), replies=tuple(m.kind for m in r.replies),
                ))
            verdict = audit.verify(session)
            result.audit_events, result.audit_ok = verdict.events, verdict.ok
    finally:
        desk.close()
        state.close()
    result.views_after = _count_views(directory)
    return result


def _detail(session: sa.orm.Session, config: Config, r: ErasureRequest) -> str:
    """One phrase per request for the demo table: the per-table counts in each store, or why it stopped."""
    if r.status != "completed":
        return r.reason_code or r.status
    if r.response == "no_data_found":
        return "no data found for these ids"
    parts = []
    for data in session.scalars(
        sa.select(AuditEvent.data).where(AuditEvent.request_ref == r.reference, AuditEvent.event == "erased")
        .order_by(AuditEvent.seq)
    ):
        event = json.loads(data)
        store = next((s for s in config.stores if s.name == event.get("store")), config.stores[0])
        order = {t.name: i for i, t in enumerate(store.tables)}
        shown = sorted(event["counts"].items(), key=lambda kv: order.get(kv[0], len(order)))
        parts.append(f"{store.name}: " + ", ".join(f"{n} {table}" for table, n in shown))
    return "erased " + "; ".join(parts) if parts else f"{r.rows_erased} rows erased"
