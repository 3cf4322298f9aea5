"""The `erasure` command: parse options, call the library, print, exit.

Nothing below this module prints, prompts or exits. Errors from the library are
turned into a message and an exit code here, in one place (``_fail``):

    0   done
    1   done, but something needs attention (items for review, delivery problems, a broken audit chain)
    2   usage or configuration error
    75  temporary failure (mailbox or database unreachable): cron may simply retry
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, Optional

import typer

from erasure import __version__
from erasure.config import Config, default_config_path, load_config, require_role
from erasure.errors import (
    EXIT_ATTENTION,
    EXIT_TEMPFAIL,
    ConfigError,
    ErasureError,
    TimeZoneMissingError,
    UsageError,
    exit_code_for,
)
from erasure.refusals import REFUSALS
from erasure.vocabulary import Regulation

if TYPE_CHECKING:
    from erasure.workflow import Desk

EXIT_OK = 0

app = typer.Typer(
    name="erasure",
    help=(
        "Handle GDPR/CCPA erasure requests for the view store: read the privacy mailbox, verify each request, "
        "delete the viewer's views in the requester's tenant only, keep a hash-chained audit trail, and reply.\n\n"
        "Start with `erasure demo`, which runs everything on throw-away data.\n\n"
        "Example: erasure --config /etc/erasure/erasure.toml poll"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
requests_app = typer.Typer(help="The request register and the officer's decisions.\n\nExample: erasure requests list --status needs_review", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.\n\nExample: erasure audit verify", no_args_is_help=True)
outbox_app = typer.Typer(help="Replies waiting to be sent, and parked ones.\n\nExample: erasure outbox list", no_args_is_help=True)
retention_app = typer.Typer(help="The retention period for view data.\n\nExample: erasure retention purge --dry-run", no_args_is_help=True)
suppression_app = typer.Typer(
    help="Opt-in (policy.suppression): keep deleting views that reappear under erased viewer ids.\n\n"
    "Example: erasure suppression sweep --dry-run",
    no_args_is_help=True,
)
holds_app = typer.Typer(
    help="Legal holds: nothing of a tenant, or of one of its viewers, is erased while a hold is active.\n\n"
    "Example: erasure holds add --tenant acme --reason \"Litigation hold, case 24-cv-1234\"",
    no_args_is_help=True,
)
app.add_typer(requests_app, name="requests")
app.add_typer(holds_app, name="holds")
app.add_typer(audit_app, name="audit")
app.add_typer(outbox_app, name="outbox")
app.add_typer(retention_app, name="retention")
app.add_typer(suppression_app, name="suppression")

log = logging.getLogger("erasure")


class Context:
    def __init__(self, config_path: Optional[Path]) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(default_config_path(self.config_path))
        return self._config


def _version(value: bool) -> None:
    if value:
        typer.echo(f"erasure {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="Config file. Default: $ERASURE_CONFIG, else ./erasure.toml.", show_default=False
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each step to stderr."),
    log_json: bool = typer.Option(False, "--log-json", help="Log as JSON lines (for journald, Loki, ...); implies --verbose."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonLogFormatter() if log_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if (verbose or log_json) else logging.WARNING)
    ctx.obj = Context(config)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record, not when the handler was made."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (messages never carry viewer ids)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Map library errors to a message and the exit code their class carries (errors.py)."""
    try:
        yield
    except ErasureError as exc:
        code = exit_code_for(exc)
        _fail(f"{exc} (temporary: try again later)" if code == EXIT_TEMPFAIL else str(exc), code)


def _desk(ctx: typer.Context) -> Desk:
    """The installation's handle; use as ``with _desk(ctx) as desk:`` so its databases are closed."""
    from erasure.workflow import Desk

    return Desk.open(ctx.obj.config)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain, aligned text table: readable in a terminal, a log or an email."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _print_table(headers: list[str], rows: list[list[str]], *, highlight: list[bool] | None = None) -> None:
    """A rich table (overdue rows in red) on a terminal; plain aligned text in pipes, logs and tests."""
    if not sys.stdout.isatty():
        typer.echo(format_table(headers, rows))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=box.SIMPLE_HEAD, header_style="bold")
    for i, row in enumerate(rows):
        table.add_row(*row, style="red" if highlight and highlight[i] else None)
    Console().print(table)


# ---------------------------------------------------------------- init


@app.command()
def init(
    ctx: typer.Context,
    time_zone: Optional[str] = typer.Option(
        None, "--time-zone", metavar="ZONE",
        help='The office time zone (IANA name, e.g. "Europe/Berlin"), written to the config file as '
             "policy.time_zone when it names none. Asked for on a terminal if missing.",
    ),
) -> None:
    """Create or upgrade the state database, check every view store's tables and columns and,
    for an IMAP mailbox, log in and check its folders (creating the processed and review folders).

    The config file must name the office time zone (policy.time_zone): the day a
    request is received, and every deadline, is counted in it. If it names none,
    init writes the one given with --time-zone (or asked for) into the file.
    Safe to run again: it only applies migrations that are missing.

    Example: erasure --config erasure.toml init --time-zone Europe/Berlin
    """
    from erasure.runner import check_mailbox, check_stores
    from erasure.state import current_revision, open_state

    with errors():
        config = _config_with_time_zone(ctx, time_zone)
        require_role(config)
        typer.echo(f"office time zone: {config.policy.time_zone} (dates of receipt and deadlines are counted in it)")
        state = open_state(config.state.url, base_dir=config.base_dir)
        typer.echo(f"state database ready at schema {current_revision(state.engine)}")
        state.close()
        warnings = check_stores(config, echo=typer.echo)
        mailbox = check_mailbox(config)
        if mailbox:
            typer.echo(mailbox)
        for warning in warnings:
            typer.echo(f"warning: {warning}", err=True)


