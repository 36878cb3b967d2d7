"""Row validation rules compiled from the catalog into DuckDB SQL.

Each catalog column becomes three SQL expressions over the delivered (raw) column:
``present`` (a value was given), ``value`` (the normalised, typed value or NULL when it cannot
be read) and a list of ``(field, rule, condition)`` checks. Checks run vectorised inside
DuckDB; identifier check characters run as vectorised Arrow UDFs (see ``warehouse``).

The rule names below are stable: they are stored with every quarantined row, counted by the
quality report and documented for departments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from features.catalog import CatalogItem, ColumnSpec
from features.identifiers import AreaCodeHistory

#: Rule name → what it means (Chinese first, for the departments; English after).
RULES: dict[str, str] = {
    "required": "必填项为空 / mandatory field is empty",
    "type": "无法按目录类型解析 / value cannot be read as the catalog type",
    "code": "不在目录代码表内 / value is not one of the catalog codes",
    "range": "超出允许范围 / value outside the allowed range",
    "length": "超过最大长度 / value longer than allowed",
    "pattern": "格式不符 / value does not match the pattern",
    "future_date": "日期晚于交付日期 / date after the delivery date",
    "date_order": "日期先后顺序错误 / date earlier than the date it must follow",
    "uscc_length": "统一社会信用代码不是18位 / USCC is not 18 characters",
    "uscc_charset": "统一社会信用代码含非法字符 / USCC has a character outside GB 32100",
    "uscc_org_check": "组织机构代码校验位错误 / organisation-code check (pos. 17) wrong",
    "uscc_check": "统一社会信用代码校验位错误 / USCC check character (pos. 18) wrong",
    "uscc_entity_type": "代码的机构类别与主体类型不符 / USCC kind does not match entity_type",
    "uscc_area_in_force": "登记时该区划代码未生效 / USCC area code not in force at registration",
    "id_length": "身份证号不是18位 / resident ID is not 18 characters",
    "id_charset": "身份证号含非法字符 / resident ID has an invalid character",
    "id_birth_date": "身份证号出生日期无效 / resident ID has an impossible birth date",
    "id_check": "身份证号校验位错误 / resident ID check character wrong",
    "birth_date_matches_id": "出生日期与身份证号不符 / birth date differs from the resident ID",
    "area_code_unknown": "不是温州现行区县代码 / not a current Wenzhou district code",
    "duplicate": "交付内重复记录 / duplicate key within the delivery",
    "duplicate_existing": "与库内已有记录重复 / key already in the warehouse",
    "orphan": "主体不在登记库中 / refers to an entity or person not in the registry",
}

#: GB 32100 position 2 under authority 9 (市场监管): entity kind → entity_type code.
USCC_KIND_BY_ENTITY_TYPE = {"企业": "91", "个体工商户": "92", "农民专业合作社": "93"}

#: characters that NFKC folding changes in codes: full-width ASCII forms and wide spaces
_NEEDS_FOLDING = "[\uff01-\uff5e\u3000\u00a0]"
_TRUE = ("true", "t", "1", "yes", "y", "是")
_FALSE = ("false", "f", "0", "no", "n", "否")
_TEXT_INPUT = {"VARCHAR"}

#: catalog type → warehouse (DuckDB) type.
WAREHOUSE_TYPES = {
    "string": "VARCHAR",
    "code": "VARCHAR",
    "uscc": "VARCHAR",
    "resident_id": "VARCHAR",
    "subject_id": "VARCHAR",
    "area_code": "VARCHAR",
    "integer": "BIGINT",
    "decimal": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "month": "DATE",
}


def quote(identifier: str) -> str:
    """Quote a SQL identifier (``month`` and ``year`` are keywords)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for a string, number, date or None."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


@dataclass(frozen=True)
class Check:
    """One rule on one field: ``condition`` is true when the row breaks it."""

    field: str
    rule: str
    condition: str
    #: for identifier checks: SQL returning the failed rule name or NULL (a vectorised UDF)
    rule_sql: str | None = None


