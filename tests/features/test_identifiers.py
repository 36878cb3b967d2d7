"""Tests for USCC / resident-ID checks and the Wenzhou area-code history.

Test vectors come from DOMAIN.md §1 (worked examples) and §2 (area codes).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from features import area_codes
from features.errors import IdentifierError
from features.identifiers import (
    ORG_CODE_WEIGHTS,
    RESIDENT_ID_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    AreaCodeHistory,
    is_valid_resident_id,
    is_valid_uscc,
    load_area_codes,
    make_resident_id,
    make_resident_ids,
    make_uscc,
    make_usccs,
    normalise_code,
    parse_resident_id,
    parse_uscc,
    resident_id_error,
    resident_id_errors,
    uscc_error,
    uscc_errors,
    validate_resident_id,
    validate_uscc,
)

DIGITS = "0123456789"
# Allowed characters per USCC position, written out from DOMAIN.md §1.1 independently of
# the module: 31-symbol set, area code digits, GB 11714 check digit or X at position 17.
USCC_POSITION_CHARS = (
    [USCC_ALPHABET] * 2 + [DIGITS] * 6 + [USCC_ALPHABET] * 8 + [DIGITS + "X", USCC_ALPHABET]
)
ID_POSITION_CHARS = [DIGITS] * 17 + [DIGITS + "X"]

VALID_USCCS = [
    "91330304254498785G",  # 瓯海区 企业
    "9133038225602433XW",  # 人民电器集团有限公司, org check X
    "91330381MA29795C1P",  # 瑞安市邦云五金厂, new-style MA body
    "91110000600037341L",  # python-stdnum doctest value
    "92330302MA2C8K7Q79",  # synthetic 鹿城 individual business
]
INVALID_USCCS = [
    # DOMAIN.md says "the check should be 2"; position 17 is also wrong (GB 11714 gives 1),
    # so the first failed rule is the organisation-code check.
    ("91330300MA2L9GRT34", "uscc_org_check"),
    ("91330382142209555X", "uscc_check"),  # should end in K
    ("91350203M0001QAY9B", "uscc_check"),
]
VALID_RESIDENT_IDS = ["11010519491231002X", "34052419800101001X", "33030219900307001X"]

uscc_parts = st.tuples(
    st.sampled_from(USCC_ALPHABET),
    st.sampled_from(USCC_ALPHABET),
    st.text(DIGITS, min_size=6, max_size=6),
    st.text(USCC_ALPHABET, min_size=8, max_size=8),
)
resident_id_parts = st.tuples(
    st.text(DIGITS, min_size=6, max_size=6),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.integers(0, 999),
)
# Characters used to damage codes: allowed ones, excluded letters, lower case, whitespace,
# full-width and other non-ASCII characters (2-, 3- and 4-byte UTF-8).
NOISE = st.sampled_from(list(USCC_ALPHABET + "IOSVZxab-. \t\u3000Ａ１é中ßΣ😀"))


@st.composite
def damaged(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid code, or one with a substitution, insertion, deletion or swap, or noise."""
    code = draw(valid)
    operation = draw(st.sampled_from(["keep", "sub", "insert", "delete", "swap", "noise"]))
    i = draw(st.integers(0, len(code) - 1))
    if operation == "sub":
        return code[:i] + draw(NOISE) + code[i + 1 :]
    if operation == "insert":
        return code[:i] + draw(NOISE) + code[i:]
    if operation == "delete":
        return code[:i] + code[i + 1 :]
    if operation == "swap" and i < len(code) - 1:
        return code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    if operation == "noise":
        return draw(st.text(NOISE, max_size=20))
    return code


usccs = uscc_parts.map(lambda parts: make_uscc(*parts))
resident_ids = resident_id_parts.map(lambda parts: make_resident_id(*parts))


def _weighted(code: str, values: str | None, weights: tuple[int, ...]) -> int:
    """Σ value × weight; value = index in ``values``, or base-36 digit value if None."""
    return sum(
        (values.index(c) if values else int(c, 36)) * w for c, w in zip(code, weights, strict=True)
    )


