"""Shared fixtures. Server fixtures live in their own plugin modules, listed here."""

pytest_plugins: list[str] = [
    "tests.dovecot_server",
]
