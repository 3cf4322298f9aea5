"""The IMAP intake source against a real, private Dovecot (tests/dovecot_server.py)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from erasure.errors import ConfigError, MailboxError, MailboxUnavailableError
from erasure.imap import (
    ImapSource,
    ServerFeatures,
    backoff_delays,
    message_key,
    reports_new_mail,
)
from erasure.mailbox import MessageRef
from tests.dovecot_server import PASSWORD, DovecotServer
from tests.services import free_port


def email(n: int, *, body: str = "Viewer ID: v-{n}\r\n", subject: str = "Erasure request {n}") -> bytes:
    """A small request message with CRLF line ends, as it sits on the server."""
    text = (
        f"From: privacy@acme.example\r\n"
        f"To: privacy@service.example\r\n"
        f"Subject: {subject.format(n=n)}\r\n"
        f"Message-ID: <req-{n}@acme.example>\r\n"
        f"\r\n"
        f"{body.format(n=n)}"
    )
    return text.encode()


def folder_contents(server: DovecotServer, user: str, folder: str) -> dict[int, tuple[bytes, tuple[bytes, ...]]]:
    """UID -> (bytes, flags) of every message in ``folder``, read by another client."""
    with server.client(user) as c:
        if not c.folder_exists(folder):
            return {}
        c.select_folder(folder, readonly=True)
        uids = c.search(["ALL"])
        if not uids:
            return {}
        data = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"])
        return {uid: (d[b"BODY[]"], d[b"FLAGS"]) for uid, d in data.items()}


def bodies(server: DovecotServer, user: str, folder: str) -> list[bytes]:
    return sorted(raw for raw, _ in folder_contents(server, user, folder).values())


# ------------------------------------------------------------- pure parts


def test_capabilities_are_read_case_insensitively_in_one_place() -> None:
    features = ServerFeatures.from_capabilities([b"IMAP4rev1", b"idle", b"UIDPLUS", b"STARTTLS"])
    assert features == ServerFeatures(move=False, uidplus=True, idle=True, starttls=True)
    assert ServerFeatures.from_capabilities([b"MOVE"]).move


def test_idle_responses_count_as_new_mail_only_for_exists_and_recent() -> None:
    assert reports_new_mail([(b"OK", b"Still here"), (3, b"EXISTS")])
    assert reports_new_mail([(1, b"RECENT")])
    assert not reports_new_mail([(b"OK", b"Still here"), (2, b"FETCH", (b"FLAGS", (b"\\Seen",)))])
    assert not reports_new_mail([(2, b"EXPUNGE")])
    assert not reports_new_mail([(0, b"RECENT")])


def test_message_key_includes_uidvalidity_so_a_recreated_folder_gives_new_keys() -> None:
    assert message_key("INBOX", 7, 42) == "imap:INBOX:7:42"
    assert message_key("INBOX", 7, 42) != message_key("INBOX", 8, 42)


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = backoff_delays(1, 10, jitter=0)
    assert [next(delays) for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_plain_imap_to_a_remote_host_is_refused_before_connecting() -> None:
    from erasure.config import MailboxSettings

    settings = MailboxSettings(kind="imap", host="192.0.2.1", security="none", username="privacy")
    with pytest.raises(ConfigError, match="unencrypted"):
        ImapSource(settings, "pw")


# ------------------------------------------------------------- real Dovecot


@pytest.mark.parametrize("security", ["none", "tls", "starttls"])
def test_connect_list_fetch_and_move_over_each_transport(dovecot: DovecotServer, security: str) -> None:
    user = dovecot.new_user()
    messages = [email(n) for n in range(3)]
    dovecot.deliver(user, messages)

    with ImapSource(dovecot.settings(user, security), PASSWORD) as source:  # type: ignore[arg-type]
        assert source.name == f"imap://{user}@127.0.0.1:{dovecot.tls_port if security == 'tls' else dovecot.port}/INBOX"
        refs = source.pending()
        uids = [r.uid for r in refs if r.uid is not None]
        assert len(uids) == 3 and uids == sorted(uids)
        assert [r.size for r in refs] == [len(m) for m in messages]
        assert all(r.key == f"imap:INBOX:{source.uidvalidity}:{r.uid}" for r in refs)
        assert all(r.internal_date is not None and r.internal_date.tzinfo == UTC for r in refs)

        fetched = list(source.fetch(refs))
        assert [m.raw for m in fetched] == messages
        assert all(m.raw is not None for m in fetched)

        source.move(refs[0], "processed")
        source.move(refs[1], "review")
        assert [r.key for r in source.pending()] == [refs[2].key]

    processed = list(folder_contents(dovecot, user, "Processed").values())
    review = list(folder_contents(dovecot, user, "Review").values())
    inbox = list(folder_contents(dovecot, user, "INBOX").values())
    assert [raw for raw, _ in processed] == [messages[0]]
    assert b"\\Seen" in processed[0][1]  # handled
    assert [raw for raw, _ in review] == [messages[1]]
    assert b"\\Seen" not in review[0][1]  # a person still has to look at it
    assert [raw for raw, _ in inbox] == [messages[2]]
    assert b"\\Seen" not in inbox[0][1]  # fetching peeks, it does not mark read


def test_only_new_mail_is_pending_on_the_next_run(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    dovecot.deliver(user, [email(1), email(2)])
    settings = dovecot.settings(user)
    with ImapSource(settings, PASSWORD) as source:
        first = source.pending()
        for ref in first:
            source.move(ref, "processed")

    dovecot.deliver(user, [email(3)])
    with ImapSource(settings, PASSWORD) as source:
        second = source.pending()
        assert [m.raw for m in source.fetch(second)] == [email(3)]
    assert {r.key for r in first}.isdisjoint(r.key for r in second)


def test_internal_date_is_the_arrival_time_in_utc(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    arrived = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    with dovecot.client(user) as c:
        c.append("INBOX", email(1), msg_time=arrived)
    with ImapSource(dovecot.settings(user), PASSWORD) as source:
        (ref,) = source.pending()
    assert ref.internal_date == datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
    assert ref.internal_date.tzinfo == UTC


def test_five_hundred_messages_are_all_fetched_byte_for_byte(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    messages = [email(n, body="Viewer ID: v-{n}\r\n" + "x" * (n % 97) + "\r\n") for n in range(500)]
    dovecot.deliver(user, messages)
    with ImapSource(dovecot.settings(user, batch_size=50), PASSWORD) as source:
        refs = source.pending()
        assert len(refs) == 500
        fetched = {m.ref.key: m.raw for m in source.fetch(refs)}
    assert [fetched[r.key] for r in refs] == messages


def test_oversized_message_is_not_downloaded_but_can_go_to_review(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    small = email(1)
    huge = email(2, body="Viewer ID: v-2\r\n" + ("A" * 998 + "\r\n") * 200)  # ~200 KB
    dovecot.deliver(user, [small, huge])

    with ImapSource(dovecot.settings(user, max_message_bytes=10_000), PASSWORD) as source:
        refs = source.pending()
        fetched = list(source.fetch(refs))
        assert [m.raw is None for m in fetched] == [False, True]
        assert fetched[0].raw == small
        assert fetched[1].raw is None and fetched[1].ref.size == len(huge)
        source.move(fetched[1].ref, "review")
        assert [r.key for r in source.pending()] == [refs[0].key]

    assert bodies(dovecot, user, "Review") == [huge]
    # The server's own account of the session: far fewer bytes sent than the big message.
    logout = [line for line in dovecot.log.splitlines() if f"imap({user})" in line and "Logged out" in line]
    sent = int(logout[0].split(" out=")[1].split()[0])
    assert sent < len(huge) / 4


def test_recreated_folder_gives_new_keys_and_old_refs_are_refused(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    dovecot.deliver(user, [email(1)], folder="Intake")
    settings = dovecot.settings(user, folder="Intake")
    with ImapSource(settings, PASSWORD) as source:
        (old,) = source.pending()

    with dovecot.client(user) as c:
        c.delete_folder("Intake")
        c.create_folder("Intake")
        c.append("Intake", email(1))
        c.append("Intake", email(2))

    with ImapSource(settings, PASSWORD) as source:
        new = source.pending()
        assert source.uidvalidity != old.uidvalidity
        assert old.key not in {r.key for r in new}
        with pytest.raises(MailboxError, match="recreated"):
            source.move(old, "processed")
        with pytest.raises(MailboxError, match="recreated"):
            list(source.fetch([old]))
    assert bodies(dovecot, user, "Intake") == sorted([email(1), email(2)])
    assert bodies(dovecot, user, "Processed") == []


def test_connection_dropped_mid_fetch_is_temporary_and_a_new_source_recovers(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    messages = [email(n) for n in range(6)]
    dovecot.deliver(user, messages)
    settings = dovecot.settings(user, batch_size=2)

    with ImapSource(settings, PASSWORD) as source:
        refs = source.pending()
        stream = source.fetch(refs)
        assert next(stream).raw == messages[0]
        pid = dovecot.mail_pid(user)
        os.kill(pid, signal.SIGKILL)
        _wait_until_gone(pid)
        with pytest.raises(MailboxUnavailableError, match="run again later"):
            list(stream)

    with ImapSource(settings, PASSWORD) as source:
        assert [m.raw for m in source.fetch(source.pending())] == messages


def _wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)  # polling for the process to exit
    raise AssertionError(f"imap process {pid} is still running")


@pytest.mark.dovecot  # servers are chosen by name below, so the plugin cannot see them
@pytest.mark.parametrize(
    ("server_fixture", "has_move", "has_uidplus"),
    [
        ("dovecot", True, True),
        ("dovecot_without_move", False, True),
        ("dovecot_without_move_or_uidplus", False, False),
    ],
)
def test_move_never_expunges_another_clients_deleted_mail(
    request: pytest.FixtureRequest, server_fixture: str, has_move: bool, has_uidplus: bool
) -> None:
    server: DovecotServer = request.getfixturevalue(server_fixture)
    user = server.new_user()
    ours, theirs = email(1), email(2, subject="Someone else's deleted mail {n}")
    server.deliver(user, [ours, theirs])
    with server.client(user) as other:
        other.select_folder("INBOX")
        (their_uid,) = other.search(["SUBJECT", "deleted mail"])
        other.add_flags([their_uid], [b"\\Deleted"])

    with ImapSource(server.settings(user), PASSWORD) as source:
        assert (source.features.move, source.features.uidplus) == (has_move, has_uidplus)
        (ref,) = source.pending()  # the \Deleted message is on its way out, not intake
        source.move(ref, "processed")
        source.move(ref, "processed")  # idempotent: a second run changes nothing
        assert source.pending() == []

    assert bodies(server, user, "Processed") == [ours]
    inbox = {raw: flags for raw, flags in folder_contents(server, user, "INBOX").values()}
    assert b"\\Deleted" in inbox[theirs]  # still there: no plain EXPUNGE was issued
    if has_move or has_uidplus:
        assert ours not in inbox
    else:  # the best that can be done: copied, flagged, left for the owner's expunge
        assert set(inbox[ours]) >= {b"\\Deleted", b"\\Seen"}


def test_move_of_a_message_already_gone_is_not_an_error(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    dovecot.deliver(user, [email(1)])
    with ImapSource(dovecot.settings(user), PASSWORD) as source:
        (ref,) = source.pending()
        with dovecot.client(user) as other:
            other.select_folder("INBOX")
            other.create_folder("Elsewhere")
            other.move([ref.uid], "Elsewhere")
        source.move(ref, "review")
        assert source.pending() == []
    assert bodies(dovecot, user, "Review") == []
    assert bodies(dovecot, user, "Elsewhere") == [email(1)]


def test_idle_reports_new_mail_and_times_out_without_it(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    with ImapSource(dovecot.settings(user), PASSWORD) as source:
        assert source.wait_for_new(0.2) is False
        dovecot.deliver(user, [email(1)])
        assert source.wait_for_new(10) is True
        assert len(source.pending()) == 1  # the connection is usable after IDLE


def test_connection_dropped_during_idle_is_temporary(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    with ImapSource(dovecot.settings(user), PASSWORD) as source:
        pid = dovecot.mail_pid(user)

        def kill_once_idling() -> None:
            dovecot.wait_for_command(pid, "IDLE")
            os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_idling)
        killer.start()
        try:
            with pytest.raises(MailboxUnavailableError):
                source.wait_for_new(60)
        finally:
            killer.join()


def test_intake_folder_cannot_also_be_a_destination(dovecot: DovecotServer) -> None:
    settings = dovecot.settings(dovecot.new_user(), processed_folder="INBOX")
    with pytest.raises(ConfigError, match="mailbox.processed_folder"):
        ImapSource(settings, PASSWORD)


def test_wrong_password_names_the_user_and_the_setting(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    with pytest.raises(MailboxError) as caught:
        ImapSource(dovecot.settings(user), "not-the-password")
    assert not isinstance(caught.value, MailboxUnavailableError)  # retrying will not help
    message = str(caught.value)
    assert user in message and "mailbox.password_env" in message and "ERASURE_TEST_IMAP_PASSWORD" in message
    assert "not-the-password" not in message


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_untrusted_certificate_is_refused_with_a_hint(dovecot: DovecotServer, security: str) -> None:
    user = dovecot.new_user()
    with pytest.raises(MailboxError, match=r"certificate .* could not be verified.*mailbox\.ca_file"):
        ImapSource(dovecot.settings(user, security, ca_file=None), PASSWORD)  # type: ignore[arg-type]
    assert f"Login: user=<{user}>" not in dovecot.log  # the password was never sent


def test_starttls_required_but_not_offered_is_refused_before_login(dovecot_without_tls: DovecotServer) -> None:
    user = dovecot_without_tls.new_user()
    with pytest.raises(MailboxError, match="does not offer STARTTLS") as caught:
        ImapSource(dovecot_without_tls.settings(user, "starttls"), PASSWORD)
    assert not isinstance(caught.value, MailboxUnavailableError)
    assert f"Login: user=<{user}>" not in dovecot_without_tls.log  # the password was never sent


def test_tls_against_the_plain_port_points_at_security_and_port(dovecot: DovecotServer) -> None:
    settings = dataclasses.replace(dovecot.settings(dovecot.new_user(), "tls"), port=dovecot.port)
    with pytest.raises(MailboxError, match=r"check that mailbox.security matches mailbox.port"):
        ImapSource(settings, PASSWORD)


def test_plain_imap_against_the_tls_port_times_out_with_a_hint(dovecot: DovecotServer) -> None:
    settings = dovecot.settings(dovecot.new_user(), "none", timeout_seconds=1)
    settings = dataclasses.replace(settings, port=dovecot.tls_port)
    with pytest.raises(MailboxUnavailableError, match='set mailbox.security = "tls"'):
        ImapSource(settings, PASSWORD)


def test_missing_intake_folder_is_named(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    with pytest.raises(MailboxError, match="'Nowhere'.*mailbox.folder"):
        ImapSource(dovecot.settings(user, folder="Nowhere"), PASSWORD)


def test_refused_connection_is_temporary() -> None:
    from erasure.config import MailboxSettings

    settings = MailboxSettings(kind="imap", host="127.0.0.1", port=free_port(), security="none", username="privacy")
    with pytest.raises(MailboxUnavailableError, match="connection refused"):
        ImapSource(settings, "pw")


def test_silent_server_times_out_as_temporary() -> None:
    from erasure.config import MailboxSettings

    with socket.socket() as listener:  # accepts (kernel backlog) but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        settings = MailboxSettings(
            kind="imap", host="127.0.0.1", port=port, security="none", username="privacy", timeout_seconds=1
        )
        with pytest.raises(MailboxUnavailableError, match="no answer within 1s"):
            ImapSource(settings, "pw")


def test_refs_without_uid_or_from_another_folder_are_refused(dovecot: DovecotServer) -> None:
    user = dovecot.new_user()
    dovecot.deliver(user, [email(1)])
    maildir_ref = MessageRef(key="maildir:x", uid=None, uidvalidity=None, size=1, internal_date=None)
    with ImapSource(dovecot.settings(user), PASSWORD) as source:
        (ref,) = source.pending()
        with pytest.raises(MailboxError, match="not an IMAP message"):
            source.move(maildir_ref, "review")
        assert ref.uid is not None and ref.uidvalidity is not None
        elsewhere = dataclasses.replace(ref, key=message_key("Archive", ref.uidvalidity, ref.uid))
        with pytest.raises(MailboxError, match="another folder"):
            source.move(elsewhere, "review")
        assert source.pending() == [ref]
