"""The controller's receipt date: read from the mail (parse/received.py) or given by an officer,
and the deadlines, register, audit trail and status screen that follow from it (issue 14)."""

from __future__ import annotations

import datetime as dt
import json
import os
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import audit
from erasure.config import config_from_dict
from erasure.deadlines import add_months
from erasure.errors import UsageError
from erasure.models import AuditEvent, ErasureRequest
from erasure.parse import parse_message
from erasure.parse.problems import Collector
from erasure.parse.received import LABELS, controller_received_on
from erasure.status import status
from erasure.verify import REASONS
from tests import desk
from tests.desk import D, make_request
from tests.world import NOW, mail, zoned

state = desk.state

NOV_20 = dt.date(2026, 11, 20)


def read(text: str) -> tuple[dt.date | None, list[str]]:
    out = Collector()
    found = controller_received_on(text, out)
    return found, [p.code for p in out.problems]


# ---------------------------------------------------------------- the parse table

# One line per label a customer may write, in every language of the table.
STATED = [
    "Received from the data subject on: 2026-11-20",
    "Received on: 2026-11-20",
    "Date received: 2026-11-20",
    "Von der betroffenen Person erhalten am: 20.11.2026",
    "Erhalten am: 20.11.2026",
    "Eingegangen am: 2026-11-20",
    "Eingang am: 20.11.2026",
    "Reçu de la personne concernée le : 20/11/2026",
    "Reçu le: 20/11/2026",
    "Reçue le : 2026-11-20",
    "Date de réception : 20/11/2026",
    "Recibido del interesado el: 20/11/2026",
    "Recibido el: 20/11/2026",
    "Fecha de recepción: 2026-11-20",
    "Ricevuto dall'interessato il: 20/11/2026",
    "Ricevuto dall\u2019interessato il: 20/11/2026",  # typographic apostrophe
    "Ricevuto il: 20.11.2026",
    "Data di ricezione: 2026-11-20",
    "Ontvangen van de betrokkene op: 20.11.2026",
    "Ontvangen op: 2026-11-20",
    "Recebido do titular dos dados em: 20/11/2026",
    "Recebido em: 20/11/2026",
    "Data de receção: 2026-11-20",
    "Otrzymano od osoby, której dane dotyczą, dnia: 20.11.2026",
    "Otrzymano dnia: 20.11.2026",
    "Data otrzymania: 2026-11-20",
    "Mottaget från den registrerade den: 2026-11-20",
    "Mottaget den: 2026-11-20",
    "Mottagningsdatum: 2026-11-20",
    "Modtaget fra den registrerede den: 20.11.2026",
    "Modtaget den: 20.11.2026",
    "Vastaanotettu rekisteröidyltä: 20.11.2026",
    "Vastaanotettu: 20.11.2026",
    "Přijato od subjektu údajů dne: 20.11.2026",
    "Přijato dne: 20.11.2026",
    "Datum přijetí: 2026-11-20",
    "Recibida el: 2026-11-20",
    "Datum van ontvangst: 20.11.2026",
    "Ricevuta il: 2026-11-20",
    "Recebida em: 2026-11-20",
    "Data de recebimento: 20/11/2026",
    "Mottagen den: 2026-11-20",
    "Modtagelsesdato: 20.11.2026",
    "Vastaanottopäivä: 20.11.2026",
    # Case, spacing and indentation do not matter; the date's own spelling does.
    "RECEIVED ON: 2026-11-20",
    "   received   on :   2026-11-20   ",
    "\tReceived on:\t20.11.2026",
    "Received on: 20/11/2026",  # day above 12: only one reading
    "Received on: 11/11/2026",  # day equal to month: both readings agree
    "Received on: 2026-11-20\r",
]


@pytest.mark.parametrize("line", STATED)
def test_every_label_in_every_language_gives_the_date(line):
    assert read(f"Hello,\nplease erase this viewer.\n{line}\nViewer ID: v-1\n") == (
        dt.date(2026, 11, 11) if "11/11" in line else NOV_20, [])


def test_every_language_of_the_table_has_a_line_above():
    said = " ".join(STATED).casefold().replace("\u2019", "'")
    for language, labels in LABELS.items():
        assert all(label in said for label in labels), language


