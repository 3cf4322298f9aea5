"""TOML configuration -> frozen, typed, validated settings.

Settings are declared once, as dataclasses whose fields carry their help text;
the loader, the error messages and the documentation test all read the same
declarations. Unknown keys are errors with a "did you mean" suggestion, because
a misspelt key in a tool that deletes data must never be silently ignored.
Secrets never sit in the file: a ``*_env`` key names the environment variable
that holds them, and they are read only when needed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from erasure.deadlines import office_zone, parse_holidays
from erasure.errors import ConfigError, TimeZoneMissingError

DEFAULT_CONFIG_NAME = "erasure.toml"
CONFIG_ENV = "ERASURE_CONFIG"

Security = Literal["tls", "starttls", "none"]
Regulation = Literal["gdpr", "ccpa"]


def setting(default: Any = dataclasses.MISSING, *, help: str, factory: Any = None, required: bool = False) -> Any:
    """Declare one setting with its help text (used by the docs test and errors).

    ``required``: a config file must state it, although the dataclass keeps
    ``default`` for code that builds settings directly (the pure deadline
    functions' tests); used where no default is right for every office.
    """
    metadata = {"help": help, **({"required": True} if required else {})}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class StateSettings:
    url: str = setting("sqlite:///erasure-state.db", help="SQLAlchemy URL of the tool's own state database (requests, audit trail, outbox).")


@dataclass(frozen=True)
class StoreTable:
    name: str = setting(help="Table name in the view store.")
    viewer_column: str | None = setting(None, help="Column holding the customer's viewer id (tables keyed by viewer id).")
    tenant_column: str | None = setting(None, help="Column holding the tenant's environment id; every delete is scoped by it.")
    key: str | None = setting(None, help="Primary key column; child tables reach rows through it.")
    time_column: str | None = setting(None, help="Timestamp column used by the retention purge.")
    parent: str | None = setting(None, help="For a child table: the table whose rows it belongs to.")
    parent_key: str | None = setting(None, help="For a child table: the column holding the parent's key.")

    @property
    def is_child(self) -> bool:
        return self.parent is not None


#: A store's name goes into the state database, the audit trail and letters' evidence.
STORE_NAME = r"[a-z0-9][a-z0-9_-]{0,31}"
DEFAULT_STORE = "default"


@dataclass(frozen=True)
class StoreSettings:
    """One system that holds viewer data: ``[store]`` (one store, named "default") or each ``[[stores]]``."""

    name: str = setting(DEFAULT_STORE, help='The store\'s name in status, the audit trail and letters (lower case, digits, "-" and "_"); [store] is "default".')
    description: str = setting("", help='What and where the store is, as customers should read it, e.g. "EU ingest, Frankfurt".')
    url: str = setting("sqlite:///views.db", help="SQLAlchemy URL of the view store, or clickhouse://user@host:9000/db / chdb:///folder for ClickHouse.")
    tables: tuple[StoreTable, ...] = setting(factory=tuple, help="Tables holding view data (see [[store.tables]] / [[stores.tables]]).")
    retention_days: int | None = setting(None, help="Views older than this are deleted from this store by `erasure retention purge`; default policy.retention_days.")
    lock_timeout_seconds: int = setting(10, help="How long one erasure waits for a row lock before giving up and retrying on a later run; 0 = do not wait (MariaDB waits at least 1 s).")
    statement_timeout_seconds: int = setting(300, help="Upper bound for one delete statement; 0 = no limit.")
    password_env: str | None = setting(None, help="Environment variable holding the store password, merged into the URL.")
    delete_mode: Literal["auto", "lightweight", "mutation"] = setting(
        "auto",
        help='ClickHouse only: "lightweight" (DELETE FROM: rows hidden at once, removed at the next merge), '
        '"mutation" (ALTER TABLE ... DELETE: parts rewritten without the rows) or "auto" (lightweight where the server has it, 23.3+).',
    )
    optimize_final: bool = setting(False, help="ClickHouse only: run OPTIMIZE TABLE ... FINAL after each erasure, so deleted rows leave the disk now rather than at the next merge (costly on large tables).")
    mutation_timeout_seconds: int = setting(300, help="ClickHouse only: how long an erasure waits for its deletes to finish (system.mutations); on timeout the request stays erasing and the next run resumes.")
    cluster: str | None = setting(None, help="ClickHouse only: the cluster (system.clusters) whose shards hold the local tables behind a Distributed table; default: the cluster the Distributed table names.")
    shards: tuple[str, ...] = setting(factory=tuple, help='ClickHouse only: the shard servers ("host:port", native protocol) holding the local tables, instead of asking system.clusters.')


@dataclass(frozen=True)
class MailboxSettings:
    kind: Literal["imap", "maildir"] = setting("maildir", help='"imap" or "maildir".')
    path: str = setting("Maildir", help="Maildir folder (kind = maildir).")
    host: str = setting("localhost", help="IMAP server host name.")
    port: int | None = setting(None, help="IMAP port; default 993 for tls, 143 otherwise.")
    security: Security = setting("tls", help='"tls" (implicit TLS), "starttls" or "none" (loopback tests only).')
    ca_file: str | None = setting(None, help="PEM file of CA certificates to trust instead of the system store.")
    username: str = setting("", help="IMAP login name.")
    password_env: str | None = setting(None, help="Environment variable holding the IMAP password.")
    folder: str = setting("INBOX", help="Folder new requests arrive in.")
    processed_folder: str = setting("Processed", help="Folder messages move to once their request is recorded.")
    review_folder: str = setting("Review", help="Folder for messages that need a person (or were ignored as automatic mail).")
    timeout_seconds: int = setting(30, help="Socket timeout for every mailbox operation.")
    max_message_bytes: int = setting(25 * 1024 * 1024, help="Messages larger than this are sent to review without being fetched.")
    batch_size: int = setting(50, help="Messages fetched per round trip.")


@dataclass(frozen=True)
class DeliverySettings:
    kind: Literal["smtp", "directory", "console"] = setting("directory", help='"smtp", "directory" (.eml files) or "console".')
    directory: str = setting("outbox", help="Where .eml replies are written (kind = directory).")
    from_address: str = setting("privacy@example.com", help="From address of every reply.")
    host: str = setting("localhost", help="SMTP server host name.")
    port: int | None = setting(None, help="SMTP port; default 465 for tls, 587 for starttls, 25 otherwise.")
    security: Security = setting("starttls", help='"tls", "starttls" or "none".')
    ca_file: str | None = setting(None, help="PEM file of CA certificates to trust instead of the system store.")
    username: str = setting("", help="SMTP AUTH user; empty for no authentication.")
    password_env: str | None = setting(None, help="Environment variable holding the SMTP password.")
    timeout_seconds: int = setting(30, help="Socket timeout for SMTP.")
    max_per_recipient_per_day: int = setting(20, help="Replies to one address per 24 hours before further replies are held (stops reply storms).")


@dataclass(frozen=True)
class Recipient:
    """A downstream recipient or sub-processor of a tenant's view data, told of each erasure (GDPR Art. 19, 28(4))."""

    name: str = setting(help="The recipient's name, as the completed letter names it to the customer (unique per tenant).")
    address: str = setting(help="Where its erasure notice goes: one plain address, e.g. privacy@cdn.example.")


@dataclass(frozen=True)
class Tenant:
    name: str = setting(help="Short tenant name used on the CLI and in the register.")
    senders: tuple[str, ...] = setting(factory=tuple, help='Allowed From addresses; "@domain" allows the whole domain.')
    environments: tuple[str, ...] = setting(factory=tuple, help="The tenant's environment ids in the view store; deletes are scoped to these.")
    contact: str | None = setting(
        None,
        help="Where letters go when an officer approves a request for this tenant that another tenant sent "
        "(`requests approve --override-tenant`); default: the first full address in senders.",
    )
    recipients: tuple[Recipient, ...] = setting(
        factory=tuple,
        help="Downstream recipients and sub-processors of this tenant's view data ([[tenants.recipients]]): each "
        "gets a notice naming the reference and the counts when an erasure completes (GDPR Art. 19, 28(4); "
        "CCPA 11 CCR 7022(b)-(c)).",
    )

    @property
    def reply_address(self) -> str | None:
        """The tenant's own address for letters about a request moved to it; None when none is configured.

        Never a requester's address: a request moved here from another tenant
        must not tell that other tenant's requester about this tenant's data.
        """
        if self.contact:
            return self.contact
        return next((s for s in self.senders if not s.startswith("@")), None)


@dataclass(frozen=True)
class PolicySettings:
    trusted_authserv_ids: tuple[str, ...] = setting(factory=tuple, help="Authentication-Results headers are trusted only from these authserv-ids (your own MX).")
    require_authentication: bool = setting(True, help="Require DMARC pass (or aligned DKIM pass) from a trusted authserv-id before acting.")
    acknowledge: Literal["unless_done", "always", "never"] = setting(
        "unless_done",
        help='Acknowledge receipt: "unless_done" (when a request is still open at the end of the run that recorded it), "always", or "never".',
    )
    direct_reply_window_days: int = setting(
        30,
        help="A sender no tenant lists (often a viewer writing to us directly) whose own domain passes DMARC gets "
             "one data-free letter sending them to the service they used (processor role only); at most once per "
             "address (in any spelling) within this many days.",
    )
    auto_approve: bool = setting(True, help="Erase without an officer's approval when the match count is small enough.")
    auto_approve_max_views: int = setting(10_000, help="Requests matching more views than this wait for `erasure requests approve`.")
    retention_days: int = setting(100, help="Views older than this are deleted by `erasure retention purge`.")
    suppression: bool = setting(
        False,
        help="Keep deleting views that reappear under viewer ids erased earlier (CCPA 7022(e)); see `erasure suppression sweep`.",
    )
    default_regulation: Regulation = setting("gdpr", help="Regulation applied when a request names none.")
    role: Literal["processor", "controller"] = setting(
        "processor",
        help='"processor" (you erase your customers\' viewers\' data for them; CCPA: service provider) or '
             '"controller" (your own users\' data). `erasure init` wants it set explicitly.',
    )
    processor_response_days: int = setting(
        10,
        help="Processor role: calendar days from our receipt to answer the customer (your data processing "
             "agreement's period); a request is due by this or the customer's own legal deadline, whichever is earlier.",
    )
    ccpa_days: int = setting(45, help="CCPA: calendar days to answer.")
    ccpa_extension_days: int = setting(45, help="CCPA: extension in calendar days.")
    gdpr_extension_months: int = setting(2, help="GDPR: extension in months.")
    ack_business_days: int = setting(10, help="CCPA: business days to confirm receipt.")
    holidays: tuple[str, ...] = setting(factory=tuple, help="Dates (YYYY-MM-DD) that are not business days.")
    time_zone: str = setting(
        "UTC", required=True,
        help='Office time zone (IANA name, e.g. "Europe/Berlin" or "America/Los_Angeles"): the day a request is '
             "received, and so every deadline, is counted in it. Required: a default of UTC dates a mail that arrives "
             "at 23:30 in Los Angeles on the next day.",
    )
    record_retention_months: int = setting(24, help="Request records are kept this long after closing, then pruned.")
    max_viewer_id_length: int = setting(256, help="Longer viewer ids go to review.")
    max_viewer_ids: int = setting(100_000, help="Requests naming more ids go to review; no request stores more than this many.")
    max_attachment_bytes: int = setting(5_000_000, help="Attachments (and body parts) larger than this are not read; the request goes to review.")
    parse_timeout_seconds: int = setting(20, help="Reading one message may take this long (wall clock) before it is stopped and sent to review.")
    parse_memory_mb: int = setting(512, help="Reading one message may use this much memory (its worker process's address space) before it is stopped and sent to review.")


@dataclass(frozen=True)
class RetiredKey:
    version: int = setting(help="The key_version this key had while it was current.")
    env: str = setting(help="Environment variable holding that retired key.")


@dataclass(frozen=True)
class AuditSettings:
    hmac_key_env: str = setting("ERASURE_AUDIT_KEY", help="Environment variable holding the HMAC key for viewer ids in the audit trail.")
    key_version: int = setting(1, help="Version of the current key; bump when rotating.")
    retired_keys: tuple[RetiredKey, ...] = setting(
        factory=tuple, help="Earlier keys, so `audit find` still answers for requests closed before a rotation."
    )


@dataclass(frozen=True)
class TemplateSettings:
    directory: str | None = setting(None, help="Folder whose templates override the packaged ones, one by one.")


@dataclass(frozen=True)
class ControllerSettings:
    name: str = setting("Example Video Analytics", help="The controller's name, used in replies.")
    contact: str = setting("privacy@example.com", help="Where requesters can write with questions.")
    supervisory_authority: str = setting(
        "the data protection supervisory authority of your country",
        help="Named in refusals as where the requester may complain.",
    )


@dataclass(frozen=True)
class MonitoringSettings:
    textfile: str | None = setting(
        None,
        help="A .prom file that every `erasure poll` rewrites with `erasure metrics` (node_exporter's textfile "
             "collector directory, e.g. /var/lib/prometheus/node-exporter/erasure.prom).",
    )


@dataclass(frozen=True)
class Config:
    state: StateSettings = setting(factory=StateSettings, help="[state]")
    store: StoreSettings = setting(factory=StoreSettings, help="[store]: one view store, named \"default\" (or use [[stores]]).")
    stores: tuple[StoreSettings, ...] = setting(factory=tuple, help="[[stores]]: every system that holds viewer data, each named; a request completes only when all are erased.")
    mailbox: MailboxSettings = setting(factory=MailboxSettings, help="[mailbox]")
    delivery: DeliverySettings = setting(factory=DeliverySettings, help="[delivery]")
    tenants: tuple[Tenant, ...] = setting(factory=tuple, help="[[tenants]]")
    policy: PolicySettings = setting(factory=PolicySettings, help="[policy]")
    audit: AuditSettings = setting(factory=AuditSettings, help="[audit]")
    templates: TemplateSettings = setting(factory=TemplateSettings, help="[templates]")
    controller: ControllerSettings = setting(factory=ControllerSettings, help="[controller]")
    monitoring: MonitoringSettings = setting(factory=MonitoringSettings, help="[monitoring]")
    base_dir: Path = field(default=Path("."), metadata={"help": "internal", "internal": True})
    # Whether the file itself set policy.role: `erasure init` insists on it (require_role).
    role_set: bool = field(default=False, metadata={"help": "internal", "internal": True})
    # Whether the stores came from [[stores]] (named by the operator) rather than one [store].
    stores_listed: bool = field(default=False, metadata={"help": "internal", "internal": True})

    def tenant(self, name: str) -> Tenant:
        """The tenant called ``name``; a ConfigError naming the known ones otherwise."""
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        known = ", ".join(t.name for t in self.tenants) or "none configured"
        raise ConfigError(f"no tenant named {name!r} in [[tenants]] (known: {known})")

    def path(self, value: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def audit_key(self) -> bytes:
        return read_secret(self.audit.hmac_key_env, "audit.hmac_key_env").encode()

    def audit_keys(self) -> dict[int, bytes]:
        """Every key version whose key is available: the current one and the retired ones set in the environment."""
        keys = {self.audit.key_version: self.audit_key()}
        for i, retired in enumerate(self.audit.retired_keys):
            if os.environ.get(retired.env):
                keys.setdefault(retired.version, read_secret(retired.env, f"audit.retired_keys[{i}].env").encode())
        return keys


def is_loopback_host(host: str) -> bool:
    """Plain-text protocols (security = "none") are allowed only to this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_secret(env_name: str | None, key_path: str) -> str:
    """Read a secret from the environment variable a ``*_env`` key names."""
    if not env_name:
        raise ConfigError(f"{key_path} is not set; name the environment variable that holds the secret")
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"{key_path} names {env_name}, which is not set; export {env_name}=... before running")
    return value


# ---------------------------------------------------------------- loading


def default_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else $ERASURE_CONFIG, else ./erasure.toml (the CLI contract)."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML file; every problem is a ConfigError naming the key."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {p} not found; pass --config PATH, set {CONFIG_ENV}, "
            f"or copy config.example.toml to {DEFAULT_CONFIG_NAME}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    return config_from_dict(data, base_dir=p.resolve().parent, source=str(p))


def config_from_dict(data: dict[str, Any], *, base_dir: Path = Path("."), source: str = "config") -> Config:
    """Build a Config from already-parsed TOML (tests and `demo` use this directly)."""
    config = _build(Config, data, prefix="", source=source)
    policy = data.get("policy")
    if "stores" in data and "store" in data:
        raise ConfigError(f"{source}: both [store] and [[stores]] are set; move [store] into [[stores]] "
                          "with a name (a single [store] is the store named \"default\")")
    if config.stores:
        config = dataclasses.replace(config, stores_listed=True)
    else:
        # A single [store] (or none: the defaults) is the one store named "default".
        config = dataclasses.replace(config, stores=(config.store,))
    config = dataclasses.replace(config, base_dir=base_dir,
                                 role_set=isinstance(policy, dict) and "role" in policy)
    _check(config, source)
    return config


def require_role(config: Config) -> None:
    """A ConfigError unless the config file says in which role the tool runs.

    The role decides whose deadline a request is due by (deadlines.py), so an
    installation states it once, at `erasure init`, rather than inheriting a
    default nobody chose. Other commands keep working with the default.
    """
    if not config.role_set:
        raise ConfigError(
            'policy.role is not set; add role = "processor" under [policy] if you erase your customers\' '
            'viewers\' data on their behalf (a processor; CCPA: service provider), or role = "controller" if '
            "the data is your own users', then run erasure init again"
        )


def write_time_zone(path: str | os.PathLike[str], zone: str) -> None:
    """Add ``time_zone = "<zone>"`` under [policy] in the config file (`erasure init --time-zone`).

    Only a file that does not name a time zone yet is changed, by inserting one
    line (comments and layout stay as written); a zone that is not an IANA name
    is a ConfigError before anything is written. The result must load, else the
    file is left as it was.
    """
    import re

    office_zone(zone)
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    line = f'time_zone = "{zone}"\n'
    header = re.search(r"^[ \t]*\[policy\][ \t]*(#[^\n]*)?$", text, flags=re.MULTILINE)
    if header is None:
        changed = text + ("" if text.endswith("\n") or not text else "\n") + "\n[policy]\n" + line
    else:
        at = header.end() + 1 if header.end() < len(text) else len(text)
        changed = text[:at] + ("" if text[:at].endswith("\n") else "\n") + line + text[at:]
    try:
        data = tomllib.loads(changed)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: could not add policy.time_zone ({exc}); add time_zone = \"{zone}\" under [policy] by hand") from exc
    if (data.get("policy") or {}).get("time_zone") != zone:
        raise ConfigError(f"{p}: could not add policy.time_zone; add time_zone = \"{zone}\" under [policy] by hand")
    p.write_text(changed, encoding="utf-8")


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def _build(cls: type, data: Any, *, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where} must be a table")
    known = _fields(cls)
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"{source}: unknown key {prefix}{key}{hint}")
    kwargs = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key=f"{prefix}{name}", source=source)
        elif f.metadata.get("required"):
            raise _missing(f"{prefix}{name}", source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: {prefix}{name} is required ({f.metadata['help']})")
        elif dataclasses.is_dataclass(hints[name]) and _has_required(hints[name]):
            # A whole table left out must still state its required keys.
            kwargs[name] = _build(hints[name], {}, prefix=f"{prefix}{name}.", source=source)
    return cls(**kwargs)


def _has_required(cls: type) -> bool:
    return any(f.metadata.get("required") for f in _fields(cls).values())


#: The fix for each setting a config file must state (`setting(required=True)`).
_REQUIRED_FIXES = {
    "policy.time_zone": (
        'add time_zone = "Europe/Berlin" (the IANA name of your office\'s time zone, e.g. "America/Los_Angeles") '
        "under [policy], or run `erasure init --time-zone ZONE`; the day a request is received, and so every "
        "deadline, is counted in it (in UTC a mail that arrives at 23:30 in Los Angeles is dated the next day)"
    ),
}


def _missing(key: str, source: str) -> ConfigError:
    fix = _REQUIRED_FIXES.get(key, "add it")
    error = TimeZoneMissingError if key == "policy.time_zone" else ConfigError
    return error(f"{source}: {key} is not set; {fix}")


def _convert(hint: Any, value: Any, *, key: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if value is None:
            return None
        return _convert(non_none[0], value, key=key, source=source)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint_text = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: {key} = {value!r} is not one of {', '.join(map(repr, args))}{hint_text}")
        return value
    if origin is tuple:
        item = args[0]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key} must be a list")
        if dataclasses.is_dataclass(item):
            return tuple(_build(item, v, prefix=f"{key}[{i}].", source=source) for i, v in enumerate(value))
        return tuple(_convert(item, v, key=f"{key}[{i}]", source=source) for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, prefix=f"{key}.", source=source)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be a whole number, not {value!r}")
        if value < 0:
            raise ConfigError(f"{source}: {key} must not be negative")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, not {value!r}")
        return value
    raise AssertionError(f"unsupported setting type {hint!r} for {key}")  # pragma: no cover


def check_database_url(url: str, key: str, source: str = "config") -> None:
    """A ConfigError naming ``key`` and the fix unless ``url`` is a usable SQLAlchemy URL.

    Checked when the config is loaded, so a typo in a URL (a port of 99999 or
    "abc", an unknown backend, a SQLite URL with a host) is a usage error
    (exit 2) before anything connects, not a traceback from a driver later.
    The driver itself is still imported only when the database is opened.
    """
    import sqlalchemy as sa

    example = {
        "state.url": 'sqlite:///erasure-state.db or postgresql+psycopg://erasure@db.example:5432/erasure',
        "store.url": 'sqlite:///views.db, postgresql+psycopg://user@host:5432/views, mysql+pymysql://user@host:3306/views '
                     'or clickhouse://user@host:9000/views',
    }.get("store.url" if key.startswith("stores[") else key, "sqlite:///file.db or postgresql+psycopg://user@host:5432/name")
    shown = _redact_url(url)
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        detail = "the port is not a number" if isinstance(exc, ValueError) else "it is not a SQLAlchemy URL"
        raise ConfigError(f"{source}: {key} = {shown!r} is malformed ({detail}); write it like {example}") from None
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ConfigError(
            f"{source}: {key} = {shown!r} has port {parsed.port}, outside 1-65535; "
            f"fix the port (PostgreSQL listens on 5432, MariaDB on 3306) or leave it out for the default"
        )
    is_store = key == "store.url" or key.startswith("stores[")
    if is_store and parsed.get_backend_name() in ("clickhouse", "chdb"):
        # ClickHouse stores are not SQLAlchemy databases (erasure.store.clickhouse); a chdb URL names a folder.
        if parsed.get_backend_name() == "chdb" and (parsed.host or parsed.port or not parsed.database):
            raise ConfigError(f"{source}: {key} = {shown!r} must name a folder and no host, like chdb:///views-chdb or chdb:////var/lib/views")
        return
    try:
        parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise ConfigError(
            f"{source}: {key} = {shown!r} names the unknown database kind {parsed.drivername!r}; write it like {example}"
        ) from None
    if parsed.get_backend_name() == "sqlite" and (parsed.host or parsed.port or parsed.username):
        raise ConfigError(
            f"{source}: {key} = {shown!r} puts a host in a SQLite URL; a SQLite file is sqlite:///relative/path.db "
            "(three slashes) or sqlite:////absolute/path.db (four)"
        )


def _redact_url(url: str) -> str:
    """The URL as typed, with any password between ':' and '@' replaced (it may end up in a log)."""
    import re

    return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", url)


def _plain_address(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and "." in domain and not any(c.isspace() or c in "<>,;\"" for c in text))


def _check(config: Config, source: str) -> None:
    """Cross-field rules that a single key cannot express."""
    check_database_url(config.state.url, "state.url", source)
    _check_stores(config, source)
    names = [t.name for t in config.tenants]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{source}: tenant {name!r} is configured twice in [[tenants]]")
    for i, tenant in enumerate(config.tenants):
        if not tenant.environments:
            raise ConfigError(f"{source}: tenants[{i}].environments is empty; list the tenant's environment ids so deletes can be scoped")
        for s in tenant.senders:
            if "@" not in s:
                raise ConfigError(f"{source}: tenants[{i}].senders has {s!r}; use a full address or \"@domain\"")
        if tenant.contact is not None and not _plain_address(tenant.contact):
            raise ConfigError(f"{source}: tenants[{i}].contact = {tenant.contact!r} is not one plain address; "
                              "write it like privacy@acme.example")
        _check_recipients(tenant, f"tenants[{i}].recipients", config.delivery.from_address, source)
    if config.policy.require_authentication and not config.policy.trusted_authserv_ids and config.tenants:
        raise ConfigError(
            f"{source}: policy.require_authentication is on but policy.trusted_authserv_ids is empty, so no request "
            "could ever be verified; list your MX's authserv-id (the first word of its Authentication-Results header)"
        )
    versions = [k.version for k in config.audit.retired_keys]
    if config.audit.key_version in versions or len(set(versions)) != len(versions):
        raise ConfigError(f"{source}: audit.retired_keys must name each earlier key_version once, and not the current one")
    if config.mailbox.kind == "imap" and not config.mailbox.username:
        raise ConfigError(f"{source}: mailbox.username is required when mailbox.kind = \"imap\"")
    if config.policy.processor_response_days < 1:
        raise ConfigError(f"{source}: policy.processor_response_days must be at least 1 (calendar days from our receipt)")
    if config.policy.direct_reply_window_days < 1:
        raise ConfigError(f"{source}: policy.direct_reply_window_days must be at least 1 (days between two data-free "
                          "letters to one direct requester)")
    if config.policy.parse_timeout_seconds < 1:
        raise ConfigError(f"{source}: policy.parse_timeout_seconds must be at least 1 (seconds to read one message)")
    if config.policy.parse_memory_mb < 128:
        raise ConfigError(f"{source}: policy.parse_memory_mb must be at least 128; the parser's own interpreter needs about 60 MB")
    # Checked at load rather than at the first request that needs them.
    parse_holidays(config.policy.holidays)
    office_zone(config.policy.time_zone)


def _check_recipients(tenant: Tenant, key: str, own_address: str, source: str) -> None:
    """Each recipient named once, with one plain address that is not our own (a notice to ourselves is a loop)."""
    seen: dict[str, int] = {}
    for j, recipient in enumerate(tenant.recipients):
        name = recipient.name.strip()
        if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ConfigError(f"{source}: {key}[{j}].name = {recipient.name!r} is empty or holds control characters; "
                              "give the recipient's name, e.g. \"Example CDN Ltd\"")
        if name.casefold() in seen:
            raise ConfigError(f"{source}: {key}[{j}].name = {recipient.name!r} is configured twice "
                              f"(also {key}[{seen[name.casefold()]}]); list each recipient once")
        seen[name.casefold()] = j
        if not _plain_address(recipient.address):
            raise ConfigError(f"{source}: {key}[{j}].address = {recipient.address!r} is not one plain address; "
                              "write it like privacy@cdn.example")
        if recipient.address.casefold() == own_address.casefold():
            raise ConfigError(f"{source}: {key}[{j}].address is delivery.from_address, our own address; "
                              "give the recipient's address")


def store_key(config: Config, index: int) -> str:
    """The config key of the index-th store, as the operator wrote it: ``store`` or ``stores[i]``."""
    return f"stores[{index}]" if config.stores_listed else "store"


def _same_database(url: str, base_dir: Path) -> str:
    """A URL reduced to what names one database: the SQLite file, or backend, host, port and database name."""
    import sqlalchemy as sa

    from erasure.state import resolve_sqlite_url

    parsed = sa.make_url(resolve_sqlite_url(url, base_dir))
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:{Path(parsed.database or '').resolve()}" if parsed.database not in (None, "", ":memory:") else url
    backend = parsed.get_backend_name()
    port = parsed.port or {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(backend, "")
    return f"{backend}://{(parsed.host or 'localhost').lower()}:{port}/{parsed.database or ''}"


def _check_stores(config: Config, source: str) -> None:
    """Every store: a good URL, a name used once, a table tree, and a database of its own.

    Two stores naming one database would be erased twice and counted twice in
    the letter's evidence; a store sharing the state's database would put the
    tool's own records among the customers' data. Both are usage errors.
    """
    import re

    seen: dict[str, str] = {}
    databases: dict[str, str] = {}
    state_db = _same_database(config.state.url, config.base_dir) if config.state.url.startswith("sqlite") else None
    for i, store in enumerate(config.stores):
        key = store_key(config, i)
        check_database_url(store.url, f"{key}.url", source)
        if not re.fullmatch(STORE_NAME, store.name):
            raise ConfigError(f"{source}: {key}.name = {store.name!r} is not a store name; use 1-32 lower-case "
                              'letters, digits, "-" or "_", starting with a letter or digit (e.g. "eu-ingest")')
        if store.name in seen:
            raise ConfigError(f"{source}: {key}.name = {store.name!r} is used twice (also {seen[store.name]}); "
                              "give each store a name of its own")
        seen[store.name] = key
        _check_store_tables(store.tables, source, f"{key}.tables")
        if key != "store" and not any(t.viewer_column and not t.is_child for t in store.tables):
            raise ConfigError(f"{source}: {key} ({store.name!r}) has no viewer table; add a [[stores.tables]] entry "
                              "with viewer_column and tenant_column, or remove the store")
        database = _same_database(store.url, config.base_dir)
        if database in databases:
            raise ConfigError(f"{source}: {key}.url names the same database as {databases[database]}.url; "
                              "each store must be a database of its own (list its tables under one store)")
        databases[database] = key
        if database == state_db:
            raise ConfigError(
                f"{source}: state.url and {key}.url name the same SQLite file; give the tool's state a file of its own "
                "(e.g. state.url = \"sqlite:///erasure-state.db\")"
            )


def _check_store_tables(tables: tuple[StoreTable, ...], source: str, prefix: str = "store.tables") -> None:
    """The table tree: names once, parents that exist and have a key, and every chain ending at a viewer table.

    The only check of the tree (the view store relies on it): made here, where
    the key path is known, so a wrong tree is a usage error at load time. A
    loop matters most: its tables hang off no viewer table, so no erasure would
    ever reach them.
    """
    index: dict[str, int] = {}
    for i, table in enumerate(tables):
        if table.name in index:
            raise ConfigError(f"{source}: {prefix}[{i}].name = {table.name!r} is configured twice "
                              f"(also {prefix}[{index[table.name]}]); list each table once")
        index[table.name] = i
    for i, table in enumerate(tables):
        key = f"{prefix}[{i}]"
        if table.parent is not None:
            if table.parent not in index:
                raise ConfigError(f"{source}: {key}.parent = {table.parent!r} is not a configured table")
            if not table.parent_key:
                raise ConfigError(f"{source}: {key}.parent_key is required for a child table")
            if not tables[index[table.parent]].key:
                raise ConfigError(f"{source}: store table {table.parent!r} needs `key` ({prefix}[{index[table.parent]}].key) "
                                  f"because {table.name!r} names it as parent")
        else:
            if not (table.viewer_column and table.tenant_column):
                raise ConfigError(f"{source}: {key} needs viewer_column and tenant_column (or parent and parent_key for a child table)")
    for i, table in enumerate(tables):
        chain = [table.name]
        parent = table.parent
        while parent is not None:
            if parent in chain:
                raise ConfigError(f"{source}: {prefix}[{i}].parent: the parent chain {' -> '.join([*chain, parent])} loops "
                                  "and never reaches a table with viewer_column and tenant_column; fix the parent keys")
            chain.append(parent)
            parent = tables[index[parent]].parent


def settings_reference() -> list[tuple[str, str, str]]:
    """(key, default, help) for every setting: the source of the docs and `--help`."""
    rows: list[tuple[str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for name, f in _fields(cls).items():
            hint = hints[name]
            sub = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
            if dataclasses.is_dataclass(sub):
                walk(sub, f"{prefix}{name}.")
                continue
            if f.metadata.get("required") or (f.default is dataclasses.MISSING
                                               and f.default_factory is dataclasses.MISSING):
                default = "(required)"
            elif f.default is not dataclasses.MISSING:
                default = repr(f.default)
            else:
                default = repr(list(f.default_factory()))
            rows.append((f"{prefix}{name}", default, f.metadata["help"]))

    walk(Config, "")
    return rows
