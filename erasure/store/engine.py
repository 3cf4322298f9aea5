"""Opening the store: store.url to an engine, the password from the environment, driver options per family.

Its own module because a URL is where the families first differ (utf8mb4 on
MySQL, pre-ping on servers, no file created for a mistyped SQLite path) and
where a configuration mistake should be reported as one, naming store.url.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from erasure.config import DEFAULT_STORE, StoreSettings, read_secret
from erasure.errors import StoreError


def setting_name(settings: StoreSettings, key: str) -> str:
    """How an error names one of this store's settings: ``store.url``, or the named store's ``url``."""
    return f"store.{key}" if settings.name == DEFAULT_STORE else f"the {key} of store {settings.name!r} ([[stores]])"


def open_engine(settings: StoreSettings) -> Engine:
    """An engine for store.url, with the password from store.password_env and utf8mb4 forced on MySQL."""
    try:
        url = make_url(settings.url)
    except sa_exc.ArgumentError as exc:
        raise StoreError(f"{setting_name(settings, 'url')} = {settings.url!r} is not a SQLAlchemy URL ({exc}); e.g. sqlite:///views.db") from exc
    if settings.password_env:
        url = url.set(password=read_secret(settings.password_env, setting_name(settings, "password_env")))
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() in ("mysql", "mariadb"):
        # Exact matching compares utf8mb4 bytes; parameters must arrive in utf8mb4.
        url = url.update_query_dict({"charset": "utf8mb4"})
    if url.get_backend_name() != "sqlite":
        kwargs["pool_pre_ping"] = True
    try:
        return sa.create_engine(url, **kwargs)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"cannot use {setting_name(settings, 'url')} {url.render_as_string(hide_password=True)}: {exc}; "
            "use sqlite:///..., postgresql+psycopg://... or mysql+pymysql://... (install erasure[postgres] / erasure[mysql])"
        ) from exc


def check_sqlite_file(url: URL) -> None:
    """A missing SQLite file is a wrong store.url, not an empty store: say so instead of creating one."""
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return
    if not Path(db).exists():
        raise StoreError(f"store.url points to {db}, which does not exist; fix store.url (a relative SQLite path in the config starts at the config file's folder)")