def _config_with_time_zone(ctx: typer.Context, time_zone: str | None) -> Config:
    """The config, after writing policy.time_zone into the file if it names none (init only)."""
    from erasure.config import write_time_zone

    try:
        config: Config = ctx.obj.config
    except TimeZoneMissingError:
        if time_zone is None and sys.stdin.isatty():
            typer.echo("The config file names no office time zone (policy.time_zone). Dates of receipt and "
                       "deadlines are counted in it.")
            time_zone = typer.prompt('Office time zone (IANA name, e.g. "Europe/Berlin" or "America/Los_Angeles")')
        if time_zone is None:
            raise
        path = default_config_path(ctx.obj.config_path)
        write_time_zone(path, time_zone.strip())
        typer.echo(f'policy.time_zone = "{time_zone.strip()}" written to {path}')
        ctx.obj = Context(ctx.obj.config_path)
        return ctx.obj.config
    if time_zone is not None and time_zone.strip() != config.policy.time_zone:
        raise UsageError(
            f"--time-zone {time_zone!r}: the config already names policy.time_zone = {config.policy.time_zone!r}; "
            "edit the file to change it (dates of requests already received stay as they were)"
        )
    return config


# ---------------------------------------------------------------- demo


@app.command()
def demo(
    directory: Optional[Path] = typer.Option(
        None, "--dir", help="Folder for the demo's files (re-created on each run). Default: a new temporary folder.",
        show_default=False,
    ),
) -> None:
    """Run the whole pipeline on throw-away data: no servers, no configuration.

    Creates a SQLite view store with synthetic views for two tenants, a Maildir of
    sample requests (good ones, an unknown sender, one with no viewer id, an
    auto-reply), and a config; then polls, erases, audits and writes the replies
    as .eml files. Re-running with the same --dir starts afresh.

    Example: erasure demo --dir /tmp/erasure-demo
    """
    from erasure.demo import run_demo

    with errors():
        result = run_demo(directory)
    rows = [
        [o.reference, o.sender, o.tenant or "-", o.status, o.detail, ", ".join(o.replies) or "-"]
        for o in result.requests
    ]
    typer.echo(f"Demo folder: {result.directory}\n")
    typer.echo(format_table(["request", "from", "tenant", "state", "what happened", "reply"], rows))
    typer.echo("")
    typer.echo(f"Replies (.eml files): {result.replies_dir}")
    typer.echo(f"Audit trail: {result.audit_events} events, chain {'intact' if result.audit_ok else 'BROKEN'}")
    typer.echo(f"Views in the two stores (EU ingest and analytics): {result.views_before} before, {result.views_after} after")
    typer.echo("")
    exe = sys.argv[0] if Path(sys.argv[0]).name == "erasure" else "erasure"
    typer.echo("Look around with, for example:")
    typer.echo(f"  export ERASURE_CONFIG={result.config_path} {result.key_env}={result.key_hint}")
    typer.echo(f"  {exe} requests list")
    typer.echo(f"  {exe} requests show {result.requests[0].reference if result.requests else 'ER-...'}")
    typer.echo(f"  {exe} audit verify")
    typer.echo(f"  {exe} status")


# ---------------------------------------------------------------- poll


@app.command()
def poll(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Read and decide, count matching views; change nothing, move nothing, send nothing."),
    watch: bool = typer.Option(False, "--watch", help="Stay connected and process mail as it arrives (IMAP IDLE)."),
) -> None:
    """Fetch new mail, move every request as far as it can go, then send queued replies.

    Meant for cron: a second run while one is active exits at once (0); exit 75
    when the mailbox or a database is unreachable; exit 1 when something needs a
    person (review, approval, parked replies).

    Example (crontab, every 5 minutes): */5 * * * * erasure --config /etc/erasure/erasure.toml poll
    """
    from erasure.runner import poll_once, watch_forever

    with errors():
        config: Config = ctx.obj.config
        if watch:
            if dry_run:
                raise ConfigError("--watch and --dry-run cannot be combined")
            watch_forever(config, report=lambda result: typer.echo(result.summary()))
            return
        result = poll_once(config, dry_run=dry_run)
    if dry_run:
        for o in result.outcomes:
            per_store = (f" ({', '.join(f'{n} in {store}' for store, n in o.matches_by_store.items())})"
                         if o.matches_by_store and len(o.matches_by_store) > 1 else "")
            typer.echo(f"{o.reference}: would be {o.status} ({o.reason_code}); tenant {o.tenant or '-'}; "
                       f"{'' if o.match_count is None else f'{o.match_count} matching rows{per_store}'}".rstrip("; "))
    for problem in result.problems:
        typer.echo(f"problem: {problem}", err=True)
    typer.echo(result.summary())
    if result.needs_attention:
        raise typer.Exit(EXIT_ATTENTION)


# ---------------------------------------------------------------- requests


