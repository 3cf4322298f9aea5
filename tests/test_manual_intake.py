"""`requests add`: a letter, phone call or form is dated on the day it reached us, and how it came is kept."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from erasure.deadlines import add_months
from erasure.errors import UsageError
from erasure.models import AuditEvent, ErasureRequest
from erasure.workflow import Desk
from tests.world import NOW, mail, make_world

LA = "America/Los_Angeles"


@pytest.fixture
def world(tmp_path, monkeypatch):
    """An office in Los Angeles; NOW (09:30 UTC on 2 November) is 01:30 there, the same day."""
    w = make_world(tmp_path, monkeypatch, time_zone=LA)
    yield w
    w.desk.close()
    w.state.close()


def only_request(world):
    with world.state.session() as session:
        request = session.scalar(sa.select(ErasureRequest))
        received = session.scalar(sa.select(AuditEvent).where(AuditEvent.event == "received"))
        return request, json.loads(received.data)


@pytest.mark.parametrize(("channel", "stored"), [
    ("letter", "manual:letter"),
    ("phone", "manual:phone"),
    ("form", "manual:form"),
    ("email", "manual:email"),  # a mail that reached a person, typed in: not the mail the poll reads
    (None, "manual"),  # as every row entered before channels were recorded
])
def test_the_channel_is_stored_apart_from_polled_mail(world, channel, stored):
    world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], channel=channel, actor="officer")
    request, received = only_request(world)
    assert request.channel == stored and len(stored) <= 16
    assert received["channel"] == stored
    detail = world.desk.find(request.reference).to_json()
    assert detail["channel"] == stored


def test_polled_mail_stays_email(world):
    world.deliver(mail("dpo@acme.example", "Viewer ID: viewer-00002\n"))
    world.poll()
    request, received = only_request(world)
    assert request.channel == received["channel"] == "email"
    assert received["received_on"] == "2026-11-02"


@pytest.mark.parametrize("channel", ["fax", "Letter", "manual:letter", ""])
def test_an_unknown_channel_is_refused_naming_the_choices(world, channel):
    with pytest.raises(UsageError, match=r"--channel .*use one of letter, phone, form, email"):
        world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], channel=channel)
    with pytest.raises(UsageError, match="--channel"):
        world.desk.preview_manual(tenant="acme", viewer_ids=["viewer-00002"], channel=channel)


def test_a_letter_is_dated_and_due_from_the_day_it_reached_us(world):
    world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], regulation="gdpr", channel="letter",
                          received_on=dt.date(2026, 10, 20), actor="officer")
    request, received = only_request(world)
    # Noon in Los Angeles on 20 October (PDT, UTC-7): that office day whatever the hour of typing.
    assert request.received_at.replace(tzinfo=dt.UTC) == dt.datetime(2026, 10, 20, 19, 0, tzinfo=dt.UTC)
    assert request.due_on == dt.date(2026, 11, 20) == add_months(dt.date(2026, 10, 20), 1)
    assert received["received_on"] == "2026-10-20" and received["received_on_given"] is True
    assert received["channel"] == "manual:letter"
    assert world.desk.find(request.reference).to_json()["received_on"] == "2026-10-20"


def test_a_letter_received_today_keeps_the_time_of_intake(world):
    world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], channel="phone", received_on=dt.date(2026, 11, 2))
    request, _ = only_request(world)
    assert request.received_at.replace(tzinfo=dt.UTC) == NOW


def test_a_ccpa_phone_call_is_due_45_days_after_the_call(world):
    world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], regulation="ccpa", channel="phone",
                          received_on=dt.date(2026, 10, 1))
    request, _ = only_request(world)
    assert request.due_on == dt.date(2026, 11, 15)


def test_a_receipt_date_after_today_in_the_office_is_refused(world):
    # 06:00 UTC on 3 November is still 2 November in Los Angeles.
    desk = Desk(world.config, world.state, now=lambda: dt.datetime(2026, 11, 3, 6, 0, tzinfo=dt.UTC))
    with pytest.raises(UsageError, match=r"--received-on: 2026-11-03 is after today \(2026-11-02, office time\)"):
        desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], received_on=dt.date(2026, 11, 3))
    desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], received_on=dt.date(2026, 11, 2))
    assert only_request(world)[0].received_at.replace(tzinfo=dt.UTC) == dt.datetime(2026, 11, 3, 6, 0, tzinfo=dt.UTC)


def test_the_controllers_date_is_checked_against_our_receipt_date(world):
    with pytest.raises(UsageError, match="--controller-received-on: .*2026-10-21.*after the day the request reached us"):
        world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], received_on=dt.date(2026, 10, 20),
                              controller_received_on=dt.date(2026, 10, 21))
    world.desk.add_manual(tenant="acme", viewer_ids=["viewer-00002"], regulation="gdpr",
                          received_on=dt.date(2026, 10, 20), controller_received_on=dt.date(2026, 10, 15))
    request, received = only_request(world)
    assert request.controller_due_on == dt.date(2026, 11, 15)
    assert request.due_on == dt.date(2026, 10, 30)  # processor: 10 days from OUR receipt, earlier than the controller's
    assert received["controller_received_on"] == "2026-10-15"


# ---------------------------------------------------------------- on the command line


def test_requests_add_with_receipt_date_and_channel(tmp_path):
    from tests.test_cli import cli, run

    d = tmp_path / "demo"
    assert run("demo", "--dir", d).exit_code == 0
    added = cli(d, "requests", "add", "--tenant", "acme", "--viewer-id", "viewer-00010",
                "--received-on", "2026-01-05", "--channel", "form")
    assert added.exit_code in (0, 1), added.output
    reference = added.output.split(":")[0].strip()
    shown = json.loads(cli(d, "requests", "show", reference, "--json").output)
    assert (shown["channel"], shown["received_on"], shown["due"]) == ("manual:form", "2026-01-05", "2026-02-05")
    assert "(GDPR, manual:form)" in cli(d, "requests", "show", reference).output
    listed = cli(d, "requests", "list").output
    assert "channel" in listed.splitlines()[0]
    assert any(reference in line and "manual:form" in line and "2026-01-05" in line for line in listed.splitlines())
    assert any("email" in line for line in listed.splitlines()[2:])  # the demo's polled mail
    for args, words in [
        (["--received-on", "2099-01-01"], "--received-on: 2099-01-01 is after today"),
        (["--received-on", "5.1.2026"], "--received-on '5.1.2026' is not a date; write it as YYYY-MM-DD"),
        (["--channel", "fax"], "--channel 'fax': use one of letter, phone, form, email"),
        (["--channel", "fax", "--dry-run"], "--channel 'fax'"),
    ]:
        refused = cli(d, "requests", "add", "--tenant", "acme", "--viewer-id", "viewer-00011", *args)
        assert refused.exit_code == 2, (args, refused.output)
        assert words in refused.output and "Traceback" not in refused.output
