"""Domain errors of the scoring layer (each names the field and the rule that failed)."""

from __future__ import annotations


class ScoringError(ValueError):
    """A value broke a named rule of a named field.

    Examples
    --------
    >>> str(ScoringError("pd", "probability", "PDs must lie in [0, 1]"))
    'pd: probability: PDs must lie in [0, 1]'
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.field = field
        self.rule = rule
        self.message = message
        super().__init__(f"{field}: {rule}: {message}")


class PolicyError(ScoringError):
    """The scoring policy file is unreadable or breaks a rule (field: its dotted location)."""
