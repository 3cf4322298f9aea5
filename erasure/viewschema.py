"""The demo/test view store: a Mux-Data-like ``views`` table and its ``view_events``.

Real deployments bring their own schema and describe it in ``[[store.tables]]``;
this module exists so that ``erasure demo``, the tests and the benchmarks all
run against the same realistic shape without anyone writing DDL by hand. The
matching configuration is :data:`DEMO_STORE_TABLES`.

Views are pseudonymous by design: no email, name or device identifier, and the
IP address is stored truncated (last octet zeroed) as the service's privacy FAQ
promises for EU views. Timestamps are naive UTC, which every backend stores the
same way.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from erasure.config import StoreTable

metadata = sa.MetaData()

views = sa.Table(
    "views",
    metadata,
    sa.Column("view_id", sa.String(64), primary_key=True),
    sa.Column("environment_id", sa.String(64), nullable=False),
    sa.Column("viewer_id", sa.String(256), nullable=False),
    sa.Column("video_title", sa.String(200)),
    sa.Column("player_name", sa.String(64)),
    sa.Column("os_name", sa.String(32)),
    sa.Column("country", sa.String(2)),
    sa.Column("ip_truncated", sa.String(45)),
    sa.Column("view_start", sa.DateTime(), nullable=False),
    sa.Column("watch_time_ms", sa.Integer),
    sa.Column("startup_time_ms", sa.Integer),
    sa.Column("rebuffer_count", sa.Integer),
    # (environment, viewer) first: every erasure matches on exactly this pair.
    sa.Index("ix_views_environment_viewer", "environment_id", "viewer_id"),
    sa.Index("ix_views_view_start", "view_start"),
)

# No FOREIGN KEY on purpose: analytics stores rarely enforce them, and the
# erasure engine must not rely on cascades it cannot see.
view_events = sa.Table(
    "view_events",
    metadata,
    sa.Column("event_id", sa.String(80), primary_key=True),
    sa.Column("view_id", sa.String(64), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
)

DEMO_STORE_TABLES: tuple[StoreTable, ...] = (
    StoreTable(name="views", viewer_column="viewer_id", tenant_column="environment_id", key="view_id", time_column="view_start"),
    StoreTable(name="view_events", parent="views", parent_key="view_id", time_column="ts"),
)
"""The ``[[store.tables]]`` entries that describe this schema."""

_TITLES = (
    "Big Buck Bunny", "Sintel", "Tears of Steel", "Elephants Dream", "Cosmos Laundromat",
    "Spring", "Agent 327", "Caminandes: Llamigos", "Product launch keynote", "Weekly news recap",
)
_PLAYERS = ("Mux Player", "Video.js", "hls.js", "Shaka Player", "ExoPlayer", "AVPlayer", "Roku")
_OS = ("iOS", "Android", "Windows", "macOS", "Linux", "tvOS", "Roku OS", "Tizen")
_COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "SE", "GB", "US", "CA", "BR", "JP", "IN")
# Documentation ranges (RFC 5737), last octet removed as promised for EU views.
_NETS = ("192.0.2", "198.51.100", "203.0.113")
_EVENTS = ("playerready", "viewstart", "playing", "pause", "seeked", "rebufferstart", "rebufferend", "ended")


def create_demo_schema(engine: Engine) -> None:
    """Create ``views`` and ``view_events`` (and their indexes) if they are missing."""
    metadata.create_all(engine)


def fill_synthetic_views(
    engine: Engine,
    tenants: dict[str, list[str]],
    viewer_ids_per_env: int,
    views_per_viewer: int,
    seed: int,
    now: datetime,
    *,
    events_per_view: int = 3,
    max_age_days: int = 120,
) -> dict[str, int]:
    """Insert deterministic synthetic views; returns rows inserted per table.

    The same viewer ids (``viewer-00001``...) appear in every environment on
    purpose: customers choose their own ids, so collisions across tenants are
    real, and the erasure engine must delete only the requester's. Ages spread
    up to ``max_age_days`` so that some views are past the 100-day retention.
    Same arguments, same rows: tests and the demo can rely on exact contents.
    """
    rng = random.Random(seed)
    if now.tzinfo is not None:
        now = now.astimezone(UTC).replace(tzinfo=None)
    view_rows: list[dict[str, object]] = []
    event_rows: list[dict[str, object]] = []
    totals = {"views": 0, "view_events": 0}
    n = 0
    with engine.begin() as conn:
        for tenant in sorted(tenants):
            for env in tenants[tenant]:
                for v in range(1, viewer_ids_per_env + 1):
                    viewer = f"viewer-{v:05d}"
                    for _ in range(views_per_viewer):
                        n += 1
                        view_id = f"{seed:x}-{n:08x}"
                        start = now - timedelta(seconds=rng.randrange(max_age_days * 86400))
                        watch = rng.randrange(5_000, 3_600_000)
                        view_rows.append({
                            "view_id": view_id,
                            "environment_id": env,
                            "viewer_id": viewer,
                            "video_title": rng.choice(_TITLES),
                            "player_name": rng.choice(_PLAYERS),
                            "os_name": rng.choice(_OS),
                            "country": rng.choice(_COUNTRIES),
                            "ip_truncated": f"{rng.choice(_NETS)}.0",
                            "view_start": start,
                            "watch_time_ms": watch,
                            "startup_time_ms": rng.randrange(80, 4_000),
                            "rebuffer_count": rng.choice((0, 0, 0, 0, 1, 1, 2, 5)),
                        })
                        offsets = sorted(rng.randrange(watch) for _ in range(events_per_view))
                        for i, off in enumerate(offsets):
                            event_rows.append({
                                "event_id": f"{view_id}-{i}",
                                "view_id": view_id,
                                "ts": start + timedelta(milliseconds=off),
                                "event_type": _EVENTS[0] if i == 0 else rng.choice(_EVENTS[1:]),
                            })
                        if len(view_rows) >= 5_000:
                            _flush(conn, view_rows, event_rows, totals)
        _flush(conn, view_rows, event_rows, totals)
    return totals


def _flush(conn: sa.Connection, view_rows: list, event_rows: list, totals: dict[str, int]) -> None:
    # Parents first: readers of a half-loaded store never see orphan events.
    if view_rows:
        conn.execute(views.insert(), view_rows)
        totals["views"] += len(view_rows)
        view_rows.clear()
    if event_rows:
        conn.execute(view_events.insert(), event_rows)
        totals["view_events"] += len(event_rows)
        event_rows.clear()
