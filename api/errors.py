"""Domain errors of the service layer; `api.handlers` maps them (and the other packages'
errors) to HTTP in one place. Each names the field and the rule, like every wzcredit error."""

from __future__ import annotations


class ServiceError(ValueError):
    """A request broke a named rule of a named field (→ 400 unless a subclass says otherwise)."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.field = field
        self.rule = rule
        self.message = message
        super().__init__(f"{field}: {rule}: {message}")


class Unauthenticated(ServiceError):  # noqa: N818 - HTTP's own word
    """No key, or a key that is unknown or revoked (→ 401)."""


class Forbidden(ServiceError):  # noqa: N818
    """The key's role may not do this, or not for this subject (→ 403)."""


class ConsentRequired(Forbidden):
    """A natural person's data without a recorded consent for this purpose and date (→ 403)."""


class NotFound(ServiceError, LookupError):  # noqa: N818
    """No such entity, record, objection or repair (→ 404)."""


class Conflict(ServiceError):  # noqa: N818
    """The request contradicts the current state, e.g. repairing a blacklisted entity (→ 409)."""


class Unavailable(ServiceError):  # noqa: N818
    """No model or no score snapshot is loaded yet (→ 503)."""
