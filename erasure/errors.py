"""One exception hierarchy for the whole library.

Every error a user can meet is an ``ErasureError``; its message says what went
wrong and what to do next. Each class carries the exit code the CLI ends with
(``exit_code``; ``cli.py`` reads nothing else), so the class chosen is part of
the contract:

    1   the command ran into something that needs attention
    2   usage or configuration: a wrong option value, config key, URL,
        credential, missing table or broken template; fix it and run again
    75  temporary: a service is unreachable; cron may simply retry

``TemporaryError`` wins over everything else (``exit_code_for``), so a class
such as ``StoreUnavailableError(StoreError, TemporaryError)`` is temporary even
though its family is a setup problem.
"""

from typing import ClassVar

EXIT_ATTENTION, EXIT_USAGE, EXIT_TEMPFAIL = 1, 2, 75


class ErasureError(Exception):
    """Base class for every error raised by erasure."""

    exit_code: ClassVar[int] = EXIT_ATTENTION


class ConfigError(ErasureError):
    """The configuration file or an option is wrong; the message names the key and the fix."""

    exit_code = EXIT_USAGE


class UsageError(ConfigError):
    """An option's value is not one the command accepts; the message lists the valid ones."""


class TemporaryError(ErasureError):
    """A service is unreachable right now; running again later may succeed."""

    exit_code = EXIT_TEMPFAIL


class MailboxError(ErasureError):
    """The mailbox refused an operation."""


class MailboxLoginError(MailboxError, ConfigError):
    """The mailbox server refused the configured credentials (a usage error, not a retry)."""


class MailboxUnavailableError(MailboxError, TemporaryError):
    """The mailbox server could not be reached or dropped the connection."""


class StoreError(ErasureError):
    """The view store refused an operation or does not match the configuration."""

    exit_code = EXIT_USAGE


class StoreUnavailableError(StoreError, TemporaryError):
    """The view store could not be reached, or a lock could not be taken in time."""


class StateError(ErasureError):
    """The state database is unreachable or not at the expected schema."""

    exit_code = EXIT_USAGE


class StateUnavailableError(StateError, TemporaryError):
    """The state database could not be reached."""


class RequestNotFoundError(ErasureError):
    """No request has the reference or id given."""

    exit_code = EXIT_USAGE


class InvalidTransitionError(ErasureError):
    """The decision asked for is not allowed in the request's current state."""

    exit_code = EXIT_USAGE


class TenantOverrideRequiredError(InvalidTransitionError):
    """Approving a request for a tenant other than the one it was verified for needs --override-tenant and --reason."""


class TemplateError(ErasureError):
    """A reply template is missing or refers to a value that was not provided."""

    exit_code = EXIT_USAGE


class DeliveryError(ErasureError):
    """A reply could not be handed to the delivery backend."""


class AuditError(ErasureError):
    """The audit trail cannot be written or read as asked."""


class ParserUnavailableError(TemporaryError):
    """The parser's worker process could not be started; the message stays in the mailbox for the next run."""


def exit_code_for(exc: ErasureError) -> int:
    """The exit code for an error: temporary first, then the class's own code."""
    return EXIT_TEMPFAIL if isinstance(exc, TemporaryError) else exc.exit_code
