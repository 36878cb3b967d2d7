"""统一社会信用代码 (USCC, GB 32100-2015) and 公民身份号码 (resident ID, GB 11643-1999).

Every check returns the name of the *first* rule a code breaks, so that a rejected row
can be explained and counted by rule. USCC rules, in order: ``uscc_length``,
``uscc_charset``, ``uscc_org_check`` (GB 11714 check character at position 17) and
``uscc_check`` (GB 32100 MOD 31 check character at position 18). Resident-ID rules, in
order: ``id_length``, ``id_charset``, ``id_birth_date`` and ``id_check`` (ISO 7064 MOD 11-2).
Whether a birth date lies in the future is judged elsewhere, against the delivery date.

Scalar functions serve forms and the API; ``uscc_errors`` and ``resident_id_errors`` check
whole Arrow columns with numpy on the raw bytes, and ``make_usccs``/``make_resident_ids``
build valid codes in bulk for synthetic data. Messages about resident IDs never contain
the ID or any of its digits.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import sliding_window_view

from features.area_codes import AreaCode, AreaCodeHistory, AreaCodeSplit, load_area_codes
from features.errors import IdentifierError

__all__ = [
    "ORG_CODE_WEIGHTS",
    "RESIDENT_ID_WEIGHTS",
    "USCC_ALPHABET",
    "USCC_WEIGHTS",
    "AreaCode",
    "AreaCodeHistory",
    "AreaCodeSplit",
    "ResidentIdParts",
    "UsccParts",
    "is_valid_resident_id",
    "is_valid_uscc",
    "load_area_codes",
    "make_resident_id",
    "make_resident_ids",
    "make_uscc",
    "make_usccs",
    "normalise_code",
    "parse_resident_id",
    "parse_uscc",
    "resident_id_error",
    "resident_id_errors",
    "uscc_error",
    "uscc_errors",
    "validate_resident_id",
    "validate_uscc",
]

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS: tuple[int, ...] = tuple(pow(3, i, 31) for i in range(17))
ORG_CODE_WEIGHTS: tuple[int, ...] = (3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_WEIGHTS: tuple[int, ...] = tuple(pow(2, 17 - i, 11) for i in range(17))

USCC_RULES = ("uscc_length", "uscc_charset", "uscc_org_check", "uscc_check")
RESIDENT_ID_RULES = ("id_length", "id_charset", "id_birth_date", "id_check")

_DIGITS = "0123456789"
_ID_CHECK_CHARS = "10X98765432"  # indexed by S mod 11
_ORG_CHECK_CHARS = "0123456789X0"  # indexed by C = 11 - S mod 11 (1..11)
# Allowed characters per USCC position (DOMAIN.md §1.1: area code digits, 31-symbol set
# elsewhere; position 17 is a GB 11714 check character, so a digit or X).
_USCC_ALLOWED: tuple[str, ...] = (
    (USCC_ALPHABET,) * 2 + (_DIGITS,) * 6 + (USCC_ALPHABET,) * 8 + (_DIGITS + "X", USCC_ALPHABET)
)
_ID_ALLOWED: tuple[str, ...] = (_DIGITS,) * 17 + (_DIGITS + "X",)
_PLACE = {
    USCC_ALPHABET: "the 31-symbol GB 32100 set",
    _DIGITS: "a digit",
    _DIGITS + "X": "a digit or X",
}
_CHUNK_ROWS = 1 << 18

Uint8Matrix = npt.NDArray[np.uint8]
FloatMatrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
RuleCodes = npt.NDArray[np.int8]


def _table(values: dict[str, int]) -> FloatMatrix:
    """256-entry byte -> value look-up (float32 for BLAS sums), -1 for bytes not allowed."""
    table = np.full(256, -1, dtype=np.float32)
    for char, value in values.items():
        table[ord(char)] = value
    return table


_USCC_VALUE = _table({c: i for i, c in enumerate(USCC_ALPHABET)})
_ORG_VALUE = _table({c: int(c, 36) for c in _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
_DIGIT_VALUE = _table({c: int(c) for c in _DIGITS})
_USCC_ALPHABET_BYTES = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
_ORG_CHECK_BYTES = np.frombuffer(_ORG_CHECK_CHARS.encode(), dtype=np.uint8)
_ID_CHECK_BYTES = np.frombuffer(_ID_CHECK_CHARS.encode(), dtype=np.uint8)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


# --------------------------------------------------------------------------- scalar checks
def normalise_code(value: str) -> str:
    """Normalise a typed identifier: half-width, no whitespace anywhere, upper case.

    Full-width characters (and the ideographic space U+3000) are folded by NFKC.

    Examples
    --------
    >>> normalise_code(" ９１３３０３０４２５４４９８７８５ｇ ")
    '91330304254498785G'
    >>> normalise_code("3303 0219\\t900307 001x")
    '33030219900307001X'
    """
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def _org_check_char(body: str) -> str:
    total = sum(int(c, 36) * w for c, w in zip(body, ORG_CODE_WEIGHTS, strict=True))
    return _ORG_CHECK_CHARS[11 - total % 11]


def _uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[-total % 31]


def _resident_id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def _first_bad_position(code: str, allowed: tuple[str, ...]) -> int | None:
    return next((i for i, c in enumerate(code) if c not in allowed[i]), None)


def uscc_error(code: str) -> str | None:
    """Return the first USCC rule an already-normalised ``code`` breaks, or None.

    Examples
    --------
    >>> uscc_error("91330304254498785G") is None
    True
    >>> uscc_error("91330300MA2L9GRT34")  # position 17 should be '1' (GB 11714)
    'uscc_org_check'
    """
    if len(code) != 18:
        return "uscc_length"
    if _first_bad_position(code, _USCC_ALLOWED) is not None:
        return "uscc_charset"
    if _org_check_char(code[8:16]) != code[16]:
        return "uscc_org_check"
    if _uscc_check_char(code[:17]) != code[17]:
        return "uscc_check"
    return None


def _birth_date(code: str) -> dt.date | None:
    try:
        born = dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return None
    return born if born >= dt.date(1900, 1, 1) else None


def resident_id_error(code: str) -> str | None:
    """Return the first resident-ID rule an already-normalised ``code`` breaks, or None.

    Examples
    --------
    >>> resident_id_error("11010519491231002X") is None
    True
    >>> resident_id_error("11010519490231002X")
    'id_birth_date'
    """
    if len(code) != 18:
        return "id_length"
    if _first_bad_position(code, _ID_ALLOWED) is not None:
        return "id_charset"
    if _birth_date(code) is None:
        return "id_birth_date"
    if _resident_id_check_char(code[:17]) != code[17]:
        return "id_check"
    return None


def _uscc_message(code: str, rule: str) -> str:
    if rule == "uscc_length":
        return f"must have 18 characters, got {len(code)}"
    if rule == "uscc_charset":
        i = _first_bad_position(code, _USCC_ALLOWED) or 0
        place = _PLACE[_USCC_ALLOWED[i]]
        return f"character {code[i]!r} at position {i + 1} is not allowed there ({place})"
    if rule == "uscc_org_check":
        expected = _org_check_char(code[8:16])
        return f"check character at position 17 is {code[16]!r}, expected {expected!r} (GB 11714)"
    expected = _uscc_check_char(code[:17])
    return (
        f"check character at position 18 is {code[17]!r}, expected {expected!r} (GB 32100 MOD 31)"
    )


def _resident_id_message(code: str, rule: str) -> str:
    # Privacy: describe the failed check only, never the ID or its digits.
    if rule == "id_length":
        return f"must have 18 characters, got {len(code)}"
    if rule == "id_charset":
        i = _first_bad_position(code, _ID_ALLOWED) or 0
        return f"position {i + 1} must be a digit" + (" or 'X'" if i == 17 else "")
    if rule == "id_birth_date":
        return "positions 7-14 are not a real birth date on or after 1900-01-01 (YYYYMMDD)"
    return "check character at position 18 does not match ISO 7064 MOD 11-2 over positions 1-17"


def validate_uscc(value: str, field: str = "uscc") -> str:
    """Normalise and check a USCC; return it or raise `IdentifierError`.

    Parameters
    ----------
    value
        The code as typed or delivered (full-width, spaces and lower case are accepted).
    field
        Name of the field the code came from, carried by the error.

    Returns
    -------
    str
        The normalised 18-character code.

    Raises
    ------
    IdentifierError
        With ``rule`` one of ``uscc_length``, ``uscc_charset``, ``uscc_org_check``,
        ``uscc_check`` and a message naming the failed check.

    Examples
    --------
    >>> validate_uscc("9133038225602433xw")
    '9133038225602433XW'
    >>> validate_uscc("91330382142209555X")
    Traceback (most recent call last):
    ...
    features.errors.IdentifierError: uscc: uscc_check: check character at position 18 is 'X', \