# Near misses that are still a receipt line: the date is doubtful, so a person looks.
DOUBTFUL = [
    "Received on: 05/11/2026",  # 5 November or 11 May?
    "Received on: 11/20/2026",  # the American order: never read as a guess
    "Received on: 20/11/26",  # two-digit year
    "Received on: 2026-11-31",  # no such day
    "Received on: 2026-13-01",
    "Received on: 31.02.2026",
    "Received on: 20 November 2026",  # words: not a documented form
    "Received on: Nov 20, 2026",
    "Received on: 2026/11/20",
    "Received on: 20261120",
    "Received on: 2026-11-20T10:00",
    "Received on: 2026-11-20 (by post)",  # trailing words
    "Received on: 2026-11-20 or 2026-11-21",
    "Received on: 2026-11-20, 2026-11-21",
    "Received on:",  # nothing after the label
    "Received on: yesterday",
    "Received on: ２０２６-１１-２０",  # full-width digits
    "Received on: \u0662\u0660\u0662\u0666-11-20",  # Arabic-Indic digits
    "Received on: 1926-11-20",  # a century ago: a typo
    "Received on: 0026-11-20",
    "Erhalten am: 20.11.2026.",
    "Reçu le: 20/11",
]


@pytest.mark.parametrize("line", DOUBTFUL)
def test_a_doubtful_date_after_a_label_is_a_problem_never_a_guess(line):
    assert read(f"Please erase.\n{line}\nViewer ID: v-1\n") == (None, ["received_on_unreadable"])


# Lines that are not receipt lines at all: not read, no problem.
NOT_A_LABEL = [
    "Received: 2026-11-20",  # a header's name, not our label
    "Received: from mx.acme.example by mx.privacy.example; Fri, 20 Nov 2026 10:00:00 +0000",
    "We received on 2026-11-20 a request",  # no colon after the label
    "Received on 2026-11-20",  # no colon: a sentence
    "The request was received on: 2026-11-20",  # not at the start of the line
    "Sent on: 2026-11-20",
    "Received by: 2026-11-20",
    "Received-On: 2026-11-20",
    "Receivedon: 2026-11-20",
    "Date: 2026-11-20",
    "Erhalten: 20.11.2026",
    "Due on: 2026-11-20",
]


@pytest.mark.parametrize("line", NOT_A_LABEL)
def test_a_line_without_a_known_label_is_not_read(line):
    assert read(f"Please erase.\n{line}\nViewer ID: v-1\n") == (None, [])


def test_two_different_dates_are_a_problem_and_the_same_date_twice_is_not():
    assert read("Received on: 2026-11-20\nErhalten am: 20.11.2026\n") == (NOV_20, [])
    assert read("Received on: 2026-11-20\nReceived on: 2026-11-21\n") == (None, ["received_on_conflict"])
    # A doubtful line wins over a readable one: the doubt is what the officer must see.
    assert read("Received on: 2026-11-20\nReceived on: 05/11/2026\n") == (None, ["received_on_unreadable"])


def test_the_problem_codes_have_reasons():
    assert {"received_on_unreadable", "received_on_conflict", "received_on_future"} <= set(REASONS)


@given(st.text(max_size=300))
def test_reading_never_raises_and_finds_only_real_dates(text):
    found, codes = read(text)
    assert found is None or isinstance(found, dt.date)
    assert set(codes) <= {"received_on_unreadable", "received_on_conflict"}
    assert not (found is not None and codes)


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2999, 12, 31)))
def test_every_iso_and_dotted_date_reads_back(day):
    assert read(f"Received on: {day.isoformat()}") == (day, [])
    assert read(f"Erhalten am: {day.day:02d}.{day.month:02d}.{day.year}") == (day, [])


def test_the_parser_reads_only_the_requests_own_text():
    body = ("Please erase this viewer.\nReceived on: 2026-10-30\nViewer ID: v-1\n\n"
            "On Mon, 1 Oct 2026, Privacy wrote:\n> Received on: 2026-01-01\n")
    parsed = parse_message(mail("privacy@acme.example", body))
    assert parsed.controller_received_on == dt.date(2026, 10, 30)
    assert parsed.problems == ()
    bad = parse_message(mail("privacy@acme.example", "Please erase.\nReceived on: 05/11/2026\nViewer ID: v-1\n"))
    assert bad.controller_received_on is None
    assert [p.code for p in bad.problems] == ["received_on_unreadable"]
    assert parse_message(mail("privacy@acme.example", "Please erase.\nViewer ID: v-1\n")).controller_received_on is None


