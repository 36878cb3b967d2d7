"""Domain errors of the model layer.

Every error names the offending ``field`` (a parameter, a column, an input such as ``y`` or
``pd``) and the ``rule`` that failed, so that the CLI and the API can tell the user exactly
what to fix. Only ``api/`` turns these into HTTP responses.
"""

from __future__ import annotations


class ModelError(ValueError):
    """Base class: a value broke a named rule of a named field.

    Parameters
    ----------
    field
        The field (parameter, column, input array) whose value is wrong.
    rule
        A stable machine-readable rule name, e.g. ``binary_labels``.
    message
        Human-readable explanation; never contains a resident ID or a name.

    Examples
    --------
    >>> error = ModelError("pd", "probability", "PDs must lie in [0, 1]")
    >>> error.field, error.rule
    ('pd', 'probability')
    >>> str(error)
    'pd: probability: PDs must lie in [0, 1]'
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.field = field
        self.rule = rule
        self.message = message
        super().__init__(f"{field}: {rule}: {message}")


class ParameterError(ModelError):
    """An estimator parameter is outside its allowed values (checked at ``fit``).

    ``field`` is the parameter's name and the message lists the allowed values.
    """
