"""policy.time_zone must be stated: the office's calendar day is the day of receipt, and every deadline follows it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from erasure.cli import app
from erasure.config import config_from_dict, load_config, write_time_zone
from erasure.demo import CONFIG as DEMO_CONFIG
from erasure.errors import ConfigError, TimeZoneMissingError
from erasure.mailbox import IncomingMessage, MessageRef
from erasure.models import ErasureRequest
from tests.world import KEY_ENV, config_dict, mail, make_world

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


@pytest.mark.parametrize("data", [
    {},
    {"policy": {"role": "processor"}},
    {"state": {"url": "sqlite:///s.db"}, "policy": {"trusted_authserv_ids": []}},
], ids=["no-policy-table", "policy-without-zone", "other-keys"])
def test_a_config_without_a_time_zone_is_refused_naming_the_fix(data):
    with pytest.raises(TimeZoneMissingError) as err:
        config_from_dict(data)
    message = str(err.value)
    assert "policy.time_zone is not set" in message
    assert 'time_zone = "Europe/Berlin"' in message and "IANA" in message and "under [policy]" in message
    assert "erasure init --time-zone" in message
    assert isinstance(err.value, ConfigError)  # exit 2, like every config error


def test_a_time_zone_that_is_not_an_iana_name_is_refused():
    with pytest.raises(ConfigError, match="policy.time_zone = 'PST' is not an IANA time zone"):
        config_from_dict({"policy": {"time_zone": "PST"}})


def test_the_example_and_the_demo_name_their_time_zone():
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    assert example["policy"]["time_zone"] == "Europe/Berlin"
    assert 'time_zone = "Europe/Berlin"' in DEMO_CONFIG


# ---------------------------------------------------------------- 23:30 in Los Angeles


@pytest.mark.parametrize(("zone", "received_on", "due_on", "letter_says"), [
    ("America/Los_Angeles", dt.date(2026, 11, 1), dt.date(2026, 12, 1), "1 November 2026"),
    ("UTC", dt.date(2026, 11, 2), dt.date(2026, 12, 2), "2 November 2026"),
])
def test_a_mail_at_half_past_eleven_at_night_in_los_angeles_is_received_that_day(
        tmp_path, monkeypatch, zone, received_on, due_on, letter_says):
    world = make_world(tmp_path, monkeypatch, time_zone=zone, auto_approve=False)
    try:
        arrived = dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-8)))  # PST, 07:30 UTC on 2 Nov
        raw = mail("dpo@acme.example", "Viewer ID: viewer-00001\n")
        ref = MessageRef(key="late", uid=None, uidvalidity=None, size=len(raw), internal_date=arrived.astimezone(UTC))
        request_id, _, _ = world.desk.intake("test", IncomingMessage(ref=ref, raw=raw))
        world.desk.advance(request_id)  # held for approval: still open
        world.desk.acknowledge_if_due(request_id)
        detail = world.desk.find(str(request_id))
        assert detail.summary.due == due_on
        with world.state.session() as session:
            request = session.get(ErasureRequest, request_id)
            (ack,) = [m for m in request.replies if m.kind == "acknowledgement"]
            text = email.message_from_bytes(ack.raw, policy=email.policy.default).get_body(("plain",)).get_content()
        assert letter_says in " ".join(text.split())
        assert request_received_on(world, request_id) == received_on
    finally:
        world.desk.close()
        world.state.close()


def request_received_on(world, request_id):
    from erasure.deadlines import received_date

    with world.state.session() as session:
        return received_date(session.get(ErasureRequest, request_id).received_at, world.config.policy)


# ---------------------------------------------------------------- erasure init writes it


def run(*args, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


def zoneless_config(tmp_path: Path) -> Path:
    import sqlalchemy as sa
    import tomli_w

    from erasure.viewschema import create_demo_schema

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'views.db'}")
    create_demo_schema(engine)
    engine.dispose()
    data = config_dict(tmp_path)
    del data["policy"]["time_zone"]
    (tmp_path / "Maildir" / "new").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "erasure.toml"
    path.write_text("# our settings\n" + tomli_w.dumps(data))
    return path


def test_init_without_a_time_zone_says_how_to_give_one(tmp_path):
    path = zoneless_config(tmp_path)
    before = path.read_text()
    result = run("--config", path, "init", env={KEY_ENV: "k"})
    assert result.exit_code == 2, result.output
    assert "policy.time_zone is not set" in result.output and "--time-zone" in result.output
    assert path.read_text() == before


def test_init_writes_the_time_zone_it_is_given_and_says_so(tmp_path):
    path = zoneless_config(tmp_path)
    result = run("--config", path, "init", "--time-zone", "America/Los_Angeles", env={KEY_ENV: "k"})
    assert result.exit_code == 0, result.output
    assert f'policy.time_zone = "America/Los_Angeles" written to {path}' in result.output
    assert "office time zone: America/Los_Angeles" in result.output
    text = path.read_text()
    assert text.startswith("# our settings\n")  # the rest of the file as written
    assert load_config(path).policy.time_zone == "America/Los_Angeles"
    again = run("--config", path, "init", env={KEY_ENV: "k"})
    assert again.exit_code == 0 and "office time zone: America/Los_Angeles" in again.output
    other = run("--config", path, "init", "--time-zone", "Europe/Berlin", env={KEY_ENV: "k"})
    assert other.exit_code == 2 and "already names policy.time_zone = 'America/Los_Angeles'" in other.output


def test_init_refuses_a_zone_that_is_not_an_iana_name_and_leaves_the_file(tmp_path):
    path = zoneless_config(tmp_path)
    before = path.read_text()
    result = run("--config", path, "init", "--time-zone", "Pacific Time", env={KEY_ENV: "k"})
    assert result.exit_code == 2
    assert "is not an IANA time zone" in result.output
    assert path.read_text() == before


@pytest.mark.parametrize("text", [
    "",
    '[state]\nurl = "sqlite:///s.db"',
    '[policy]\nrole = "processor"\n\n[audit]\nkey_version = 1\n',
    '[policy] # ours\nrole = "processor"\n',
    '[policy]',
])
def test_the_time_zone_is_written_under_policy_whatever_the_file_looks_like(tmp_path, text):
    path = tmp_path / "erasure.toml"
    path.write_text(text)
    write_time_zone(path, "Europe/Berlin")
    data = tomllib.loads(path.read_text())
    assert data["policy"]["time_zone"] == "Europe/Berlin"
    assert path.read_text().startswith(text.split("\n")[0])