# ------------------------------------------------------------------------ constants & sums
def test_weights_match_the_published_tables() -> None:
    assert USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert ORG_CODE_WEIGHTS == (3, 7, 9, 10, 5, 8, 4, 2)
    assert RESIDENT_ID_WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    assert len(USCC_ALPHABET) == 31
    assert not set("IOZSV") & set(USCC_ALPHABET)


@pytest.mark.parametrize(
    ("code", "org_sum", "uscc_sum"),
    [
        ("91330304254498785G", 270, 1317),
        ("9133038225602433XW", 155, 1739),
        ("91330381MA29795C1P", 395, 1930),
    ],
)
def test_domain_worked_sums(code: str, org_sum: int, uscc_sum: int) -> None:
    assert _weighted(code[8:16], None, ORG_CODE_WEIGHTS) == org_sum
    assert _weighted(code[:17], USCC_ALPHABET, USCC_WEIGHTS) == uscc_sum


@pytest.mark.parametrize(
    ("code", "total"), [("11010519491231002X", 167), ("33030219900307001X", 200)]
)
def test_domain_worked_resident_id_sums(code: str, total: int) -> None:
    assert _weighted(code[:17], DIGITS, RESIDENT_ID_WEIGHTS) == total


# ------------------------------------------------------------------------------ USCC
@pytest.mark.parametrize("code", VALID_USCCS)
def test_valid_uscc_examples(code: str) -> None:
    assert uscc_error(code) is None
    assert validate_uscc(code) == code
    assert is_valid_uscc(code)
    assert uscc_errors(pa.array([code])).to_pylist() == [None]


@pytest.mark.parametrize(("code", "rule"), INVALID_USCCS)
def test_invalid_uscc_examples(code: str, rule: str) -> None:
    assert uscc_error(code) == rule
    assert not is_valid_uscc(code)
    assert uscc_errors(pa.array([code])).to_pylist() == [rule]
    with pytest.raises(IdentifierError) as caught:
        validate_uscc(code, field="shareholder_uscc")
    assert (caught.value.field, caught.value.rule) == ("shareholder_uscc", rule)


def test_domain_claims_about_the_invalid_examples() -> None:
    # "91330300MA2L9GRT34: the check should be 2" holds for MOD 31 alone ...
    assert uscc_error("91330300MA2L9GRT32") == "uscc_org_check"
    # ... but the body's GB 11714 check is 1, and the fully valid code is:
    assert make_uscc("9", "1", "330300", "MA2L9GRT") == "91330300MA2L9GRT1U"
    with pytest.raises(IdentifierError, match="position 18 is 'X', expected 'K'"):
        validate_uscc("91330382142209555X")


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("", "uscc_length"),
        ("91330304254498785", "uscc_length"),
        ("91330304254498785GG", "uscc_length"),
        ("I1330304254498785G", "uscc_charset"),  # I is never used
        ("913303O4254498785G", "uscc_charset"),  # area code must be digits
        ("91330304254498785Z", "uscc_charset"),
        ("9133030425449878AG", "uscc_charset"),  # position 17 must be a digit or X
        ("91330304254498785g", "uscc_charset"),  # not normalised
        ("913303042544987８5G", "uscc_charset"),  # full-width digit, not normalised
        ("91330304254498784G", "uscc_org_check"),
        ("91330304254498785H", "uscc_check"),
    ],
)
def test_uscc_rules_in_order(code: str, rule: str) -> None:
    assert uscc_error(code) == rule
    assert uscc_errors(pa.array([code])).to_pylist() == [rule]


def test_validate_uscc_message_names_the_failed_check() -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_uscc("91330304254498785X")
    assert caught.value.message == (
        "check character at position 18 is 'X', expected 'G' (GB 32100 MOD 31)"
    )
    with pytest.raises(IdentifierError, match="position 3"):
        validate_uscc("91A30304254498785G")


