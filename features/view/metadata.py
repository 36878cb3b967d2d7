"""Feature metadata: what every column of the three-in-one view means.

Every feature carries its source, a Chinese and an English description, its unit and the
expected monotone direction of risk. The direction is used by the models for monotone
constraints and by the reason codes: ``+1`` means a higher value may only raise the
probability of default, ``-1`` that it may only lower it, ``0`` no constraint.

A registered private loan in good standing must never lower a grade by itself
(温州市民间融资管理条例 第十八条, DOMAIN.md §4.2): the features that describe registered
loans as such therefore carry direction ``-1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Source = Literal["entity", "government", "pboc", "private_lending"]
Direction = Literal[-1, 0, 1]
Kind = Literal["numeric", "categorical", "flag"]


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the three-in-one view.

    Parameters
    ----------
    name
        Column name in the view (snake case, English).
    source
        Which of the three sources it comes from, or ``entity`` for registry facts.
    zh, en
        What it measures, in Chinese and in English (used for reason codes).
    unit
        ``count``, ``yuan``, ``months``, ``days``, ``share``, ``percent points``, ``grade``,
        ``flag`` or ``category``.
    direction
        Expected monotone direction of risk: +1, -1 or 0 (see the module docstring).
    kind
        ``numeric``, ``flag`` (0/1) or ``categorical`` (a code, never constrained).
    fill
        Value for an entity with no record in the source (0 for counts and flags); None keeps
        it missing, which is right for "months since …" and ratios.
    """

    name: str
    source: Source
    zh: str
    en: str
    unit: str
    direction: Direction = 0
    kind: Kind = "numeric"
    fill: float | None = 0

    def __post_init__(self) -> None:
        if self.kind == "categorical" and self.direction != 0:
            raise ValueError(f"{self.name}: a categorical feature cannot have a direction")
        if not self.zh or not self.en:
            raise ValueError(f"{self.name}: needs Chinese and English descriptions")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the view's metadata file)."""
        return asdict(self)


def counted(name: str, source: Source, zh: str, en: str, direction: Direction) -> FeatureSpec:
    """A count feature (unit ``count``, missing means zero)."""
    return FeatureSpec(name, source, zh, en, "count", direction)


def flag(name: str, source: Source, zh: str, en: str, direction: Direction) -> FeatureSpec:
    """A 0/1 flag (missing means 0)."""
    return FeatureSpec(name, source, zh, en, "flag", direction, kind="flag")