@requests_app.command("list")
def requests_list(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", help="Only this state, e.g. needs_review."),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant."),
    overdue: bool = typer.Option(False, "--overdue", help="Only open requests past their due date."),
    due_within: Optional[int] = typer.Option(None, "--due-within", min=0, help="Only open requests due within DAYS days (overdue included)."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array (fields documented in docs/json.md)."),
) -> None:
    """The register: every request with its state and due date.

    Example: erasure requests list --status needs_review --due-within 7
    """
    from erasure.register import list_requests

    with errors(), _desk(ctx) as desk:
        summaries = list_requests(desk.state, today=desk.today(), time_zone=desk.config.policy.time_zone,
                                  status=status, tenant=tenant,
                                  overdue=overdue, due_within=due_within)
    rows = [r.to_json() for r in summaries]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("no requests")
        return
    headers = ["reference", "tenant", "law", "channel", "state", "received", "due", "days left"]
    table = [
        [r["reference"], r["tenant"] or "-", r["regulation"].upper(), r["channel"], r["status"], r["received_on"], r["due"],
         "" if r["days_left"] is None else (f"{r['days_left']}" + (" OVERDUE" if r["overdue"] else ""))]
        for r in rows
    ]
    _print_table(headers, table, highlight=[r["overdue"] for r in rows])


@requests_app.command("show")
def requests_show(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="The request reference, e.g. ER-2026-000001."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object (fields documented in docs/json.md)."),
) -> None:
    """One request: its subjects (masked), the reason for any review, its events and replies.

    Example: erasure requests show ER-2026-000001
    """
    with errors(), _desk(ctx) as desk:
        data = desk.find(reference).to_json()
    if as_json:
        _print_json(data)
        return
    lines = [
        f"{data['reference']}  {data['status']}  ({data['regulation'].upper()}, {data['channel']})",
        f"tenant:     {data['tenant'] or '-'}",
        f"requester:  {data['requester'] or '-'}",
        f"received:   {data['received_on']} (office time; {data['received_at']})",
        f"due:        {data['due']}" + (" OVERDUE" if data["overdue"] else ""),
    ]
    if data["controller_due"]:
        lines.append(f"controller: due {data['controller_due']} (the customer's own deadline)")
    if data["reason_code"]:
        lines.append(f"reason:     {data['reason_code']}: {data['reason']}")
    for hold in data["holds"]:
        lines.append(f"held:       {hold['id']} on {hold['scope']}: {hold['reason']} "
                     f"(nothing is erased until `erasure holds remove {hold['id']}`)")
    if data["rows_erased"] is not None:
        lines.append(f"erased:     {data['rows_erased']} row(s)")
    for part in data["stores"]:
        name = part["store"] + (f" ({part['description']})" if part["description"] else "")
        tables = ", ".join(f"{n} from {t}" for t, n in part["counts"].items())
        state = part["state"] + (f", {part['rows_erased']} row(s): {tables}" if part["state"] == "verified" else "")
        if part["last_error"] and part["state"] != "verified":
            state += f", {part['attempts']} attempt(s), last error: {part['last_error']}"
        lines.append(f"store:      {name}: {state}")
    lines.append(f"subjects:   {', '.join(data['subjects']) or '-'}")
    if data["refusal_code"]:
        lines.append(f"refused:    the whole request, {data['refusal_code']}")
    lines += [f"refused:    {d['subject']}: {d['code']}" + (f" ({d['citation']})" if d["citation"] else "")
              + (f": {d['reason']}" if d["reason"] else "") for d in data["refused"]]
    lines.append("events:")
    lines += [f"  {e['seq']:>6}  {e['at'][:19]}  {e['actor']:<10} {e['event']}" + (f": {e['reason']}" if e["reason"] else "")
              for e in data["events"]]
    lines.append("replies:" + ("" if data["replies"] else " none"))
    lines += [f"  {m['kind']} to {m['to']}: {m['status']}" + (f" ({m['last_error']})" if m["last_error"] else "")
              for m in data["replies"]]
    typer.echo("\n".join(lines))


def _decision_output(outcome: Any) -> None:
    typer.echo(f"{outcome.reference}: {outcome.status}" + (f" ({outcome.rows_erased} rows erased)" if outcome.rows_erased is not None else ""))
    if outcome.needs_attention:
        raise typer.Exit(EXIT_ATTENTION)


ActorOption = typer.Option(None, "--actor", help="Who decides (recorded in the audit trail). Default: your login name.")