# ---------------------------------------------------------------- through the workflow


def deliver(world, body: str):
    path = world.deliver(mail("privacy@acme.example", body))
    os.utime(path, (NOW.timestamp(), NOW.timestamp()))  # arrival = the world's "now": 2 November 2026
    return path


def only_request(world) -> tuple[ErasureRequest, dict]:
    with world.state.session() as session:
        request = session.query(ErasureRequest).one()
        event = session.query(AuditEvent).filter_by(request_ref=request.reference, event="received").one()
        session.expunge(request)
        return request, json.loads(event.data)


def test_a_forwarded_request_from_day_25_is_due_by_the_controllers_month_end(world):
    # The viewer wrote to acme on 8 October; acme forwards it on 2 November (day 25).
    # Our own 10 days would end on 12 November; acme's month ends on 8 November.
    deliver(world, "Please erase this viewer.\nReceived from the data subject on: 2026-10-08\nViewer ID: viewer-00001\n")
    world.poll()
    request, data = only_request(world)
    assert request.due_on == dt.date(2026, 11, 8)
    assert request.controller_due_on == dt.date(2026, 11, 8)
    assert data["controller_received_on"] == "2026-10-08" and data["controller_due"] == "2026-11-08"
    assert data["due"] == "2026-11-08"
    detail = world.desk.find(request.reference).to_json()
    assert detail["controller_due"] == "2026-11-08" and detail["due"] == "2026-11-08"


def test_a_promptly_forwarded_request_is_due_by_the_processors_own_period(world):
    deliver(world, "Please erase this viewer.\nErhalten am: 30.10.2026\nViewer ID: viewer-00001\n")
    world.poll()
    request, data = only_request(world)
    assert request.due_on == dt.date(2026, 11, 12)  # 2 Nov + 10 days, before acme's 30 November
    assert request.controller_due_on == dt.date(2026, 11, 30)
    assert data["controller_received_on"] == "2026-10-30"


def test_without_a_stated_date_the_due_date_is_a_month_from_our_receipt(world):
    deliver(world, "Please erase this viewer.\nViewer ID: viewer-00001\n")
    world.poll()
    request, data = only_request(world)
    assert request.due_on == dt.date(2026, 12, 2) and request.controller_due_on is None
    assert "controller_received_on" not in data
    assert world.desk.find(request.reference).to_json()["controller_due"] is None


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("Received on: 2026-11-03", "received_on_future"),  # after the mail reached us on 2 November
        ("Received on: 03/04/2026", "received_on_unreadable"),
        ("Received on: 2026-10-08\nReceived on: 2026-10-09", "received_on_conflict"),
    ],
)
def test_a_doubtful_receipt_date_sends_the_request_to_review_on_our_own_clock(world, line, code):
    deliver(world, f"Please erase this viewer.\n{line}\nViewer ID: viewer-00001\n")
    world.poll()
    request, data = only_request(world)
    assert request.status == "needs_review" and request.reason_code == code
    assert data.get("controller_received_on_refused") == ("2026-11-03" if code == "received_on_future" else None)
    assert "controller_received_on" not in data
    assert request.reason.startswith(REASONS[code])
    assert request.due_on == dt.date(2026, 12, 2) and request.controller_due_on is None
    assert world.views(viewer="viewer-00001") == 9  # nothing erased on a doubt (3 environments x 3 views)


def test_an_officer_gives_the_controllers_receipt_date(world):
    outcome = world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], regulation="ccpa",
                                    controller_received_on=dt.date(2026, 9, 20))
    request, data = only_request(world)
    assert request.reference == outcome.reference
    assert request.controller_due_on == dt.date(2026, 11, 4)  # 20 Sep + 45 days
    assert request.due_on == dt.date(2026, 11, 4)  # before our own 12 November
    assert data["controller_received_on"] == "2026-09-20"
    with pytest.raises(UsageError, match="2026-11-03"):
        world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00003"], controller_received_on=dt.date(2026, 11, 3))