@dataclass(frozen=True)
class ColumnSql:
    """The expressions that read one delivered column.

    ``normalised`` reads the raw column (it is aliased ``n__<name>`` in an inner query);
    everything else reads ``n__<name>`` and is materialised once per row in the stage table:
    the typed ``value`` (``v__<name>``), whether a value was ``given`` (``g__<name>``, only
    when a value can be given yet unreadable), the identifier ``udf_error`` (``e__<name>``)
    and whether normalisation ``repaired`` the delivered value (``r__<name>``).
    """

    name: str
    normalised: str
    value: str
    given: str | None = None
    udf_error: str | None = None
    repaired: str | None = None


def n_(name: str) -> str:
    """The normalised text of column ``name`` (inner query only)."""
    return quote("n__" + name)


def v_(name: str) -> str:
    """The typed value of column ``name`` in the stage table."""
    return quote("v__" + name)


def g_(name: str) -> str:
    """Whether column ``name`` was given a value, in the stage table."""
    return quote("g__" + name)


def e_(name: str) -> str:
    """The failed identifier rule of column ``name`` (or NULL), in the stage table."""
    return quote("e__" + name)


def r_(name: str) -> str:
    """Whether normalisation changed column ``name``'s delivered value, in the stage table."""
    return quote("r__" + name)


_UDF_BY_TYPE = {
    "uscc": "wz_uscc_error",
    "resident_id": "wz_resident_id_error",
    "subject_id": "wz_subject_id_error",
}