@requests_app.command("add")
def requests_add(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", help="The tenant whose views are erased."),
    viewer_id: list[str] = typer.Option(..., "--viewer-id", help="A viewer id, exactly as the customer gave it; repeat for more."),
    regulation: Optional[str] = typer.Option(None, "--regulation", help="gdpr or ccpa. Default: policy.default_regulation."),
    requester: Optional[str] = typer.Option(None, "--requester", help="Address to send replies to. Default: no replies."),
    actor: Optional[str] = ActorOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the ids and count what would be erased; record nothing."),
    received_on: str | None = typer.Option(
        None, "--received-on", metavar="YYYY-MM-DD",
        help="The day the letter, phone call or form reached us (office time zone, policy.time_zone; not in the "
             "future), so the request is dated and due from its receipt, not from the day it is typed in. "
             "Default: today."),
    channel: str | None = typer.Option(
        None, "--channel", metavar="letter|phone|form|email",
        help="How the request reached us; stored as manual:<channel> (mail the poll reads is \"email\" on its own)."),
    controller_received_on: str | None = typer.Option(
        None, "--controller-received-on", metavar="YYYY-MM-DD",
        help="The day the request reached the controller (your customer, in the processor role); the due date "
             "is then the earlier of its legal deadline and policy.processor_response_days from our receipt."),
) -> None:
    """Record a request that came by letter, phone or web form, and process it.

    Example: erasure requests add --tenant acme --viewer-id v-1234 --regulation gdpr --requester privacy@acme.example --received-on 2026-11-20 --channel letter --controller-received-on 2026-11-18
    """
    with errors():
        ours = _date_option(received_on, "--received-on")
        theirs = _date_option(controller_received_on, "--controller-received-on")
        if regulation is not None and regulation not in tuple(Regulation):
            raise UsageError(f"--regulation {regulation!r}: use one of {', '.join(Regulation)}")
        if requester is not None:
            from erasure.parse import strict_address

            if strict_address(requester) is None:
                raise ConfigError(f"--requester {requester!r} is not one plain email address")
        with _desk(ctx) as desk:
            if dry_run:
                _preview(desk.preview_manual(tenant=tenant, viewer_ids=viewer_id, channel=channel, received_on=ours))
                return
            outcome = desk.add_manual(tenant=tenant, viewer_ids=viewer_id, regulation=regulation, requester=requester,
                                      actor=actor, received_on=ours, channel=channel, controller_received_on=theirs)
            _deliver(ctx, desk)
    _decision_output(outcome)


def _date_option(value: str | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD option as a date; a UsageError naming the option otherwise."""
    if value is None:
        return None
    # fromisoformat alone would also take 20261120 and week dates: only the documented form.
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date; write it as YYYY-MM-DD") from None


def _preview(result: Any) -> None:
    """The dry run's counts: per table, and per store when there are several."""
    parts = result.to_json()

    def tables(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} from {table}" for table, n in counts.items())

    if len(parts) == 1:
        typer.echo(f"dry run: would erase {result.total} row(s): {tables(next(iter(parts.values())))}; nothing was changed")
        return
    typer.echo(f"dry run: would erase {result.total} row(s) in {len(parts)} stores; nothing was changed")
    for store, counts in parts.items():
        typer.echo(f"  {store}: {sum(counts.values())} row(s): {tables(counts)}")


def _deliver(ctx: typer.Context, desk: Any) -> None:
    from erasure.runner import deliver_outbox

    report = deliver_outbox(desk.config, desk.state)
    for problem in report.problems:
        typer.echo(f"problem: {problem}", err=True)


@requests_app.command("approve")
def requests_approve(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="The request reference."),
    tenant: Optional[str] = typer.Option(
        None, "--tenant",
        help="Set the tenant of a review case whose sender was unknown. Naming a tenant other than the one the "
        "request was verified for also needs --override-tenant and --reason.",
    ),
    override_tenant: bool = typer.Option(
        False, "--override-tenant",
        help="Approve for --tenant although the request was verified for another tenant; recorded in the audit "
        "trail. Letters then go to that tenant's contact ([[tenants]] contact), never to the other tenant's requester.",
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (required with --override-tenant; kept in the audit trail)."),
    actor: Optional[str] = ActorOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Run the checks and count what would be erased; change nothing."),
) -> None:
    """Let an erasure that waits for approval, or a reviewed request, go ahead now.

    Example: erasure requests approve ER-2026-000007 --tenant acme
    """
    with errors(), _desk(ctx) as desk:
        if dry_run:
            preview = desk.preview_approval(reference, tenant=tenant, override_tenant=override_tenant, reason=reason)
            _preview(preview.result)
            for note in preview.notes:
                typer.echo(f"note: {note}")
            return
        outcome = desk.approve(reference, actor=actor, tenant=tenant, override_tenant=override_tenant, reason=reason)
        _deliver(ctx, desk)
    for note in outcome.notes:
        typer.echo(f"note: {note}")
    _decision_output(outcome)


@requests_app.command("reject")
def requests_reject(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="The request reference."),
    code: Optional[str] = typer.Option(
        None, "--code", metavar="CODE",
        help="The legal ground (the letter states its basis): " + ", ".join(REFUSALS)
        + ". `erasure requests codes` prints each with its citation."),
    reason: Optional[str] = typer.Option(
        None, "--reason",
        help="Why, in your words; the requester is told, with their right to complain. Required without "
        "--code, and with --code other."),
    viewer_id: list[str] = typer.Option(
        [], "--viewer-id",
        help="Refuse only this id (exactly as the request names it); repeat for more. The rest of the request "
        "goes ahead; refusing every id rejects the request."),
    actor: Optional[str] = ActorOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON object (fields documented in docs/json.md)."),
) -> None:
    """Refuse a request, or some of its viewer ids, telling the requester why and where they may complain.

    Example: erasure requests reject ER-2026-000003 --code gdpr-17-3-e --viewer-id v-1234 --reason "Evidence in a pending lawsuit."
    """
    with errors(), _desk(ctx) as desk:
        outcome = desk.reject(reference, code=code, reason=reason, viewer_ids=viewer_id, actor=actor)
        _deliver(ctx, desk)
    if as_json:
        _print_json(outcome.to_json())
        raise typer.Exit(EXIT_ATTENTION if outcome.needs_attention else EXIT_OK)
    for note in outcome.notes:
        typer.echo(f"note: {note}")
    _decision_output(outcome)


