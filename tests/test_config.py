"""The config contract: typed, validated, with errors that name the key and the fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from erasure.config import config_from_dict, load_config, read_secret, settings_reference
from erasure.errors import ConfigError
from tests.world import zoned

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"

TENANT = {"name": "acme", "senders": ["@acme.example"], "environments": ["env_acme"]}


def test_example_config_parses_into_typed_settings():
    config = load_config(EXAMPLE)
    assert config.mailbox.kind == "imap"
    assert config.policy.auto_approve_max_views == 10000
    assert [t.name for t in config.store.tables] == ["views", "view_events"]
    assert config.store.tables[1].is_child
    assert config.base_dir == EXAMPLE.parent


def test_example_config_mentions_every_setting():
    text = EXAMPLE.read_text()
    missing = [key for key, _default, _help in settings_reference() if key.rpartition(".")[2] not in text]
    assert missing == []


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [key for key, _d, _h in settings_reference() if f"`{key}`" not in readme]
    assert missing == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"polcy": {}}, "unknown key polcy; did you mean 'policy'?"),
        ({"policy": {"auto_aprove": True}}, "unknown key policy.auto_aprove; did you mean 'auto_approve'?"),
        ({"mailbox": {"kind": "imapp"}}, "mailbox.kind = 'imapp' is not one of 'imap', 'maildir'; did you mean 'imap'?"),
        ({"policy": {"auto_approve_max_views": "many"}}, "policy.auto_approve_max_views must be a whole number"),
        ({"policy": {"auto_approve_max_views": -1}}, "policy.auto_approve_max_views must not be negative"),
        ({"policy": {"require_authentication": "yes"}}, "policy.require_authentication must be true or false"),
        ({"tenants": [{"name": "a", "senders": ["@a.example"]}]}, "tenants[0].environments is empty"),
        ({"tenants": [TENANT, TENANT]}, "tenant 'acme' is configured twice"),
        ({"tenants": [{"name": "a", "senders": ["a.example"], "environments": ["e"]}]}, "use a full address or \"@domain\""),
        ({"store": {"tables": [{"name": "views"}]}}, "store.tables[0] needs viewer_column and tenant_column"),
        ({"store": {"tables": [{"name": "ev", "parent": "views", "parent_key": "view_id"}]}}, "store.tables[0].parent = 'views' is not a configured table"),
        ({"store": {"tables": [{"viewer_column": "v"}]}}, "store.tables[0].name is required"),
        ({"policy": {"time_zone": "Mars/Olympus"}}, "policy.time_zone = 'Mars/Olympus' is not an IANA time zone"),
        ({"mailbox": {"kind": "imap"}}, "mailbox.username is required"),
        ({"tenants": [TENANT]}, "policy.trusted_authserv_ids is empty, so no request could ever be verified"),
        ({"state": {"url": "sqlite:///views.db"}}, "state.url and store.url name the same SQLite file"),
        ({"audit": {"key_version": 2, "retired_keys": [{"version": 2, "env": "K"}]}}, "audit.retired_keys must name each earlier key_version once"),
    ],
)
def test_bad_config_is_refused_with_the_key_and_the_fix(data, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(zoned(data))
    assert message in str(err.value)


def test_missing_file_says_how_to_provide_one(tmp_path):
    with pytest.raises(ConfigError, match=r"not found; pass --config PATH, set ERASURE_CONFIG"):
        load_config(tmp_path / "nope.toml")


def test_invalid_toml_names_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[state\nurl=")
    with pytest.raises(ConfigError, match=re.escape(f"{p} is not valid TOML")):
        load_config(p)


def test_secrets_come_from_the_named_environment_variable(monkeypatch):
    monkeypatch.delenv("ERASURE_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="mailbox.password_env names ERASURE_TEST_SECRET, which is not set"):
        read_secret("ERASURE_TEST_SECRET", "mailbox.password_env")
    monkeypatch.setenv("ERASURE_TEST_SECRET", "s3cret")
    assert read_secret("ERASURE_TEST_SECRET", "mailbox.password_env") == "s3cret"


def test_settings_are_frozen():
    config = config_from_dict(zoned({}))
    with pytest.raises(AttributeError):
        config.policy.retention_days = 1  # type: ignore[misc]


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    p = tmp_path / "erasure.toml"
    p.write_text('[mailbox]\nkind = "maildir"\npath = "mail"\n[policy]\ntime_zone = "UTC"\n')
    config = load_config(p)
    assert config.path(config.mailbox.path) == tmp_path / "mail"


def test_example_is_valid_toml_with_no_secret_values():
    data = tomllib.loads(EXAMPLE.read_text())
    assert "password" not in {k for section in data.values() if isinstance(section, dict) for k in section}
