"""Every system that holds viewer data: the configured stores as one set.

A video-analytics service rarely keeps views in one database (an EU ingest
location with full IP addresses, a US analytics store with truncated ones).
A request is complete only when every store has been erased and verified, so
callers work with this set, never with one store picked from the config.

Each store stays its own :class:`~erasure.store.ViewStore` with its own
transactions: there is no transaction across stores, which is why the
workflow keeps one progress row per store and request (``StoreProgress``) and
why a store that is down never stops the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Self

from erasure.config import Config, StoreSettings
from erasure.store import ErasureResult, Target, ViewStore


@dataclass(frozen=True)
class Counted:
    """What an erasure of one target would delete, store by store (configuration order)."""

    key: str
    by_store: Mapping[str, ErasureResult]
    root_tables: Mapping[str, frozenset[str]]

    @property
    def total(self) -> int:
        return sum(r.total for r in self.by_store.values())

    @property
    def views(self) -> int:
        """Rows of viewer-keyed (root) tables in every store: what the approval threshold counts.

        Child rows (a view's events) ride along with their view, so they do
        not make a request "large".
        """
        return sum(n for store, result in self.by_store.items()
                   for table, n in result.counts.items() if table in self.root_tables[store])

    def to_json(self) -> dict[str, dict[str, int]]:
        return {store: dict(result.counts) for store, result in self.by_store.items()}


def open_store(settings: StoreSettings) -> ViewStore:
    """The store class for the URL's family: ClickHouse (clickhouse://, chdb://) or a SQL database.

    ``ClickHouseStore`` has ``ViewStore``'s boundary (count, erase, erase_many,
    check_schema, purge_older_than, distinct_viewer_ids, settings, table_names,
    close); its module, and its drivers, load only when such a store is opened.
    """
    scheme = settings.url.split(":", 1)[0].lower()
    if scheme in ("clickhouse", "chdb"):
        from erasure.store.clickhouse import ClickHouseStore

        return ClickHouseStore(settings)  # type: ignore[return-value]
    return ViewStore(settings)


class Stores:
    """The configured view stores by name, each opened on first use and closed together."""

    @classmethod
    def from_config(cls, config: Config) -> Stores:
        from erasure.state import resolve_sqlite_url

        return cls([dataclasses.replace(s, url=resolve_sqlite_url(s.url, config.base_dir)) for s in config.stores])

    def __init__(self, settings: list[StoreSettings], *, opened: Mapping[str, ViewStore] | None = None) -> None:
        self._settings = {s.name: s for s in settings}
        self._open: dict[str, ViewStore] = dict(opened or {})

    @property
    def names(self) -> list[str]:
        return list(self._settings)

    def settings(self, name: str) -> StoreSettings:
        return self._settings[name]

    def description(self, name: str) -> str:
        return self._settings[name].description

    def __getitem__(self, name: str) -> ViewStore:
        if name not in self._open:
            self._open[name] = open_store(self._settings[name])
        return self._open[name]

    def __iter__(self) -> Iterator[tuple[str, ViewStore]]:
        for name in self._settings:
            yield name, self[name]

    def root_tables(self, name: str) -> frozenset[str]:
        return frozenset(t.name for t in self._settings[name].tables if not t.is_child)

    def count(self, target: Target) -> Counted:
        """Count ``target`` in every store; a store that cannot answer raises (nothing is partial here)."""
        return Counted(key=target.key, by_store={name: store.count(target) for name, store in self},
                       root_tables={name: self.root_tables(name) for name in self._settings})

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