@requests_app.command("codes")
def requests_codes(
    regulation: Optional[str] = typer.Option(None, "--regulation", help="Only the codes for gdpr or ccpa requests."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array (fields documented in docs/json.md)."),
) -> None:
    """The refusal codes for `requests reject --code`, each with its citation and the basis a letter states.

    Example: erasure requests codes --regulation ccpa
    """
    from erasure.refusals import codes_for

    with errors():
        if regulation is not None and regulation not in tuple(Regulation):
            raise UsageError(f"--regulation {regulation!r}: use one of {', '.join(Regulation)}")
    refusals = codes_for(regulation)
    if as_json:
        _print_json([r.to_json() for r in refusals])
        return
    lines: list[str] = []
    for r in refusals:
        lines.append(f"{r.code}  ({r.title})")
        for law in r.regulations:
            if regulation is None or law == regulation:
                lines.append(f"    {law.upper()}: {r.citation(law)}: {r.basis(law).text}")
    typer.echo("\n".join(lines))


@requests_app.command("cancel")
def requests_cancel(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="The request reference."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit trail)."),
    actor: Optional[str] = ActorOption,
) -> None:
    """Withdraw a request before erasure has begun; no reply is sent.

    Example: erasure requests cancel ER-2026-000009 --reason "Entered twice; see ER-2026-000008."
    """
    with errors(), _desk(ctx) as desk:
        outcome = desk.cancel(reference, reason=reason, actor=actor)
    typer.echo(f"{outcome.reference}: {outcome.status}")


@requests_app.command("extend")
def requests_extend(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="The request reference."),
    reason: str = typer.Option(..., "--reason", help="Why more time is needed; the requester is told."),
    actor: Optional[str] = ActorOption,
) -> None:
    """Extend the deadline (GDPR by two months, CCPA by 45 days), telling the requester why.

    Example: erasure requests extend ER-2026-000004 --reason "The request covers several thousand viewer ids."
    """
    with errors(), _desk(ctx) as desk:
        outcome = desk.extend(reference, reason=reason, actor=actor)
        _deliver(ctx, desk)
    typer.echo(f"{outcome.reference}: {outcome.status}, extended")


@requests_app.command("acknowledge")
def requests_acknowledge(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="The request reference."),
    note: str = typer.Option(..., "--note", help="How and when receipt was confirmed (kept in the audit trail)."),
    actor: Optional[str] = ActorOption,
) -> None:
    """Record that receipt was confirmed by other means (CCPA 7021(a)); nothing is sent.

    For a request the tool may not answer itself (an unknown sender, a viewer
    writing to us directly): `erasure status` lists it once its acknowledgement
    date passes, until you confirm receipt yourself and record it here.

    Example: erasure requests acknowledge ER-2026-000011 --note "Wrote from privacy@ on 2026-11-20."
    """
    with errors(), _desk(ctx) as desk:
        outcome = desk.record_acknowledgement(reference, note=note, actor=actor)
    typer.echo(f"{outcome.reference}: {outcome.status}, receipt confirmed by other means")


# ---------------------------------------------------------------- legal holds


def _hold_line(h: Any) -> str:
    return f"{h.ref}: legal hold on {h.scope}, holding {len(h.holding)} open request(s)" + (
        f" ({', '.join(h.holding)})" if h.holding else "")


@holds_app.command("add")
def holds_add(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", help="The tenant whose data must be kept."),
    viewer_id: Optional[str] = typer.Option(
        None, "--viewer-id", help="Only this viewer of the tenant, exactly as the customer's records have it "
        "(kept only as its HMAC). Default: every request of the tenant."),
    reason: str = typer.Option(..., "--reason", help="What the data is kept for (a case, a regulator's request); "
                               "kept in the audit trail, never told to the customer."),
    actor: Optional[str] = ActorOption,
) -> None:
    """Put a tenant, or one of its viewers, under legal hold: no request it covers is erased.

    Requests it covers wait in awaiting_approval (reason legal_hold) instead of being erased, and
    `requests approve` refuses them, until `erasure holds remove`. The customer is not told.

    Example: erasure holds add --tenant acme --viewer-id v-1234 --reason "Preservation order, case 24-cv-1234"
    """
    with errors(), _desk(ctx) as desk:
        hold = desk.add_hold(tenant=tenant, viewer_id=viewer_id, reason=reason, actor=actor)
    typer.echo(_hold_line(hold))


@holds_app.command("list")
def holds_list(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Also the holds that were removed."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array (fields documented in docs/json.md)."),
) -> None:
    """The active legal holds (or all of them), each with the open requests it holds.

    Example: erasure holds list --all
    """
    with errors(), _desk(ctx) as desk:
        found = desk.list_holds(include_released=show_all)
    if as_json:
        _print_json([h.to_json() for h in found])
        return
    if not found:
        typer.echo("no legal holds" if show_all else "no active legal holds")
        return
    rows = [
        [h.ref, h.tenant, "tenant" if h.viewer_hmac is None else f"viewer hmac:{h.viewer_hmac[:12]}",
         str(len(h.holding)) if h.active else "-", h.created_at.strftime("%Y-%m-%d"), h.actor,
         "active" if h.active else f"removed {h.released_at:%Y-%m-%d} by {h.released_by}", h.reason]
        for h in found
    ]
    _print_table(["id", "tenant", "covers", "holding", "added", "by", "state", "reason"], rows)