def test_parse_uscc() -> None:
    parts = parse_uscc(" 9133 0382 2560 2433 xw ")
    assert parts.registration_authority == "9"
    assert parts.entity_kind == "1"
    assert parts.area_code == "330382"
    assert parts.organisation_code == "25602433X"
    assert parts.check == "W"
    with pytest.raises(IdentifierError):
        parse_uscc("91330382142209555X")


def test_make_uscc_rejects_bad_parts() -> None:
    with pytest.raises(IdentifierError) as caught:
        make_uscc("9", "1", "33030", "25449878")
    assert (caught.value.field, caught.value.rule) == ("area_code", "uscc_length")
    with pytest.raises(IdentifierError) as caught:
        make_uscc("9", "1", "330304", "2544987O")
    assert (caught.value.field, caught.value.rule) == ("organisation_body", "uscc_charset")
    with pytest.raises(IdentifierError) as caught:
        make_uscc("I", "1", "330304", "25449878")
    assert caught.value.field == "registration_authority"


# ------------------------------------------------------------------------- resident ID
@pytest.mark.parametrize("code", VALID_RESIDENT_IDS)
def test_valid_resident_id_examples(code: str) -> None:
    assert resident_id_error(code) is None
    assert validate_resident_id(code) == code
    assert is_valid_resident_id(code.lower())
    assert resident_id_errors(pa.array([code])).to_pylist() == [None]


@pytest.mark.parametrize(
    ("code", "birth_date", "sequence", "gender"),
    [
        ("11010519491231002X", dt.date(1949, 12, 31), 2, "female"),
        ("34052419800101001X", dt.date(1980, 1, 1), 1, "male"),
        ("33030219900307001x", dt.date(1990, 3, 7), 1, "male"),
    ],
)
def test_parse_resident_id(code: str, birth_date: dt.date, sequence: int, gender: str) -> None:
    parts = parse_resident_id(code)
    assert (parts.birth_date, parts.sequence, parts.gender) == (birth_date, sequence, gender)
    assert parts.area_code == code[:6]
    assert parts.check == "X"


@pytest.mark.parametrize(
    ("area", "born", "sequence"),
    [
        ("330302", "19000229", "001"),  # 1900 is not a leap year
        ("330302", "18991231", "001"),  # before 1900-01-01
        ("330302", "19901301", "001"),  # month 13
        ("330302", "19900100", "001"),  # day 0
        ("330302", "19900431", "001"),  # 31 April
        ("330302", "19910229", "001"),
    ],
)
def test_resident_id_birth_date_rule(area: str, born: str, sequence: str) -> None:
    first17 = area + born + sequence
    # Give each code its correct check character so that only the date is wrong.
    check = "10X98765432"[_weighted(first17, DIGITS, RESIDENT_ID_WEIGHTS) % 11]
    code = first17 + check
    assert resident_id_error(code) == "id_birth_date"
    assert resident_id_errors(pa.array([code])).to_pylist() == ["id_birth_date"]


def test_leap_days_that_exist_are_valid() -> None:
    for year in (1904, 2000, 2024):
        code = make_resident_id("330302", dt.date(year, 2, 29), 7)
        assert resident_id_error(code) is None
        assert resident_id_errors(pa.array([code])).to_pylist() == [None]


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("1101051949123100", "id_length"),
        ("11010519491231002XX", "id_length"),
        ("11010519491231002x", "id_charset"),  # not normalised
        ("X10105194912310021", "id_charset"),
        ("11010519491231002A", "id_charset"),
        ("110105194912310021", "id_check"),
    ],
)
def test_resident_id_rules_in_order(code: str, rule: str) -> None:
    assert resident_id_error(code) == rule
    assert resident_id_errors(pa.array([code])).to_pylist() == [rule]


