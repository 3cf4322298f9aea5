"""Shared fixtures. Server fixtures live in their own plugin modules, listed here."""

pytest_plugins: list[str] = [
    "tests.store_backends",
    "tests.clickhouse_backends",
    "tests.smtp_server",
    "tests.dovecot_server",
    "tests.world",
]