def test_requests_add_controller_received_on_on_the_command_line(tmp_path):
    from tests.test_cli import cli, run

    d = tmp_path / "demo"
    assert run("demo", "--dir", d).exit_code == 0
    today = dt.datetime.now(ZoneInfo("Europe/Berlin")).date()  # the demo's office time zone
    start = today - dt.timedelta(days=25)
    added = cli(d, "requests", "add", "--tenant", "acme", "--viewer-id", "viewer-00010",
                "--controller-received-on", start.isoformat())
    assert added.exit_code in (0, 1), added.output
    reference = added.output.split(":")[0].strip()
    shown = json.loads(cli(d, "requests", "show", reference, "--json").output)
    assert shown["controller_due"] == add_months(start, 1).isoformat()  # the month rule is tabled elsewhere
    assert shown["due"] == min(shown["controller_due"], (today + dt.timedelta(days=10)).isoformat())
    assert f"controller: due {shown['controller_due']}" in cli(d, "requests", "show", reference).output
    for bad in ("20.11.2026", "2026-02-30", "20261120", (today + dt.timedelta(days=2)).isoformat()):
        refused = cli(d, "requests", "add", "--tenant", "acme", "--viewer-id", "viewer-00011", "--controller-received-on", bad)
        assert refused.exit_code == 2, (bad, refused.output)
        assert "--controller-received-on" in refused.output and "Traceback" not in refused.output


# ---------------------------------------------------------------- the status screen


def test_status_flags_requests_near_or_past_the_controllers_deadline(state):
    today = D(2026, 11, 29)
    rows = [
        # name, own due, controller due, status
        ("PAST", D(2026, 11, 27), D(2026, 11, 27), "erasing"),
        ("EXTENDED", D(2026, 12, 20), D(2026, 12, 1), "needs_review"),  # ours extended; the customer's is near
        ("SOON", D(2026, 12, 5), D(2026, 12, 5), "awaiting_approval"),
        ("LATER", D(2026, 12, 6), D(2026, 12, 6), "erasing"),  # 7 days left: outside the window
        ("NONE", D(2026, 11, 30), None, "erasing"),  # no controller date known
        ("DONE", D(2026, 11, 1), D(2026, 11, 1), "completed"),  # closed: never flagged
    ]
    with state.session() as session:
        for name, due, controller_due, status_ in rows:
            closed = status_ == "completed"
            session.add(make_request(name, "gdpr", "erasure", status_, "2026-11-01T08:00",
                                     "2026-11-02T08:00" if closed else None, due, None,
                                     controller_due_on=controller_due))
        audit.record(session, "received", now=dt.datetime(2026, 11, 29, 7, tzinfo=dt.UTC))
    with state.session() as session:
        report = status(session, today=today, config=config_from_dict(zoned({})), now=dt.datetime(2026, 11, 29, 7, tzinfo=dt.UTC))
    flagged = [(i.reference, i.due, i.days_left) for i in report.controller_deadline]
    assert flagged == [("ER-TEST-PAST", D(2026, 11, 27), -2), ("ER-TEST-EXTENDED", D(2026, 12, 1), 2),
                       ("ER-TEST-SOON", D(2026, 12, 5), 6)]
    assert "1 request(s) past the controller's own deadline; tell the customer" in report.problems
    text = report.text()
    assert "will pass the controller's deadline (within 7 days or past): 3" in text
    assert "ER-TEST-EXTENDED" in text.split("will pass the controller's deadline")[1]
    data = report.to_json()
    assert [i["reference"] for i in data["controller_deadline"]] == ["ER-TEST-PAST", "ER-TEST-EXTENDED", "ER-TEST-SOON"]


@pytest.mark.parametrize(
    ("name", "stated"),
    [
        ("fw_received_on_german.eml", dt.date(2026, 10, 8)),
        ("fw_received_on_ambiguous.eml", None),
        ("fw_received_on_quoted_old_date.eml", dt.date(2026, 10, 28)),
    ],
)
def test_the_corpus_messages_state_these_dates(name, stated):
    from tests.test_email_corpus import EMAILS

    assert parse_message((EMAILS / name).read_bytes()).controller_received_on == stated
