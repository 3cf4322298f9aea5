"""A malformed database URL in the config is a usage error (exit 2) naming the key and the fix, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from erasure.cli import app
from erasure.config import check_database_url
from erasure.errors import ConfigError

runner = CliRunner()

# (url, words the message must contain)
MALFORMED = [
    ("postgresql+psycopg://u@127.0.0.1:99999/db", "port 99999, outside 1-65535"),
    ("postgresql+psycopg://u@127.0.0.1:65536/db", "port 65536"),
    ("postgresql+psycopg://u@127.0.0.1:0/db", "port 0"),
    ("postgresql+psycopg://u@127.0.0.1:abc/db", "the port is not a number"),
    ("postgresql+psycopg://u@127.0.0.1:/db", "the port is not a number"),
    ("mysql+pymysql://root@127.0.0.1:3306:1/views", "the port is not a number"),
    ("postgresql+psycopg://u@[::1:5432/db", "the port is not a number"),
    ("views.db", "not a SQLAlchemy URL"),
    ("", "not a SQLAlchemy URL"),
    ("postgres://u@127.0.0.1/db", "unknown database kind 'postgres'"),
    ("sqlite://views.db", "puts a host in a SQLite URL"),
]

WELL_FORMED = [
    "sqlite:///views.db",
    "sqlite:////var/lib/erasure/views.db",
    "postgresql+psycopg://u@127.0.0.1:5432/db",
    "postgresql+psycopg://u@127.0.0.1/db",
    "postgresql+psycopg://u@127.0.0.1:65535/db",
    "mysql+pymysql://root@127.0.0.1:3306/views",
]


@pytest.mark.parametrize(("url", "words"), MALFORMED)
@pytest.mark.parametrize("key", ["store.url", "state.url"])
def test_a_malformed_url_is_a_config_error_naming_the_key(url, words, key):
    with pytest.raises(ConfigError) as err:
        check_database_url(url, key)
    assert key in str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize("url", WELL_FORMED)
def test_well_formed_urls_pass(url):
    check_database_url(url, "store.url")


def test_the_password_is_not_repeated_in_the_message():
    with pytest.raises(ConfigError) as err:
        check_database_url("postgresql+psycopg://u:hunter2@127.0.0.1:abc/db", "store.url")
    assert "hunter2" not in str(err.value)


def _config(tmp_path, *, store_url="sqlite:///views.db", state_url="sqlite:///state.db"):
    (tmp_path / "Maildir" / "new").mkdir(parents=True)
    path = tmp_path / "erasure.toml"
    path.write_text(
        f'[state]\nurl = "{state_url}"\n'
        f'[store]\nurl = "{store_url}"\n'
        '[mailbox]\nkind = "maildir"\npath = "Maildir"\n'
        '[delivery]\nkind = "directory"\ndirectory = "replies"\n'
        '[policy]\nrole = "processor"\ntime_zone = "UTC"\n'
    )
    return path


@pytest.mark.parametrize(("url", "words"), MALFORMED)
@pytest.mark.parametrize("command", [["init"], ["poll"]])
@pytest.mark.parametrize("key", ["store.url", "state.url"])
def test_the_cli_exits_2_with_the_key_and_the_fix(tmp_path, url, words, command, key):
    path = _config(tmp_path, **{"store_url" if key == "store.url" else "state_url": url})
    result = runner.invoke(app, ["--config", str(path), *command])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert key in result.output and words in result.output
    assert "Traceback" not in result.output
