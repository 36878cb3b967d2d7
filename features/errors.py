"""Domain errors of the feature layer.

Every error names the offending ``field`` and the ``rule`` that failed, so that the CLI and
the API can tell the user exactly what to fix. Only ``api/`` turns these into HTTP responses.
"""

from __future__ import annotations


class FeatureError(ValueError):
    """Base class: a value broke a named rule of a named field.

    Parameters
    ----------
    field
        The field (column, identifier, option) whose value is wrong.
    rule
        A stable machine-readable rule name, e.g. ``uscc_check``.
    message
        Human-readable explanation; never contains a resident ID or a name.
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.field = field
        self.rule = rule
        self.message = message
        super().__init__(f"{field}: {rule}: {message}")


class IdentifierError(FeatureError):
    """A USCC or resident ID failed one of its structural or check-character rules."""


class CatalogError(FeatureError):
    """The credit information catalog (信用信息目录) is malformed."""


class DeliveryError(FeatureError):
    """A departmental delivery cannot be ingested at all (wrong columns, encoding, format).

    Raised before anything is written: the warehouse is left exactly as it was.
    """


class DeliveryConflictError(FeatureError):
    """A delivery id that was already ingested arrived again with different contents."""