@settings(max_examples=200, deadline=None)
@given(damaged(resident_ids))
def test_resident_id_errors_never_reveal_the_id(value: str) -> None:
    code = normalise_code(value)
    try:
        validate_resident_id(value)
    except IdentifierError as error:
        text = str(error)
        if len(code) >= 4:
            assert code not in text
        # Only template numbers (positions, the length, 1900, ISO 7064) may appear.
        allowed = {"1900", "7064", str(len(code))}
        assert all(len(run) <= 2 or run in allowed for run in re.findall(r"\d+", text)), text
        for start in range(len(code) - 5):
            assert code[start : start + 6] not in text


def test_make_resident_id_rejects_bad_parts() -> None:
    with pytest.raises(IdentifierError) as caught:
        make_resident_id("330302", dt.date(1990, 1, 1), 1000)
    assert caught.value.rule == "id_sequence"
    with pytest.raises(IdentifierError) as caught:
        make_resident_id("330302", dt.date(1899, 12, 31), 1)
    assert caught.value.rule == "id_birth_date"
    with pytest.raises(IdentifierError) as caught:
        make_resident_id("33030A", dt.date(1990, 1, 1), 1)
    assert (caught.value.field, caught.value.rule) == ("area_code", "id_charset")


# --------------------------------------------------------------------------- normalise
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" ９１３３０３０４２５４４９８７８５ｇ ", "91330304254498785G"),  # full-width
        ("９１３３０３０４\u3000ＭＡ２９７９５Ｃ１Ｐ", "91330304MA29795C1P"),  # ideographic space
        ("9133\t0382\n2560 2433xw", "9133038225602433XW"),  # tabs, newlines, lower case
        ("33030219900307001x", "33030219900307001X"),
        ("", ""),
    ],
)
def test_normalise_code(raw: str, expected: str) -> None:
    assert normalise_code(raw) == expected


def test_is_valid_accepts_any_object() -> None:
    assert not is_valid_uscc(None)
    assert not is_valid_resident_id(float("nan"))
    assert is_valid_uscc("９１３３０３０４２５４４９８７８５ｇ")


# -------------------------------------------------------------------- property tests
@settings(max_examples=200, deadline=None)
@given(uscc_parts)
def test_made_usccs_validate(parts: tuple[str, str, str, str]) -> None:
    code = make_uscc(*parts)
    assert validate_uscc(code) == code
    assert parse_uscc(code).organisation_code[:8] == parts[3]
    assert make_usccs(*(np.array([p]) for p in parts)).tolist() == [code]


@settings(max_examples=200, deadline=None)
@given(resident_id_parts)
def test_made_resident_ids_validate(parts: tuple[str, dt.date, int]) -> None:
    area, born, sequence = parts
    code = make_resident_id(area, born, sequence)
    assert validate_resident_id(code) == code
    assert parse_resident_id(code).birth_date == born
    vectorised = make_resident_ids(np.array([area]), np.array([born], "datetime64[D]"), sequence)
    assert vectorised.tolist() == [code]


def test_mod31_weights_detect_every_single_substitution() -> None:
    # w·(b − a) ≢ 0 (mod 31) for every weight and every pair of distinct symbol values:
    # 31 is prime and no weight is a multiple of 31.
    for weight in USCC_WEIGHTS:
        for a in range(31):
            for b in range(31):
                assert a == b or weight * (b - a) % 31 != 0


def test_org_check_alone_misses_some_substitutions() -> None:
    # With A=10..Z=35 two symbols 11 apart ('2' and 'D') weigh the same mod 11, so the
    # GB 11714 check alone cannot see this change; the MOD 31 check does.
    code = "91330304254498785G"
    damaged_code = code[:8] + "D" + code[9:]  # body '2' -> 'D' (2 and 13 differ by 11)
    assert uscc_error(damaged_code) == "uscc_check"


@settings(max_examples=60, deadline=None)
@given(usccs)
def test_every_single_uscc_substitution_is_caught(code: str) -> None:
    variants, positions = [], []
    for i, allowed in enumerate(USCC_POSITION_CHARS):
        for char in allowed:
            if char != code[i]:
                variants.append(code[:i] + char + code[i + 1 :])
                positions.append(i)
    rules = uscc_errors(pa.array(variants)).to_pylist()
    assert rules == [uscc_error(v) for v in variants]
    for position, rule in zip(positions, rules, strict=True):
        expected = {"uscc_org_check"} if position == 16 else {"uscc_org_check", "uscc_check"}
        assert rule in expected


