"""One exception hierarchy for the whole library.

Every error a user can meet is an ``ErasureError``; its message says what went
wrong and what to do next. ``cli.py`` maps the classes to exit codes, so the
class chosen is part of the contract: ``TemporaryError`` subclasses mean
"try again later" (exit 75), everything else under ``ConfigError`` is a usage
problem (exit 2).
"""


class ErasureError(Exception):
    """Base class for every error raised by erasure."""


class ConfigError(ErasureError):
    """The configuration file or an option is wrong; the message names the key and the fix."""


class TemporaryError(ErasureError):
    """A service is unreachable right now; running again later may succeed."""


class MailboxError(ErasureError):
    """The mailbox refused an operation."""


class MailboxUnavailableError(MailboxError, TemporaryError):
    """The mailbox server could not be reached or dropped the connection."""


class StoreError(ErasureError):
    """The view store refused an operation or does not match the configuration."""


class StoreUnavailableError(StoreError, TemporaryError):
    """The view store could not be reached, or a lock could not be taken in time."""


class StateError(ErasureError):
    """The state database is unreachable or not at the expected schema."""


class StateUnavailableError(StateError, TemporaryError):
    """The state database could not be reached."""


class RequestNotFoundError(ErasureError):
    """No request has the reference or id given."""


class InvalidTransitionError(ErasureError):
    """The decision asked for is not allowed in the request's current state."""


class TenantOverrideRequiredError(InvalidTransitionError):
    """Approving a request for a tenant other than the one it was verified for needs --override-tenant and --reason."""


class TemplateError(ErasureError):
    """A reply template is missing or refers to a value that was not provided."""


class DeliveryError(ErasureError):
    """A reply could not be handed to the delivery backend."""


class AuditError(ErasureError):
    """The audit trail cannot be written or read as asked."""