@holds_app.command("remove")
def holds_remove(
    ctx: typer.Context,
    hold_id: str = typer.Argument(..., metavar="HOLD_ID", help="The hold's id, e.g. LH-3 (see `erasure holds list`)."),
    reason: str = typer.Option(..., "--reason", help="Why the hold ended (kept in the audit trail)."),
    actor: Optional[str] = ActorOption,
) -> None:
    """Remove a legal hold; the requests it alone was holding go on at once (classified again,
    or their erasure resumed), and their letters are sent.

    Example: erasure holds remove LH-3 --reason "Case 24-cv-1234 settled; counsel released the hold"
    """
    with errors(), _desk(ctx) as desk:
        removal = desk.remove_hold(hold_id, reason=reason, actor=actor)
        _deliver(ctx, desk)
    typer.echo(f"{removal.hold.ref} removed; {len(removal.released)} request(s) released, "
               f"{len(removal.still_held)} still held by other holds"
               + (f" ({', '.join(removal.still_held)})" if removal.still_held else ""))
    for o in removal.released:
        typer.echo(f"  {o.reference}: {o.status}" + (f" ({o.rows_erased} rows erased)" if o.rows_erased is not None else ""))
    for problem in removal.problems:
        typer.echo(f"problem: {problem}", err=True)
    if removal.needs_attention:
        raise typer.Exit(EXIT_ATTENTION)


# ---------------------------------------------------------------- audit


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    expect_head: Optional[str] = typer.Option(None, "--expect-head", help="SEQ:HASH from an earlier `erasure audit head`; detects a cut or rebuilt tail."),
) -> None:
    """Recompute the hash chain; exit 1 and name the first bad event if anything was changed.

    Example: erasure audit verify --expect-head 1042:9f2c...
    """
    from erasure import audit

    with errors():
        head = audit.ChainHead.parse(expect_head) if expect_head else None
        with _desk(ctx) as desk, desk.state.session() as session:
            result = audit.verify(session, head)
    if result.ok:
        typer.echo(f"audit trail intact: {result.events} events, head {result.head or 'empty'}")
        return
    typer.echo(f"audit trail BROKEN at event {result.first_bad_seq}: {result.problem}")
    raise typer.Exit(EXIT_ATTENTION)


@audit_app.command("head")
def audit_head(ctx: typer.Context) -> None:
    """Print the newest event as SEQ:HASH, to keep somewhere the database's owner cannot edit.

    Example: erasure audit head >> /secure/erasure-heads.txt
    """
    from erasure import audit

    with errors(), _desk(ctx) as desk, desk.state.session() as session:
        head = audit.head(session)
    typer.echo(str(head) if head else "0:" + audit.GENESIS)


def _parse_when(value: Optional[str], option: str) -> Optional[dt.datetime]:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date or time; use e.g. 2026-01-31 or 2026-01-31T12:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _open_output(path: Path, option: str):  # type: ignore[no-untyped-def]
    """An output file for personal data: created 0600 (see erasure/files.py)."""
    from erasure.files import open_private

    try:
        return open_private(path, "w", newline="")
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write it: {exc.strerror or exc}; name a writable file") from exc


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    fmt: str = typer.Option("jsonl", "--format", help="csv or jsonl."),
    since: Optional[str] = typer.Option(None, "--since", help="From this UTC date/time (inclusive)."),
    until: Optional[str] = typer.Option(None, "--until", help="Up to this UTC date/time (exclusive)."),
    request: Optional[str] = typer.Option(None, "--request", help="Only one request's events."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file instead of standard output."),
) -> None:
    """Export events with their chain fields, streaming, for an auditor to verify independently.

    Columns: seq, at, actor, event, request_ref, tenant, reason, data, prev_hash, hash, personal
    (see docs/audit.md). The chain holds salted digests of personal values; `personal` gives each
    value while it is kept, or says when and by which records_pruned event it was pruned.

    Example: erasure audit export --format csv --since 2026-01-01 -o audit-2026.csv
    """
    from erasure import audit

    with errors():
        if fmt not in ("csv", "jsonl"):
            raise ConfigError(f"--format {fmt!r}: use csv or jsonl")
        start, end = _parse_when(since, "--since"), _parse_when(until, "--until")
        with _desk(ctx) as desk:
            out = _open_output(output, "--output") if output else sys.stdout
            try:
                with desk.state.session() as session:
                    for chunk in audit.export_lines(audit.iter_export(session, since=start, until=end, request_ref=request), fmt):  # type: ignore[arg-type]
                        out.write(chunk)
            finally:
                if output:
                    out.close()


