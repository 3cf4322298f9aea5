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


class TimeZoneMissingError(ConfigError):
    """The config file does not name the office time zone (`erasure init --time-zone` writes it)."""


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


class StoreVerificationError(StoreError):
    """Rows still matched after deleting; the transaction was rolled back and the request needs review.

    Unlike the rest of its family this is not a setup problem: the configuration
    is fine and retrying blindly could race the same writer again, so a person
    looks at the request (exit 1, attention).
    """

    exit_code = EXIT_ATTENTION


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


class RequestHeldError(InvalidTransitionError):
    """A legal hold covers the request: nothing of it is erased until the hold is removed."""


class HoldNotFoundError(ErasureError):
    """No legal hold has the id given."""

    exit_code = EXIT_USAGE


class TemplateError(ErasureError):
    """A reply template is missing or refers to a value that was not provided."""

    exit_code = EXIT_USAGE


class DeliveryError(ErasureError):
    """A reply could not be handed to the delivery backend."""


class DeliveryTemporaryError(DeliveryError):
    """The message was not accepted this time (4xx, dropped connection, timeout); retry later.

    This message only: the outbox keeps sending the others and retries this one
    on its schedule, so it is deliberately not a ``TemporaryError`` (which stops
    a run). Should it ever reach the CLI it needs attention (exit 1).
    """


class DeliveryUnavailableError(DeliveryTemporaryError, TemporaryError):
    """The delivery server cannot be used right now (unreachable, TLS or login failed); stop this run, retry later (exit 75)."""


class DeliveryPermanentError(DeliveryError):
    """The message will never be accepted as it is (5xx, or it failed our checks); park it for the officer (exit 1, attention)."""


class AuditError(ErasureError):
    """The audit trail cannot be written or read as asked."""


class ParserUnavailableError(TemporaryError):
    """The parser's worker process could not be started; the message stays in the mailbox for the next run."""


def exit_code_for(exc: ErasureError) -> int:
    """The exit code for an error: temporary first, then the class's own code."""
    return EXIT_TEMPFAIL if isinstance(exc, TemporaryError) else exc.exit_code