@settings(max_examples=60, deadline=None)
@given(resident_ids)
def test_every_single_resident_id_substitution_is_caught(code: str) -> None:
    for i, allowed in enumerate(ID_POSITION_CHARS):
        for char in allowed:
            if char == code[i]:
                continue
            variant = code[:i] + char + code[i + 1 :]
            rule = resident_id_error(variant)
            assert rule is not None
            if not 6 <= i < 14:
                assert rule == "id_check"
            else:
                assert rule in {"id_birth_date", "id_check"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), damaged(usccs)), max_size=25))
def test_uscc_scalar_and_vectorised_agree(values: list[str | None]) -> None:
    expected = [None if v is None else uscc_error(v) for v in values]
    assert uscc_errors(pa.array(values, type=pa.string())).to_pylist() == expected
    assert uscc_errors(pa.array(values, type=pa.large_string())).to_pylist() == expected
    halves = [values[: len(values) // 2], values[len(values) // 2 :]]
    assert uscc_errors(pa.chunked_array(halves, type=pa.string())).to_pylist() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), damaged(resident_ids)), max_size=25))
def test_resident_id_scalar_and_vectorised_agree(values: list[str | None]) -> None:
    expected = [None if v is None else resident_id_error(v) for v in values]
    assert resident_id_errors(pa.array(values, type=pa.string())).to_pylist() == expected
    prefixed = pa.array(["x", *values], type=pa.large_string()).slice(1)  # non-zero offset
    assert resident_id_errors(prefixed).to_pylist() == expected


def test_vectorised_edge_cases() -> None:
    assert uscc_errors(pa.array([], type=pa.string())).to_pylist() == []
    assert uscc_errors(pa.chunked_array([], type=pa.string())).to_pylist() == []
    assert uscc_errors(pa.array([None, None])).to_pylist() == [None, None]
    assert uscc_errors(pa.array([""] * 3)).to_pylist() == ["uscc_length"] * 3
    result = resident_id_errors(pa.array(["", None]))
    assert result.type == pa.string()
    assert result.to_pylist() == ["id_length", None]


def test_vectorised_generators_broadcast_and_validate() -> None:
    codes = make_usccs("9", np.array(["1", "2"]), "330304", np.array(["25449878", "MA2C8K7Q"]))
    assert codes.tolist() == ["91330304254498785G", make_uscc("9", "2", "330304", "MA2C8K7Q")]
    assert uscc_errors(pa.array(codes)).null_count == 2
    with pytest.raises(IdentifierError) as caught:
        make_usccs("9", "1", np.array(["330304", "3303"]), "25449878")
    assert (caught.value.field, caught.value.rule) == ("area_code", "uscc_length")
    with pytest.raises(IdentifierError) as caught:
        make_resident_ids("330302", np.array(["1990-01-01"], "datetime64[D]"), 1000)
    assert caught.value.rule == "id_sequence"
    with pytest.raises(IdentifierError) as caught:
        make_resident_ids("330302", np.array(["NaT"], "datetime64[D]"), 1)
    assert caught.value.rule == "id_birth_date"


# --------------------------------------------------------------------------- area codes
@pytest.fixture(scope="module")
def history() -> AreaCodeHistory:
    return load_area_codes()


def test_dongtou_county_maps_to_dongtou_district(history: AreaCodeHistory) -> None:
    assert history.current_district("330322") == "330305"
    assert history.current_district("330322", on=dt.date(2014, 12, 31)) == "330322"
    assert history.name("330305") == "洞头区"