@audit_app.command("find")
def audit_find(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", help="The tenant the viewer belongs to."),
    viewer_id: str = typer.Option(..., "--viewer-id", help="The viewer id, exactly."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array (fields documented in docs/json.md)."),
) -> None:
    """Was this viewer erased, when, and by which request? (Looks up the HMAC; the id is not stored.)

    Example: erasure audit find --tenant acme --viewer-id v-1234
    """
    from erasure import audit

    with errors(), _desk(ctx) as desk, desk.state.session() as session:
        found = audit.find_viewer(session, desk.config.audit_keys(), tenant, viewer_id)
    if as_json:
        _print_json([
            {"reference": f.reference, "status": f.status, "received_at": f.received_at.isoformat(),
             "closed_at": f.closed_at.isoformat() if f.closed_at else None, "rows_erased": f.rows_erased,
             "refused": f.refusal_code}
            for f in found
        ])
        return
    if not found:
        typer.echo("no request named this viewer id for this tenant")
        return
    for f in found:
        typer.echo(f"{f.reference}: {f.status}, received {f.received_at:%Y-%m-%d}"
                   + (f", closed {f.closed_at:%Y-%m-%d}" if f.closed_at else "")
                   + (f", {f.rows_erased} row(s) erased" if f.rows_erased is not None else "")
                   + (f"; this viewer id was refused ({f.refusal_code}): its views were kept" if f.refusal_code else ""))


# ---------------------------------------------------------------- outbox


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(None, "--status", help="queued, sent or parked."),
    as_json: bool = typer.Option(False, "--json", help="A JSON array."),
) -> None:
    """Replies and their delivery state; parked ones show why.

    Example: erasure outbox list --status parked
    """
    from erasure.outbox import list_outbox

    with errors(), _desk(ctx) as desk:
        rows = [m.to_json() for m in list_outbox(desk.state, status=status)]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("outbox empty")
        return
    typer.echo(format_table(
        ["id", "request", "kind", "to", "status", "tries", "problem"],
        [[str(r["id"]), r["request"], r["kind"], r["to"], r["status"], str(r["attempts"]),
          r["last_error"] or (f"being sent by {r['claimed_by']} (claim runs out {r['claimed_until'][:19]})"
                              if r["claimed_until"] else "")] for r in rows],
    ))


@outbox_app.command("retry")
def outbox_retry(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(None, help="Outbox ids to retry; default: every parked or deferred reply."),
    actor: str | None = typer.Option(None, "--actor", help="Who releases them (recorded in the audit trail). Default: your login name."),
) -> None:
    """Queue parked or deferred replies again and try to send them now.

    Example: erasure outbox retry 12 13
    """
    from erasure.outbox import retry_outbox
    from erasure.runner import deliver_outbox
    from erasure.workflow import default_actor

    with errors(), _desk(ctx) as desk:
        n = retry_outbox(desk.state, ids, actor=actor or default_actor())
        typer.echo(f"{n} repl{'y' if n == 1 else 'ies'} queued again")
        report = deliver_outbox(desk.config, desk.state)
    typer.echo(f"{report.sent} sent, {report.deferred} deferred, {report.parked} parked")
    for problem in report.problems:
        typer.echo(f"problem: {problem}", err=True)
    if report.deferred or report.parked:
        raise typer.Exit(EXIT_ATTENTION)


# ---------------------------------------------------------------- retention