expected 'K' (GB 32100 MOD 31)
    """
    code = normalise_code(value)
    rule = uscc_error(code)
    if rule is not None:
        raise IdentifierError(field, rule, _uscc_message(code, rule))
    return code


def validate_resident_id(value: str, field: str = "resident_id") -> str:
    """Normalise and check a resident ID; return it or raise `IdentifierError`.

    Parameters
    ----------
    value
        The ID as typed or delivered; a lower-case ``x`` is accepted.
    field
        Name of the field the ID came from, carried by the error.

    Returns
    -------
    str
        The normalised 18-character ID.

    Raises
    ------
    IdentifierError
        With ``rule`` one of ``id_length``, ``id_charset``, ``id_birth_date``, ``id_check``.
        The message names the failed check but never the ID or any of its digits.

    Examples
    --------
    >>> validate_resident_id("34052419800101001x")
    '34052419800101001X'
    """
    code = normalise_code(value)
    rule = resident_id_error(code)
    if rule is not None:
        raise IdentifierError(field, rule, _resident_id_message(code, rule))
    return code


def is_valid_uscc(value: object) -> bool:
    """True if ``value`` is a string that normalises to a valid USCC."""
    return isinstance(value, str) and uscc_error(normalise_code(value)) is None


def is_valid_resident_id(value: object) -> bool:
    """True if ``value`` is a string that normalises to a valid resident ID."""
    return isinstance(value, str) and resident_id_error(normalise_code(value)) is None


# ------------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class UsccParts:
    """The five parts of a USCC (positions 1, 2, 3-8, 9-17, 18)."""

    registration_authority: str
    entity_kind: str
    area_code: str
    organisation_code: str
    check: str


@dataclass(frozen=True)
class ResidentIdParts:
    """The parts of a resident ID; an odd sequence number means male."""

    area_code: str
    birth_date: dt.date
    sequence: int
    gender: Literal["male", "female"]
    check: str


def parse_uscc(value: str) -> UsccParts:
    """Validate a USCC and split it into its parts.

    ``area_code`` is the registering authority's area *when the code was issued*; map it to
    today's district with `AreaCodeHistory.current_district`.
    """
    code = validate_uscc(value)
    return UsccParts(code[0], code[1], code[2:8], code[8:17], code[17])


def parse_resident_id(value: str) -> ResidentIdParts:
    """Validate a resident ID and split it into its parts.

    Examples
    --------
    >>> parts = parse_resident_id("33030219900307001X")
    >>> parts.area_code, parts.birth_date.isoformat(), parts.sequence, parts.gender
    ('330302', '1990-03-07', 1, 'male')
    """
    code = validate_resident_id(value)
    sequence = int(code[14:17])
    birth_date = _birth_date(code)
    assert birth_date is not None  # guaranteed by validate_resident_id
    gender: Literal["male", "female"] = "male" if sequence % 2 else "female"
    return ResidentIdParts(code[:6], birth_date, sequence, gender, code[17])


# ---------------------------------------------------------------------------- generators
def _check_part(value: str, field: str, length: int, allowed: str, rule_prefix: str) -> None:
    if len(value) != length:
        message = f"must have {length} characters, got {len(value)}"
        raise IdentifierError(field, f"{rule_prefix}_length", message)
    bad = [c for c in value if c not in allowed]
    if bad:
        message = f"character {bad[0]!r} is not allowed (allowed: {allowed})"
        raise IdentifierError(field, f"{rule_prefix}_charset", message)


def make_uscc(
    registration_authority: str, entity_kind: str, area_code: str, organisation_body: str
) -> str:
    """Build a valid USCC from already-normalised parts, adding both check characters.

    Examples
    --------
    >>> make_uscc("9", "1", "330381", "MA29795C")
    '91330381MA29795C1P'
    """
    _check_part(registration_authority, "registration_authority", 1, USCC_ALPHABET, "uscc")
    _check_part(entity_kind, "entity_kind", 1, USCC_ALPHABET, "uscc")
    _check_part(area_code, "area_code", 6, _DIGITS, "uscc")
    _check_part(organisation_body, "organisation_body", 8, USCC_ALPHABET, "uscc")
    first17 = registration_authority + entity_kind + area_code + organisation_body
    first17 += _org_check_char(organisation_body)
    return first17 + _uscc_check_char(first17)


def make_resident_id(area_code: str, birth_date: dt.date, sequence: int) -> str:
    """Build a valid resident ID (sequence 0..999; odd means male).

    Examples
    --------
    >>> make_resident_id("110105", dt.date(1949, 12, 31), 2)
    '11010519491231002X'
    """
    _check_part(area_code, "area_code", 6, _DIGITS, "id")
    if birth_date < dt.date(1900, 1, 1):
        raise IdentifierError("birth_date", "id_birth_date", "must be on or after 1900-01-01")
    if not 0 <= sequence <= 999:
        raise IdentifierError("sequence", "id_sequence", "must be between 0 and 999")
    first17 = f"{area_code}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + _resident_id_check_char(first17)


# ------------------------------------------------------------------- vectorised core (numpy)
def _weighted_sum(values: FloatMatrix, weights: tuple[int, ...]) -> IntArray:
    """Exact row-wise sum of value x weight: float32 for BLAS speed, all sums << 2**24."""
    total: IntArray = (values @ np.array(weights, dtype=np.float32)).astype(np.int64)
    return total


def _org_check_bytes(body: Uint8Matrix) -> Uint8Matrix:
    return _ORG_CHECK_BYTES[11 - _weighted_sum(_ORG_VALUE[body], ORG_CODE_WEIGHTS) % 11]


def _uscc_check_bytes(values17: FloatMatrix) -> Uint8Matrix:
    return _USCC_ALPHABET_BYTES[-_weighted_sum(values17, USCC_WEIGHTS) % 31]


def _id_check_bytes(digits17: FloatMatrix) -> Uint8Matrix:
    return _ID_CHECK_BYTES[_weighted_sum(digits17, RESIDENT_ID_WEIGHTS) % 11]


def _uscc_rule_codes(matrix: Uint8Matrix) -> RuleCodes:
    """Rule number (0 = valid, else index in USCC_RULES + 1) of (k, 18) ASCII rows."""
    values = _USCC_VALUE[matrix]  # -1 outside the 31-symbol set; same sets as _USCC_ALLOWED
    charset_ok = (
        (values >= 0).all(axis=1)
        & (values[:, 2:8] < 10).all(axis=1)
        & ((values[:, 16] < 10) | (values[:, 16] == USCC_ALPHABET.index("X")))
    )
    org_ok = _org_check_bytes(matrix[:, 8:16]) == matrix[:, 16]
    check_ok = _uscc_check_bytes(values[:, :17]) == matrix[:, 17]
    codes: RuleCodes = np.select([~charset_ok, ~org_ok, ~check_ok], [2, 3, 4], 0).astype(np.int8)
    return codes


def _valid_birth_dates(date_digits: FloatMatrix) -> npt.NDArray[np.bool_]:
    year = _weighted_sum(date_digits[:, :4], (1000, 100, 10, 1))
    month = _weighted_sum(date_digits[:, 4:6], (10, 1))
    day = _weighted_sum(date_digits[:, 6:], (10, 1))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    last_day = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
    ok: npt.NDArray[np.bool_] = (year >= 1900) & month_ok & (day >= 1) & (day <= last_day)
    return ok


def _resident_id_rule_codes(matrix: Uint8Matrix) -> RuleCodes:
    """Rule number (0 = valid, else index in RESIDENT_ID_RULES + 1) of (k, 18) ASCII rows."""
    digits = _DIGIT_VALUE[matrix]  # -1 for anything but 0-9
    last_ok = (digits[:, 17] >= 0) | (matrix[:, 17] == ord("X"))
    charset_ok = (digits[:, :17] >= 0).all(axis=1) & last_ok
    date_ok = _valid_birth_dates(digits[:, 6:14])
    check_ok = _id_check_bytes(digits[:, :17]) == matrix[:, 17]
    codes: RuleCodes = np.select([~charset_ok, ~date_ok, ~check_ok], [2, 3, 4], 0).astype(np.int8)
    return codes


def _string_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.large_string())
    return values


RuleFunction = Callable[[Uint8Matrix], RuleCodes]


def _rule_names(
    values: pa.Array | pa.ChunkedArray, rules: tuple[str, ...], rule_function: RuleFunction
) -> pa.Array:
    """Apply a (k, 18)-matrix rule function to a string column; see `uscc_errors`."""
    array = _string_array(values)
    n = len(array)
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[array.offset : array.offset + n + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.empty(0, np.uint8)
    byte_length = np.diff(offsets.astype(np.int64))
    char_length = pc.fill_null(pc.utf8_length(array), -1).to_numpy(zero_copy_only=False)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    codes = np.zeros(n, dtype=np.int8)
    codes[valid & (char_length != 18)] = 1
    codes[valid & (char_length == 18) & (byte_length != 18)] = 2  # non-ASCII character
    rows = np.flatnonzero(valid & (char_length == 18) & (byte_length == 18))
    if rows.size:
        windows = sliding_window_view(data, 18)
        for start in range(0, rows.size, _CHUNK_ROWS):
            chunk = rows[start : start + _CHUNK_ROWS]
            codes[chunk] = rule_function(windows[offsets[chunk]])
    indices = pa.array(codes, mask=codes == 0)
    return pc.take(pa.array(("", *rules), type=pa.string()), indices)


def uscc_errors(codes: pa.Array | pa.ChunkedArray) -> pa.Array:
    """For each already-normalised USCC, its first failed rule (null when valid or null).

    Same rules and order as `uscc_error`; runs on the raw UTF-8 bytes with numpy, so it
    does not normalise (normalise when ingesting, before calling this).

    Parameters
    ----------
    codes
        A string column (``string``, ``large_string`` or castable to it), chunked or not.

    Returns
    -------
    pyarrow.Array
        A ``string`` array of the same length: a rule name, or null.

    Examples
    --------
    >>> codes = pa.array(["91330304254498785G", "9133", None, "91330382142209555X"])
    >>> uscc_errors(codes).to_pylist()
    [None, 'uscc_length', None, 'uscc_check']
    """
    return _rule_names(codes, USCC_RULES, _uscc_rule_codes)


def resident_id_errors(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """For each already-normalised resident ID, its first failed rule (null when valid).

    Same rules and order as `resident_id_error`; see `uscc_errors` for the input and the
    result. The result holds rule names only, never ID digits.
    """
    return _rule_names(ids, RESIDENT_ID_RULES, _resident_id_rule_codes)


def _code_points(
    values: npt.NDArray[np.str_], field: str, length: int, rule_prefix: str
) -> npt.NDArray[np.uint32]:
    """(n, length) code points of fixed-length strings; raise on a wrong length."""
    lengths = np.strings.str_len(values)
    if (lengths != length).any():
        row = int(np.flatnonzero(lengths != length)[0])
        message = f"row {row}: must have {length} characters, got {int(lengths[row])}"
        raise IdentifierError(field, f"{rule_prefix}_length", message)
    fixed = np.ascontiguousarray(values.astype(f"<U{length}"))
    return fixed.view(np.uint32).reshape(-1, length)


def _require_allowed(points: npt.NDArray[np.uint32], allowed: str, field: str, rule: str) -> None:
    ok = np.isin(points, [ord(c) for c in allowed]).all(axis=1)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise IdentifierError(field, rule, f"row {row}: characters must be in {allowed}")


def make_usccs(
    registration_authority: npt.ArrayLike,
    entity_kind: npt.ArrayLike,
    area_code: npt.ArrayLike,
    organisation_body: npt.ArrayLike,
) -> npt.NDArray[np.str_]:
    """Vectorised `make_uscc`: broadcast the parts and return an array of valid USCCs.

    Parameters
    ----------
    registration_authority, entity_kind
        One symbol of the 31-symbol set each (e.g. ``"9"``, ``"1"``).
    area_code
        Six digits, the GB/T 2260 code of the registering authority.
    organisation_body
        Eight symbols of the 31-symbol set; the GB 11714 check character is appended.

    Returns
    -------
    numpy.ndarray
        ``<U18`` codes with the broadcast shape of the inputs.

    Raises
    ------
    IdentifierError
        If any row has a part of the wrong length or character (the message names the row).

    Examples
    --------
    >>> make_usccs(np.array(["9", "9"]), "1", np.array(["330304", "330382"]),
    ...            np.array(["25449878", "25602433"])).tolist()
    ['91330304254498785G', '9133038225602433XW']
    """
    parts = np.broadcast_arrays(
        *(
            np.asarray(p, dtype=np.str_)
            for p in (registration_authority, entity_kind, area_code, organisation_body)
        )
    )
    shape = parts[0].shape
    fields = ("registration_authority", "entity_kind", "area_code", "organisation_body")
    widths = (1, 1, 6, 8)
    points = np.zeros((int(np.prod(shape)), 18), dtype=np.uint32)
    column = 0
    for part, field, width in zip(parts, fields, widths, strict=True):
        part_points = _code_points(part.ravel(), field, width, "uscc")
        allowed = _DIGITS if field == "area_code" else USCC_ALPHABET
        _require_allowed(part_points, allowed, field, "uscc_charset")
        points[:, column : column + width] = part_points
        column += width
    points[:, 16] = _org_check_bytes(points[:, 8:16].astype(np.uint8))
    points[:, 17] = _uscc_check_bytes(_USCC_VALUE[points[:, :17].astype(np.uint8)])
    return points.view("<U18").reshape(shape)


def make_resident_ids(
    area_code: npt.ArrayLike, birth_date: npt.ArrayLike, sequence: npt.ArrayLike
) -> npt.NDArray[np.str_]:
    """Vectorised `make_resident_id`.

    Parameters
    ----------
    area_code
        Six-digit GB/T 2260 codes.
    birth_date
        ``datetime64[D]`` dates from 1900-01-01 to 9999-12-31.
    sequence
        Integers 0..999 (odd means male).

    Returns
    -------
    numpy.ndarray
        ``<U18`` IDs with the broadcast shape of the inputs.

    Raises
    ------
    IdentifierError
        If any area code, date or sequence is out of range.

    Examples
    --------
    >>> make_resident_ids(np.array(["340524", "330302"]),
    ...                   np.array(["1980-01-01", "1990-03-07"], dtype="datetime64[D]"),
    ...                   np.array([1, 1])).tolist()
    ['34052419800101001X', '33030219900307001X']
    """
    areas, births, sequences = np.broadcast_arrays(
        np.asarray(area_code, dtype=np.str_),
        np.asarray(birth_date, dtype="datetime64[D]"),
        np.asarray(sequence),
    )
    shape = areas.shape
    area_points = _code_points(areas.ravel(), "area_code", 6, "id")
    _require_allowed(area_points, _DIGITS, "area_code", "id_charset")
    births = births.ravel()
    years = births.astype("datetime64[Y]").astype(np.int64) + 1970
    if np.isnat(births).any() or (years < 1900).any() or (years > 9999).any():
        raise IdentifierError("birth_date", "id_birth_date", "must be dates from 1900 to 9999")
    sequences = sequences.ravel()
    if (
        not np.issubdtype(sequences.dtype, np.integer)
        or ((sequences < 0) | (sequences > 999)).any()
    ):
        raise IdentifierError("sequence", "id_sequence", "must be integers between 0 and 999")
    months = births.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    day = (births - months).astype(np.int64) + 1
    number = (years * 10_000 + month * 100 + day) * 1000 + sequences.astype(np.int64)
    digits = np.empty((births.size, 17), dtype=np.int64)
    digits[:, :6] = area_points - ord("0")
    digits[:, 6:] = number[:, None] // 10 ** np.arange(10, -1, -1) % 10
    points = np.empty((births.size, 18), dtype=np.uint32)
    points[:, :17] = digits + ord("0")
    points[:, 17] = _id_check_bytes(digits.astype(np.float32))
    return points.view("<U18").reshape(shape)
