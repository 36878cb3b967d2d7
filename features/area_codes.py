"""History of the Wenzhou GB/T 2260 area codes (行政区划代码).

A USCC keeps the area code of the authority that issued it, and a resident ID keeps the
code of the place of first registration. Neither changes when districts are merged,
renamed or split, so a code must be mapped to the *current* district through this
history: 洞头县 330322 became 洞头区 330305 in 2015 (together with 灵昆 from 龙湾区 330303),
and 苍南县龙港镇 became 龙港市 330383 on 2019-08-16 while entities registered there before
keep 330327. The table itself lives in ``area_codes.yaml`` next to this module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import IdentifierError

__all__ = ["AreaCode", "AreaCodeHistory", "AreaCodeSplit", "load_area_codes"]

_DEFAULT_PATH = Path(__file__).with_name("area_codes.yaml")


@dataclass(frozen=True)
class AreaCode:
    """One GB/T 2260 code with the period in which it carried ``name``.

    ``valid_to`` is the first day the code was no longer in force (exclusive), or None.
    """

    code: str
    name: str
    valid_from: dt.date
    valid_to: dt.date | None
    successor: str | None


@dataclass(frozen=True)
class AreaCodeSplit:
    """Part of district ``from_code`` (the listed towns) moved to ``to_code`` on ``effective``."""

    from_code: str
    to_code: str
    effective: dt.date
    towns: tuple[str, ...]


class _CodeRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^\d{6}$")
    name: str
    valid_from: dt.date
    valid_to: dt.date | None
    successor: str | None = Field(pattern=r"^\d{6}$")
    source: str


class _SplitRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_code: str = Field(alias="from", pattern=r"^\d{6}$")
    to_code: str = Field(alias="to", pattern=r"^\d{6}$")
    effective: dt.date
    towns: tuple[str, ...]
    source: str


class _AreaCodeFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    codes: tuple[_CodeRecord, ...]
    splits: tuple[_SplitRecord, ...]


def _unknown(code: str) -> IdentifierError:
    return IdentifierError("area_code", "area_code_unknown", f"{code!r} is not a known area code")


class AreaCodeHistory:
    """Look-ups over the area-code history; build it with `load_area_codes`.

    Examples
    --------
    >>> history = load_area_codes()
    >>> history.current_district("330322")
    '330305'
    >>> history.current_district("330327", town="龙港镇")
    '330383'
    >>> history.name("330383")
    '龙港市'
    """

    def __init__(self, codes: tuple[AreaCode, ...], splits: tuple[AreaCodeSplit, ...]) -> None:
        self._codes = {record.code: record for record in codes}
        self.splits = splits
        for record in codes:
            if record.successor is not None and record.successor not in self._codes:
                raise _unknown(record.successor)
        for split in splits:
            for code in (split.from_code, split.to_code):
                if code not in self._codes:
                    raise _unknown(code)

    @property
    def records(self) -> tuple[AreaCode, ...]:
        """Every code in the history, in code order."""
        return tuple(self._codes[code] for code in sorted(self._codes))

    def get(self, code: str) -> AreaCode:
        """The record of ``code``; raise `IdentifierError` (``area_code_unknown``) if absent."""
        try:
            return self._codes[code]
        except KeyError:
            raise _unknown(code) from None

    def name(self, code: str) -> str:
        """The name of ``code`` (e.g. ``'瓯海区'`` for ``'330304'``)."""
        return self.get(code).name

    def in_force(self, code: str, on: dt.date) -> bool:
        """Whether ``code`` was in force on ``on`` (unknown codes raise)."""
        record = self.get(code)
        return record.valid_from <= on and (record.valid_to is None or on < record.valid_to)

    def current_district(
        self, code: str, town: str | None = None, on: dt.date | None = None
    ) -> str:
        """The district that ``code`` (plus, optionally, the town) belongs to on ``on``.

        Successors are followed (330322 → 330305) and a town that was split off moves with
        it (330327 + 龙港镇 → 330383 from 2019-08-16). Province and city codes (330000,
        330300) are returned unchanged: no district follows from them.

        Parameters
        ----------
        code
            A GB/T 2260 code, e.g. positions 3-8 of a USCC.
        town
            The town (乡镇/街道) of the address, if known; needed to follow splits.
        on
            The date of the map to use; None means today's.

        Returns
        -------
        str
            The county-level code in force on ``on``.

        Raises
        ------
        IdentifierError
            ``area_code_unknown`` for codes not in the table, ``area_code_not_in_force``
            if ``on`` is before the code came into force.
        """
        record = self.get(code)
        if on is not None and on < record.valid_from:
            message = f"{code!r} ({record.name}) only came into force on {record.valid_from}"
            raise IdentifierError("area_code", "area_code_not_in_force", message)
        town = town.strip() if town else None
        for _ in range(len(self._codes) + len(self.splits)):  # bounded: no cycles possible
            moved = self._moved(record, town, on)
            if moved is None:
                return record.code
            record = self._codes[moved]
        raise IdentifierError("area_code", "area_code_cycle", f"{code!r}: successor cycle")

    def _moved(self, record: AreaCode, town: str | None, on: dt.date | None) -> str | None:
        for split in self.splits:
            if (
                split.from_code == record.code
                and town in split.towns
                and (on is None or on >= split.effective)
            ):
                return split.to_code
        ended = record.valid_to is not None and (on is None or on >= record.valid_to)
        return record.successor if ended else None

    def district_codes(self, on: dt.date | None = None) -> tuple[str, ...]:
        """County-level codes (districts, counties, county-level cities) in force on ``on``.

        ``on=None`` means today: the 12 current districts of Wenzhou.
        """
        return tuple(
            sorted(
                record.code
                for record in self._codes.values()
                if not record.code.endswith("00")
                and (record.valid_to is None if on is None else self.in_force(record.code, on))
            )
        )


def load_area_codes(path: Path | None = None) -> AreaCodeHistory:
    """Load and validate the area-code history.

    Parameters
    ----------
    path
        A YAML file shaped like the packaged ``area_codes.yaml`` (the default).

    Raises
    ------
    IdentifierError
        ``area_code_table`` if the file is malformed (unknown keys are refused),
        ``area_code_unknown`` if a successor or split names a code that is not listed.
    """
    source = path or _DEFAULT_PATH
    try:
        table = _AreaCodeFile.model_validate(yaml.safe_load(source.read_text(encoding="utf-8")))
    except ValidationError as error:
        raise IdentifierError("area_codes", "area_code_table", str(error)) from error
    codes = tuple(
        AreaCode(r.code, r.name, r.valid_from, r.valid_to, r.successor) for r in table.codes
    )
    splits = tuple(
        AreaCodeSplit(s.from_code, s.to_code, s.effective, s.towns) for s in table.splits
    )
    return AreaCodeHistory(codes, splits)