class RowValidator:
    """Compiles one catalog item's rules into SQL over a source relation.

    Parameters
    ----------
    item
        The catalog item being delivered.
    input_types
        DuckDB type of each delivered column (``VARCHAR`` for CSV).
    delivered_on
        Dates after it are refused as ``future_date``.
    min_date
        Dates before it are refused as ``range``.
    area_codes
        The area-code history used to repair stale district codes and check USCC areas.
    """

    def __init__(
        self,
        item: CatalogItem,
        input_types: dict[str, str],
        delivered_on: dt.date,
        min_date: dt.date,
        area_codes: AreaCodeHistory,
    ) -> None:
        self.item = item
        self.input_types = input_types
        self.delivered_on = delivered_on
        self.min_date = min_date
        self.area_codes = area_codes
        self.columns = {name: self._column_sql(name, spec) for name, spec in item.columns.items()}

    # -- per-column expressions ---------------------------------------------------------
    def _column_sql(self, name: str, spec: ColumnSpec) -> ColumnSql:
        raw = quote(name)
        input_type = self.input_types[name].upper()
        if input_type not in _TEXT_INPUT and spec.type in {"integer", "decimal", "boolean", "date"}:
            value = self._typed_from_native(n_(name), spec, input_type)
            return ColumnSql(name, raw, value, given=f"({n_(name)} IS NOT NULL)")
        text = raw if input_type in _TEXT_INPUT else f"CAST({raw} AS VARCHAR)"
        # full-width forms and wide spaces are rare: only non-ASCII text (byte length differs
        # from character length) is searched for them, and only matches are folded (NFKC)
        fold = (
            f"(CASE WHEN strlen({text}) <> length({text}) "
            f"AND regexp_matches({text}, {literal(_NEEDS_FOLDING)}) "
            f"THEN wz_fold({text}) ELSE {text} END)"
        )
        delivered = f"nullif(trim({text}), '')"
        as_sent = f"nullif({text}, '')"  # any change to this, stripped spaces too, is a repair
        if spec.type in _UDF_BY_TYPE:
            normalised = f"nullif(upper(regexp_replace({fold}, '\\s+', '', 'g')), '')"
            udf_error = f"{_UDF_BY_TYPE[spec.type]}({n_(name)})"
            repaired = f"({n_(name)} IS DISTINCT FROM {as_sent})"
            return ColumnSql(name, normalised, n_(name), None, udf_error, repaired)
        if spec.type == "code":  # codes are case-sensitive ('admin_penalties', 'N'): no upper()
            normalised = f"nullif(trim({fold}), '')"
            repaired = f"({n_(name)} IS DISTINCT FROM {as_sent})"
            return ColumnSql(name, normalised, n_(name), repaired=repaired)
        if spec.type == "area_code":
            normalised = f"nullif(upper(trim({fold})), '')"
            value = self._current_district(n_(name), spec)
            return ColumnSql(
                name, normalised, value, repaired=f"({value} IS DISTINCT FROM {delivered})"
            )
        if spec.type == "string":
            return ColumnSql(name, delivered, n_(name))
        normalised = f"nullif(trim({fold}), '')"
        value = self._typed_from_text(n_(name), spec)
        return ColumnSql(name, normalised, value, given=f"({n_(name)} IS NOT NULL)")

    @staticmethod
    def _typed_from_native(raw: str, spec: ColumnSpec, input_type: str) -> str:
        if spec.type == "integer" and input_type in {"DOUBLE", "FLOAT"}:
            return f"CASE WHEN {raw} = trunc({raw}) THEN TRY_CAST({raw} AS BIGINT) END"
        if spec.type == "decimal":
            return (
                f"CASE WHEN isfinite(TRY_CAST({raw} AS DOUBLE)) THEN TRY_CAST({raw} AS DOUBLE) END"
            )
        return f"TRY_CAST({raw} AS {WAREHOUSE_TYPES[spec.type]})"

    @staticmethod
    def _typed_from_text(text: str, spec: ColumnSpec) -> str:
        match spec.type:
            case "integer":  # TRY_CAST alone would round '3.5' to 4
                return (
                    f"CASE WHEN regexp_full_match({text}, '[+-]?[0-9]+') "
                    f"THEN TRY_CAST({text} AS BIGINT) END"
                )
            case "decimal":
                as_double = f"TRY_CAST({text} AS DOUBLE)"
                return f"CASE WHEN isfinite({as_double}) THEN {as_double} END"
            case "date":
                return (
                    f"CASE WHEN regexp_full_match({text}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') "
                    f"THEN TRY_CAST({text} AS DATE) END"
                )
            case "month":
                return (
                    f"CASE WHEN regexp_full_match({text}, '\\d{{4}}-\\d{{2}}') "
                    f"THEN TRY_CAST({text} || '-01' AS DATE) END"
                )
            case "boolean":
                low = f"lower({text})"
                return (
                    f"CASE WHEN {low} IN {_in_list(_TRUE)} THEN TRUE "
                    f"WHEN {low} IN {_in_list(_FALSE)} THEN FALSE END"
                )
            case _:
                return text

    def _current_district(self, code: str, spec: ColumnSpec) -> str:
        """SQL mapping a (possibly stale) area code to the current district code."""
        history = self.area_codes
        town = quote(spec.town_column) if spec.town_column else None
        branches = []
        for split in history.splits:
            if town is not None:
                branches.append(
                    f"WHEN {code} = {literal(split.from_code)} AND trim({town}) IN "
                    f"{_in_list(split.towns)} THEN {literal(split.to_code)}"
                )
        for record in history.records:
            current = history.current_district(record.code)
            if current != record.code:
                branches.append(f"WHEN {code} = {literal(record.code)} THEN {literal(current)}")
        if not branches:
            return code
        return f"(CASE {' '.join(branches)} ELSE {code} END)"

    # -- checks ---------------------------------------------------------------------------
    def checks(self) -> list[Check]:
        """Every row-level check of the item, in the order they are reported."""
        out: list[Check] = []
        for name, spec in self.item.columns.items():
            out.extend(self._column_checks(name, spec))
        for rule in self.item.rules:
            out.append(self._item_check(rule.rule, rule.columns))
        return out

    def _column_checks(self, name: str, spec: ColumnSpec) -> list[Check]:
        sql = self.columns[name]
        value = v_(name)
        given = g_(name) if sql.given is not None else f"({value} IS NOT NULL)"
        checks: list[Check] = []
        if spec.required:
            checks.append(Check(name, "required", f"NOT {given}"))
        if sql.udf_error is not None:
            checks.append(Check(name, spec.type, f"{e_(name)} IS NOT NULL", rule_sql=e_(name)))
            return checks
        if sql.given is not None:
            checks.append(Check(name, "type", f"{given} AND {value} IS NULL"))
        if spec.codes is not None:
            checks.append(Check(name, "code", f"{value} NOT IN {_in_list(spec.codes)}"))
        if spec.min is not None:
            checks.append(Check(name, "range", f"{value} < {literal(spec.min)}"))
        if spec.max is not None:
            checks.append(Check(name, "range", f"{value} > {literal(spec.max)}"))
        if spec.max_length is not None:
            checks.append(Check(name, "length", f"length({value}) > {spec.max_length}"))
        if spec.pattern is not None:
            checks.append(
                Check(name, "pattern", f"NOT regexp_full_match({value}, {literal(spec.pattern)})")
            )
        if spec.type in {"date", "month"}:
            checks.append(Check(name, "range", f"{value} < {literal(self.min_date)}"))
            if not spec.allow_future:
                checks.append(Check(name, "future_date", f"{value} > {literal(self.delivered_on)}"))
        if spec.type == "area_code":
            districts = _in_list(self.area_codes.district_codes())
            checks.append(Check(name, "area_code_unknown", f"{value} NOT IN {districts}"))
        return checks

    def _item_check(self, rule: str, columns: tuple[str, ...]) -> Check:
        a, b = (v_(c) for c in columns)
        if rule == "date_order":
            return Check(columns[1], rule, f"{b} < {a}")
        if rule == "uscc_entity_type":
            kinds = " ".join(
                f"WHEN {literal(t)} THEN {literal(k)}" for t, k in USCC_KIND_BY_ENTITY_TYPE.items()
            )
            return Check(columns[1], rule, f"substr({a}, 1, 2) <> (CASE {b} {kinds} END)")
        if rule == "uscc_area_in_force":
            return Check(columns[0], rule, f"NOT {self._area_in_force(f'substr({a}, 3, 6)', b)}")
        if rule == "birth_date_matches_id":
            born = f"TRY_CAST(strptime(substr({a}, 7, 8), '%Y%m%d') AS DATE)"
            return Check(columns[1], rule, f"{born} <> {b}")
        raise AssertionError(f"unhandled item rule {rule}")  # the catalog refuses others

    def _area_in_force(self, code: str, on: str) -> str:
        branches = []
        for record in self.area_codes.records:
            window = f"{on} >= {literal(record.valid_from)}"
            if record.valid_to is not None:
                window += f" AND {on} < {literal(record.valid_to)}"
            branches.append(f"WHEN {literal(record.code)} THEN ({window})")
        return f"(CASE {code} {' '.join(branches)} ELSE FALSE END)"

    # -- whole statements -------------------------------------------------------------------
    def _check_terms(self) -> list[tuple[str, str]]:
        """(label SQL, condition SQL) per check; a NULL condition means the check passed."""
        terms = []
        for check in self.checks():
            if check.rule_sql is not None:
                terms.append((f"{literal(check.field + ':')} || {check.rule_sql}", check.condition))
            else:
                terms.append((literal(f"{check.field}:{check.rule}"), check.condition))
        return terms

    def first_error_sql(self) -> str:
        """SQL giving ``field:rule`` of the first failed check, or NULL for a valid row."""
        cases = [f"CASE WHEN {cond} THEN {label} END" for label, cond in self._check_terms()]
        return "coalesce(" + ", ".join(cases) + ")" if cases else "NULL"

    def all_errors_sql(self) -> str:
        """SQL giving the list of every failed check as ``field:rule`` strings."""
        cases = [f"CASE WHEN {cond} THEN {label} END" for label, cond in self._check_terms()]
        return "list_filter([" + ", ".join(cases) + "], lambda x: x IS NOT NULL)"

    def repaired_sql(self) -> dict[str, str]:
        """Column → stage column that is true when normalisation repaired the value."""
        return {n: r_(n) for n, c in self.columns.items() if c.repaired is not None}

    def values_sql(self) -> list[str]:
        """Typed, normalised value of every catalog column, aliased to the column name."""
        return [f"{v_(n)} AS {quote(n)}" for n in self.columns]

    def stage_sql(self, source: str) -> str:
        """One row per delivered row: ``_row`` and the stage columns of every column."""
        inner = ", ".join(f"{c.normalised} AS {n_(n)}" for n, c in self.columns.items())
        columns = []
        for name, sql in self.columns.items():
            columns.append(f"{sql.value} AS {v_(name)}")
            for expr, alias in ((sql.given, g_), (sql.udf_error, e_), (sql.repaired, r_)):
                if expr is not None:
                    columns.append(f"{expr} AS {alias(name)}")
        raw = ", ".join(quote(n) for n in self.columns)
        return (
            f"SELECT _row, {', '.join(columns)} FROM "
            f"(SELECT _row, {raw}, {inner} FROM ({source}) delivered) normalised"
        )
