"""Where requests come from: the mailbox sources and their common interface.

A source lists what is waiting in the intake folder, fetches message bytes, and
moves a message out once its request is committed to the state database. The
workflow's intake ledger (``MailboxMessage``) makes the sequence
fetch -> commit -> move safe to interrupt anywhere: a message that is still in
the folder but already recorded is only moved, never taken a second time.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Iterator, Literal, Protocol, Self, Sequence

from erasure.errors import MailboxError
from erasure.files import make_private_dirs

Destination = Literal["processed", "review"]


@dataclass(frozen=True)
class MessageRef:
    """A message waiting in the intake folder, known before its body is fetched."""

    key: str  # stable unique key within the source
    uid: int | None
    uidvalidity: int | None
    size: int
    internal_date: dt.datetime | None  # arrival time, aware UTC


@dataclass(frozen=True)
class IncomingMessage:
    ref: MessageRef
    raw: bytes | None  # None when the message is over the size limit and was not fetched


class MailSource(Protocol):
    name: str

    def pending(self) -> list[MessageRef]: ...

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[IncomingMessage]: ...

    def move(self, ref: MessageRef, destination: Destination) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class MaildirSource:
    """A Maildir (as written by fetchmail, getmail or the demo) as the intake folder.

    Processed and review folders are Maildir++ subfolders (``.Processed``,
    ``.Review``). Moving is one ``rename`` within the same file system, so it is
    atomic: a message is in exactly one folder at any moment.
    """

    def __init__(self, root: Path, *, processed_folder: str = "Processed", review_folder: str = "Review",
                 max_message_bytes: int = 25 * 1024 * 1024) -> None:
        self.root = root
        self.name = f"maildir:{root.resolve()}"
        self.max_message_bytes = max_message_bytes
        self.folders = {"processed": processed_folder, "review": review_folder}
        self._seen: dict[str, Path] | None = None
        self._made: set[Path] = set()
        for sub in ("new", "cur", "tmp"):
            if not (root / sub).is_dir():
                raise MailboxError(
                    f"{root} is not a Maildir (no {sub}/ folder); point mailbox.path at a Maildir, "
                    f"or create one with: mkdir -p {root}/{{new,cur,tmp}}"
                )

    def __enter__(self) -> MaildirSource:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        pass

    @staticmethod
    def _key(filename: str) -> str:
        # Maildir flags follow ":2," and change when a client marks the message; the key must not.
        return filename.split(":", 1)[0]

    def _files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for sub in ("new", "cur"):
            for entry in os.scandir(self.root / sub):
                if entry.is_file() and not entry.name.startswith("."):
                    found[self._key(entry.name)] = Path(entry.path)
        self._seen = found  # where each message was at the last listing: moves look here first
        return found

    def pending(self) -> list[MessageRef]:
        refs = []
        for key, path in self._files().items():
            st = path.stat()
            refs.append(
                MessageRef(
                    key=key,
                    uid=None,
                    uidvalidity=None,
                    size=st.st_size,
                    internal_date=dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc),
                )
            )
        refs.sort(key=lambda r: (r.internal_date, r.key))
        return refs

    def fetch(self, refs: Sequence[MessageRef]) -> Iterator[IncomingMessage]:
        files = self._files()
        for ref in refs:
            path = files.get(ref.key)
            if path is None:
                continue  # moved away by another client since pending(); nothing to take
            if ref.size > self.max_message_bytes:
                yield IncomingMessage(ref, None)
                continue
            yield IncomingMessage(ref, path.read_bytes())

    def move(self, ref: MessageRef, destination: Destination) -> None:
        """Move one message: O(1) from the last listing; the folder is listed again only if another
        client moved or re-flagged the file since (a backlog of n messages costs n renames, not n listings)."""
        target = self.root / f".{self.folders[destination]}"
        if target not in self._made:
            for sub in ("new", "cur", "tmp"):
                make_private_dirs(target / sub)  # 0700: the file names alone say who wrote when
            self._made.add(target)
        for listing in (self._seen, None):
            path = (listing if listing is not None else self._files()).get(ref.key)
            if path is None:
                if listing is None:
                    return  # already moved: moving is idempotent
                continue
            name = path.name if ":" in path.name else f"{path.name}:2,S"
            try:
                os.rename(path, target / "cur" / name)
            except FileNotFoundError:
                if listing is None:
                    raise
                continue  # gone from where the last listing saw it: look again
            if listing is not None:
                listing.pop(ref.key, None)
            return