def test_longgang_town_maps_to_longgang_city(history: AreaCodeHistory) -> None:
    assert history.current_district("330327", town="龙港镇") == "330383"
    assert history.current_district("330327", town=" 龙港镇 ", on=dt.date(2019, 8, 16)) == "330383"
    assert history.current_district("330327", town="龙港镇", on=dt.date(2019, 8, 15)) == "330327"
    assert history.current_district("330327", town="灵溪镇") == "330327"
    assert history.current_district("330327") == "330327"


def test_lingkun_moved_from_longwan_to_dongtou(history: AreaCodeHistory) -> None:
    assert history.current_district("330303", town="灵昆街道") == "330305"
    assert history.current_district("330303", town="灵昆镇") == "330305"
    assert history.current_district("330303", town="状元街道") == "330303"


def test_in_force(history: AreaCodeHistory) -> None:
    assert not history.in_force("330383", dt.date(2018, 1, 1))
    assert history.in_force("330383", dt.date(2019, 8, 16))
    assert history.in_force("330322", dt.date(2015, 7, 22))
    assert not history.in_force("330322", dt.date(2015, 7, 23))
    assert history.in_force("330305", dt.date(2015, 7, 23))


def test_unknown_area_code(history: AreaCodeHistory) -> None:
    for call in (history.get, history.name, history.current_district):
        with pytest.raises(IdentifierError) as caught:
            call("330399")
        assert (caught.value.field, caught.value.rule) == ("area_code", "area_code_unknown")


def test_code_not_yet_in_force(history: AreaCodeHistory) -> None:
    with pytest.raises(IdentifierError) as caught:
        history.current_district("330383", on=dt.date(2018, 1, 1))
    assert caught.value.rule == "area_code_not_in_force"


def test_twelve_current_districts(history: AreaCodeHistory) -> None:
    assert history.district_codes() == (
        "330302",
        "330303",
        "330304",
        "330305",
        "330324",
        "330326",
        "330327",
        "330328",
        "330329",
        "330381",
        "330382",
        "330383",
    )
    assert "330322" in history.district_codes(on=dt.date(2014, 1, 1))
    assert "330383" not in history.district_codes(on=dt.date(2014, 1, 1))
    assert all(history.current_district(code) == code for code in history.district_codes())


def test_every_yaml_record_cites_a_source() -> None:
    path = Path(area_codes.__file__).with_name("area_codes.yaml")
    table = yaml.safe_load(path.read_text(encoding="utf-8"))
    for record in table["codes"] + table["splits"]:
        assert record["source"].strip()
    codes = {record["code"] for record in table["codes"]}
    assert {"330000", "330300", "330322"} <= codes


def test_uscc_area_code_maps_through_history(history: AreaCodeHistory) -> None:
    # A 龙港 entity registered in 2018 keeps 苍南's 330327 in its USCC for ever.
    code = make_uscc("9", "2", "330327", "MA2AB3CD")
    area = parse_uscc(code).area_code
    assert area == "330327"
    assert history.current_district(area, town="龙港镇") == "330383"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("codes: []\nsplits: []\nextra: 1\n", "area_code_table"),
        (
            "codes:\n  - {code: '330322', name: 洞头县, valid_from: 1982-01-01, "
            "valid_to: 2015-07-23, successor: '330305', source: x}\nsplits: []\n",
            "area_code_unknown",
        ),
    ],
)
def test_bad_area_code_tables_are_refused(tmp_path: Path, text: str, rule: str) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IdentifierError) as caught:
        load_area_codes(path)
    assert caught.value.rule == rule


def test_records_and_splits_are_exposed(history: AreaCodeHistory) -> None:
    assert len(history.records) == 15
    assert {record.code for record in history.records} >= set(history.district_codes())
    assert {(s.from_code, s.to_code) for s in history.splits} == {
        ("330327", "330383"),
        ("330303", "330305"),
    }


def test_area_code_records_are_frozen(history: AreaCodeHistory) -> None:
    record = history.get("330383")
    assert re.fullmatch(r"\d{6}", record.code)
    with pytest.raises(AttributeError):
        record.name = "x"  # type: ignore[misc]