@retention_app.command("purge")
def retention_purge(
    ctx: typer.Context,
    days: Optional[int] = typer.Option(None, "--days", min=1, help="Retention period in days for every store. Default: each store's retention_days, else policy.retention_days."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
) -> None:
    """Delete views older than the retention period, in chunks, with progress; and
    request records closed longer ago than policy.record_retention_months, with their
    personal values in the audit trail (the chain keeps only salted digests and still verifies).

    Example (daily cron): 30 3 * * * erasure retention purge
    """
    from erasure.runner import prune_records, purge

    with errors():
        config: Config = ctx.obj.config
        results = purge(config, days=days, dry_run=dry_run,
                        progress=lambda table, n: typer.echo(f"  {table}: {n} row(s) so far", err=True))
        pruned = prune_records(config, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for name, result in results.items():
        where = f" from store {name!r} (older than {(result.cutoff).date()})" if len(results) > 1 else ""
        typer.echo(f"retention purge{where}: {verb} " + ", ".join(f"{n} from {t}" for t, n in result.counts.items()))
    typer.echo(f"request records past {config.policy.record_retention_months} months: {verb} {len(pruned)}")


# ---------------------------------------------------------------- suppression


@suppression_app.command("sweep")
def suppression_sweep(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
) -> None:
    """Delete views that arrived, since their erasure, under viewer ids of completed requests,
    in the same tenant only. Off unless policy.suppression = true (by default such views are new data).

    Exits 1 when erased ids hashed with an unavailable key could not be checked (see audit.retired_keys).

    Example (daily cron, next to the retention purge): 45 3 * * * erasure suppression sweep
    """
    from erasure.suppression import sweep_configured

    with errors():
        config: Config = ctx.obj.config
        results = sweep_configured(config, dry_run=dry_run,
                                   progress=lambda tenant, what, n: typer.echo(f"  {tenant}: {n} {what} so far", err=True))
    verb = "would delete" if dry_run else "deleted"
    for result in results:
        where = f"store {result.store!r}: " if len(results) > 1 else ""
        for name, t in result.tenants.items():
            rows = ", ".join(f"{n} from {table}" for table, n in t.counts.items())
            typer.echo(f"suppression sweep: {where}{name}: {t.ids_matched} erased viewer id(s) seen again; {verb} {rows}")
            if t.held:
                typer.echo(f"suppression sweep: {where}{name}: {t.ids_held} erased viewer id(s) kept for legal hold "
                           f"{', '.join(t.held)} (see `erasure holds list`)")
        typer.echo(f"suppression sweep: {where}{verb} {result.total} row(s) under {result.ids_matched} viewer id(s)")
    unchecked = results[0].unchecked if results else {}  # the same subjects are checked in every store
    if unchecked:
        for version, n in sorted(unchecked.items()):
            typer.echo(f"warning: {n} erased viewer id(s) hashed with key version {version} were not checked: "
                       f"its key is not available; list it in audit.retired_keys", err=True)
        raise typer.Exit(EXIT_ATTENTION)


# ---------------------------------------------------------------- the officer's desk


@app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object (fields documented in docs/json.md)."),
) -> None:
    """The morning screen: requests by state, overdue and due this week, parked replies, last poll, audit chain.

    Exits 1 when something needs attention (overdue, review, approval, a CCPA
    acknowledgement missed, parked replies, no successful poll in 24 hours, a
    broken audit chain), so a monitoring check can alert on it.

    Example: erasure status || mail -s "erasure needs attention" privacy-officer@example.com
    """
    from erasure import monitoring
    from erasure.deadlines import received_date
    from erasure.status import status

    with errors(), _desk(ctx) as desk:
        now = desk.now()
        today = received_date(now, desk.config.policy)
        with desk.state.session() as session:
            facts = monitoring.facts(session, desk.config, now=now, today=today)
        with desk.state.session() as session:
            result = status(session, today=today, config=desk.config, now=now)
    if as_json:
        _print_json(result.to_json() | {"metrics": facts.to_json()})
    else:
        typer.echo(result.text())
    if result.needs_attention:
        raise typer.Exit(EXIT_ATTENTION)


@app.command("metrics")
def metrics_command(
    ctx: typer.Context,
    textfile: Optional[Path] = typer.Option(
        None, "--textfile", help="Write the metrics to this .prom file (atomically) instead of printing them, "
                                 "for node_exporter's textfile collector. Default: print.",
    ),
) -> None:
    """The desk's figures in the Prometheus text format: requests by state and tenant, overdue and
    due soon, the oldest open request, the last poll (time, duration, messages), rows erased per
    store and table, replies by state, the audit head, failing stores.

    Set monitoring.textfile to have every `erasure poll` refresh a file instead. Reads only
    cheap facts (never the whole audit chain), so it is safe to run every minute.

    Example: erasure metrics --textfile /var/lib/prometheus/node-exporter/erasure.prom
    """
    from erasure import monitoring

    with errors(), _desk(ctx) as desk:
        with desk.state.session() as session:
            facts = monitoring.facts(session, desk.config, now=desk.now(), today=desk.today())
        if textfile is not None:
            monitoring.write_textfile(textfile, facts, desk.config)
            return
    sys.stdout.write(monitoring.prometheus_text(facts, desk.config).decode())


@app.command("check")
def check_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="A JSON array of {name, ok, seconds, detail}."),
) -> None:
    """Reach every dependency a poll needs, changing nothing: the state database, the mailbox,
    every view store and the SMTP server (or reply folder). Prints each with its latency.

    Exits 0 when all answer, 75 naming what is down (so a deploy can gate on it), 2 for a
    configuration error.

    Example: erasure check && systemctl start erasure-poll.timer
    """
    from erasure.health import check_all

    with errors():
        checks = check_all(ctx.obj.config)
    if as_json:
        _print_json([c.to_json() for c in checks])
    else:
        for c in checks:
            typer.echo(f"{'ok  ' if c.ok else 'DOWN'}  {c.name:<24} {c.seconds * 1000:8.0f} ms  {c.detail}")
    down = [c.name for c in checks if not c.ok]
    if down:
        typer.echo(f"erasure check: down: {', '.join(down)}", err=True)
        raise typer.Exit(EXIT_TEMPFAIL)


@app.command("report")
def report_command(
    ctx: typer.Context,
    year: Optional[int] = typer.Option(None, "--year", help="Requests received in this calendar year. Default: this year, so far."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report with charts to this file."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object (fields documented in docs/json.md)."),
) -> None:
    """The yearly figures a business publishes (CCPA 11 CCR 7102), per request type and per regulation.

    Requests to delete, to know and other requests: received, complied with,
    denied (and denials by refusal code), median and mean days to respond;
    with --html, also charts by month, days to close and backlog. When GDPR
    requests are counted too, the report says so (7102(b)).

    Requests count in the year they were received (policy.time_zone); ignored automatic mail is not counted.

    Example: erasure report --year 2026 --html privacy-metrics-2026.html
    """
    from erasure.deadlines import received_date
    from erasure.files import write_private
    from erasure.metrics import yearly_metrics
    from erasure.report import render_html

    with errors(), _desk(ctx) as desk:
        now = desk.now()
        today = received_date(now, desk.config.policy)
        with desk.state.session() as session:
            metrics = yearly_metrics(session, today.year if year is None else year,
                                     time_zone=desk.config.policy.time_zone, today=today)
        if html is not None:
            try:
                write_private(html, render_html(metrics, generated_at=now,
                                                organisation=desk.config.controller.name))
            except OSError as exc:
                raise ConfigError(f"--html {html}: cannot write the report: {exc.strerror}") from exc
    if as_json:
        _print_json(metrics.to_json())
        return
    typer.echo(metrics.text())
    if html is not None:
        typer.echo(f"HTML report written to {html}")


def main() -> None:
    app()
