"""The officer's desk, shared by its tests: a register of requests computed by hand, and the commands.

``REGISTER`` is checked by tests/test_metrics.py (the figures), tests/test_report.py
(the HTML page) and tests/test_status.py (the morning screen through the CLI).
Test modules take the fixtures by assignment (``state = desk.state``) so that
pytest finds them without a shared conftest.
"""

from __future__ import annotations

import datetime as dt

import pytest

from erasure.metrics import RequestRow, load_rows
from erasure.models import ErasureRequest
from erasure.state import open_state

UTC = dt.UTC
BERLIN = "Europe/Berlin"
D = dt.date


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---------------------------------------------------------------- the hand-computed register
#
# Office time zone Europe/Berlin (UTC+1 in winter, +2 in summer). Columns:
# name, regulation, kind, status/response, received (UTC), closed (UTC), due_on, extended_to.
#
#  name reg  received (Berlin)  closed (Berlin)   outcome        days  due         late
#  A    gdpr 2026-01-10         2026-01-21        completed      11    2026-02-10  no
#  G    gdpr 2026-01-01 00:30   2026-01-02        completed       1    2026-02-01  no   (2025-12-31 23:30 UTC!)
#  B    gdpr 2026-02-01         2026-03-05        no_data_found  32    2026-03-01  YES
#  C    ccpa 2026-03-02         2026-03-04        rejected        2    2026-04-16  no   (kind access)
#  D    ccpa 2026-03-15         2026-05-20        completed      66    ext. 2026-05-29 no
#  F    gdpr 2026-04-01         2026-04-01        ignored         -    automatic mail, not a request
#  K    gdpr 2026-06-10         2026-06-12        cancelled       -    withdrawn: not counted, shown apart
#  E    ccpa 2026-11-20         open (needs_review)                  2027-01-04
#  I    gdpr 2026-12-10         2027-01-01 00:30  completed      22    2027-01-10  no   (closed 2026-12-31 23:30 UTC)
#  H    ccpa 2025-12-20         2026-01-08        completed      19    2026-02-03  no   (a 2025 request)
#
# 2026, as of 2027-01-15:
#   GDPR: received 4 (A G B I), complied 4 (3 completed + 1 no data), denied 0, pending 0, late 1,
#         days [1, 11, 22, 32]: median 16.5, mean 16.5
#   CCPA: received 3 (C D E), complied 1, denied 1, pending 1, late 0, days [2, 66]: median 34, mean 34
#   All:  received 7, complied 5, denied 1, pending 1, late 1,
#         days [1, 2, 11, 22, 32, 66]: median 16.5, mean 22.33 -> 22.3
#   ignored automatic mail 1 (F); cancelled 1 (K); not erasure 1 (C)
#   per month: Jan gdpr 2, Feb gdpr 1, Mar ccpa 2, Nov ccpa 1, Dec gdpr 1; April 0 (F), June 0 (K)
#   histogram: 0-7: 2, 8-14: 1, 15-30: 1, 31-45: 1, 46-60: 0, 61-90: 1, 91+: 0
#   open at month ends: Jan 0, Feb 1 (B), Mar 1 (D), Apr 1 (D), May..Oct 0, Nov 1 (E), Dec 2 (E, I)

REGISTER = [
    # name, regulation, kind, outcome, received_at, closed_at, due_on, extended_to
    ("A", "gdpr", "erasure", "completed", "2026-01-10T09:00", "2026-01-21T10:00", D(2026, 2, 10), None),
    ("G", "gdpr", "erasure", "completed", "2025-12-31T23:30", "2026-01-02T10:00", D(2026, 2, 1), None),
    ("B", "gdpr", "erasure", "no_data_found", "2026-02-01T12:00", "2026-03-05T12:00", D(2026, 3, 1), None),
    ("C", "ccpa", "access", "rejected", "2026-03-02T08:00", "2026-03-04T08:00", D(2026, 4, 16), None),
    ("D", "ccpa", "erasure", "completed", "2026-03-15T08:00", "2026-05-20T08:00", D(2026, 4, 29), D(2026, 5, 29)),
    ("F", "gdpr", "other", "ignored", "2026-04-01T08:00", "2026-04-01T08:05", D(2026, 5, 1), None),
    ("K", "gdpr", "erasure", "cancelled", "2026-06-10T08:00", "2026-06-12T08:00", D(2026, 7, 10), None),
    ("E", "ccpa", "erasure", "needs_review", "2026-11-20T08:00", None, D(2027, 1, 4), None),
    ("I", "gdpr", "erasure", "completed", "2026-12-10T08:00", "2026-12-31T23:30", D(2027, 1, 10), None),
    ("H", "ccpa", "erasure", "completed", "2025-12-20T10:00", "2026-01-08T10:00", D(2026, 2, 3), None),
]

STATUS_OF = {"completed": "completed", "no_data_found": "completed", "rejected": "rejected", "ignored": "ignored",
             "cancelled": "cancelled"}
AS_OF = D(2027, 1, 15)


def make_request(name, regulation, kind, outcome, received, closed, due_on, extended_to, **extra) -> ErasureRequest:
    received_at = at(received)
    return ErasureRequest(
        reference=f"ER-TEST-{name}",
        channel="email",
        status=STATUS_OF.get(outcome, outcome),
        planned="ignore" if outcome == "ignored" else "erase",
        kind=kind,
        regulation=regulation,
        tenant=extra.pop("tenant", "acme"),
        received_at=received_at,
        due_on=due_on,
        extended_to=extended_to,
        response=outcome if outcome in STATUS_OF else None,
        closed_at=at(closed) if closed else None,
        created_at=received_at,
        updated_at=at(closed) if closed else received_at,
        **extra,
    )


@pytest.fixture
def state(tmp_path):
    s = open_state(f"sqlite:///{tmp_path / 's.db'}")
    yield s
    s.close()


@pytest.fixture
def register(state):
    with state.session() as session:
        session.add_all(make_request(*row) for row in REGISTER)
    return state


def rows_in_berlin(state) -> list[RequestRow]:
    with state.session() as session:
        return load_rows(session, time_zone=BERLIN)


# ---------------------------------------------------------------- the commands


def _cli_has_desk_commands() -> bool:
    from erasure import cli

    return hasattr(cli, "status_command") and hasattr(cli, "report_command")


needs_desk_commands = pytest.mark.skipif(
    not _cli_has_desk_commands(), reason="`erasure status` and `erasure report` are not in cli.py yet (merge pending)"
)


@pytest.fixture
def config_file(tmp_path, register):
    path = tmp_path / "erasure.toml"
    path.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[policy]\ntime_zone = "{BERLIN}"\n')
    return path


def run_cli(*args):
    from typer.testing import CliRunner

    from erasure.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])

