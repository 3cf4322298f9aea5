"""The Maildir source: moves are O(1) from the last listing, and still right when another client got there first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from erasure.mailbox import MaildirSource


def maildir(root: Path, n: int) -> MaildirSource:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "new" / f"{1000 + i}.m{i}.host").write_bytes(b"Subject: x\n\nbody\n")
    return MaildirSource(root)


def test_a_backlog_is_moved_with_one_listing_not_one_per_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = maildir(tmp_path, 200)
    refs = source.pending()
    listings = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: listings.append(path) or real(path))
    for ref in refs:
        source.move(ref, "processed")
    assert listings == []  # every move found its file where the last listing saw it
    assert sorted(p.name.split(":")[0] for p in (tmp_path / ".Processed" / "cur").iterdir()) == sorted(
        r.key for r in refs)
    assert list((tmp_path / "new").iterdir()) == []


def test_a_message_another_client_flagged_or_moved_meanwhile(tmp_path: Path) -> None:
    source = maildir(tmp_path, 3)
    first, second, third = source.pending()
    # Another mail client marks the first as seen (new/ -> cur/ with flags) and deletes the second.
    os.rename(tmp_path / "new" / first.key, tmp_path / "cur" / f"{first.key}:2,S")
    (tmp_path / "new" / second.key).unlink()
    source.move(first, "review")
    source.move(second, "review")  # already gone: nothing to do, no error
    source.move(third, "processed")
    assert [p.name for p in (tmp_path / ".Review" / "cur").iterdir()] == [f"{first.key}:2,S"]
    assert [p.name for p in (tmp_path / ".Processed" / "cur").iterdir()] == [f"{third.key}:2,S"]
    source.move(third, "processed")  # moving again is idempotent
    assert len(list((tmp_path / ".Processed" / "cur").iterdir())) == 1
