"""Credit information catalog (信用信息目录): typed, validated loader.

The catalog (``features/catalog.yaml``) names every table a department delivers, with its
single source department (一数一源), key, typed columns and rules. Ingest validates every row
against it; the quality report and the feature view read their schemas from it.

Loading refuses, with a message naming the item and the rule: an unknown column type, an
unknown option, a duplicate item or column, an item with more than one source, a key or rule
naming a column the item does not have, and a reference to a table or column that does not
exist.

Examples
--------
>>> catalog = load_catalog()
>>> catalog.item("entities").key
('uscc',)
>>> catalog.item("pboc_monthly").columns["status"].type
'code'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.errors import CatalogError

ColumnType = Literal[
    "string",
    "integer",
    "decimal",
    "boolean",
    "date",
    "month",
    "code",
    "uscc",
    "resident_id",
    "subject_id",
    "area_code",
]
COLUMN_TYPES: tuple[str, ...] = ColumnType.__args__  # type: ignore[attr-defined]
IDENTIFIER_TYPES = frozenset({"uscc", "resident_id", "subject_id"})
SourceKind = Literal["registry", "government", "pboc", "private_lending", "reference"]
RuleName = Literal["date_order", "uscc_entity_type", "uscc_area_in_force", "birth_date_matches_id"]

DEFAULT_CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ColumnSpec(_Frozen):
    """One column of a catalog item and the rules its values must satisfy."""

    type: ColumnType
    required: bool = False
    description: str = ""
    codes: Mapping[str, str] | None = None
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(default=None, gt=0)
    pattern: str | None = None
    pii: bool = False
    references: tuple[str, ...] = ()
    town_column: str | None = None
    allow_future: bool = False

    @field_validator("references", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.type == "code" and not self.codes:
            raise ValueError("a column of type 'code' needs a non-empty 'codes' mapping")
        if self.type != "code" and self.codes is not None:
            raise ValueError(f"'codes' is only allowed on type 'code', not {self.type!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if (self.min is not None or self.max is not None) and self.type not in {
            "integer",
            "decimal",
        }:
            raise ValueError("min/max apply to integer and decimal columns only")
        if self.allow_future and self.type != "date":
            raise ValueError("'allow_future' applies to date columns only")
        if self.town_column is not None and self.type != "area_code":
            raise ValueError("'town_column' applies to area_code columns only")
        return self


class ItemRule(_Frozen):
    """A rule over several columns of one row (e.g. ``date_order``: a ≤ b)."""

    rule: RuleName
    columns: tuple[str, ...]

    @model_validator(mode="after")
    def _arity(self) -> ItemRule:
        if len(self.columns) != 2:
            raise ValueError(f"rule {self.rule!r} takes exactly two columns")
        return self


class PublicationRule(_Frozen):
    """Which columns hold the decision and publication dates (双公示 timeliness)."""

    decision: str
    publication: str


class CatalogItem(_Frozen):
    """One delivered table: its source, key, columns and rules."""

    table: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    description: str = ""
    source_kind: SourceKind
    source: str = Field(min_length=1)
    key: tuple[str, ...] = Field(min_length=1)
    columns: Mapping[str, ColumnSpec]
    rules: tuple[ItemRule, ...] = ()
    publication_rule: PublicationRule | None = None

    @field_validator("source", mode="before")
    @classmethod
    def _one_source(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            raise ValueError(
                f"一数一源: an item has exactly one source department, got {len(value)}: "
                + ", ".join(map(str, value))
            )
        return value

    @model_validator(mode="after")
    def _columns_exist(self) -> CatalogItem:
        named = [("key", c) for c in self.key]
        named += [(f"rule {r.rule}", c) for r in self.rules for c in r.columns]
        named += [("town_column", s.town_column) for s in self.columns.values() if s.town_column]
        if self.publication_rule:
            named += [
                ("publication_rule", self.publication_rule.decision),
                ("publication_rule", self.publication_rule.publication),
            ]
        for where, column in named:
            if column not in self.columns:
                raise ValueError(f"{where} names column {column!r}, which the item does not have")
        for column in self.key:
            if not self.columns[column].required:
                raise ValueError(f"key column {column!r} must be required")
        return self

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in catalog order."""
        return tuple(self.columns)

    def references(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Column → the (table, column) pairs its values must be found in."""
        return {
            name: tuple(tuple(ref.split(".", 1)) for ref in spec.references)  # type: ignore[misc]
            for name, spec in self.columns.items()
            if spec.references
        }


class Catalog(_Frozen):
    """The whole credit information catalog."""

    version: str
    min_date: dt.date
    publication_rule: Mapping[str, Any]
    items: tuple[CatalogItem, ...]

    @model_validator(mode="after")
    def _unique_and_resolvable(self) -> Catalog:
        seen: set[str] = set()
        for item in self.items:
            if item.table in seen:
                raise ValueError(f"duplicate item {item.table!r}")
            seen.add(item.table)
        by_table = {item.table: item for item in self.items}
        for item in self.items:
            for column, refs in item.references().items():
                for ref_table, ref_column in refs:
                    target = by_table.get(ref_table)
                    if target is None or ref_column not in target.columns:
                        raise ValueError(
                            f"{item.table}.{column} references {ref_table}.{ref_column}, "
                            "which is not in the catalog"
                        )
        self.ingest_order()  # refuses reference cycles
        return self

    def item(self, table: str) -> CatalogItem:
        """The item delivered as ``table``; ``CatalogError`` if there is none."""
        for item in self.items:
            if item.table == table:
                return item
        raise CatalogError("table", "unknown_table", f"{table!r} is not a catalog item")

    @property
    def tables(self) -> tuple[str, ...]:
        """Item names in catalog order."""
        return tuple(item.table for item in self.items)

    def ingest_order(self) -> tuple[str, ...]:
        """Tables ordered so that every referenced table is ingested before its referrers."""
        order: list[str] = []
        visiting: set[str] = set()
        by_table = {item.table: item for item in self.items}

        def visit(table: str) -> None:
            if table in order:
                return
            if table in visiting:
                raise ValueError(f"reference cycle through {table!r}")
            visiting.add(table)
            for refs in by_table[table].references().values():
                for ref_table, _ in refs:
                    if ref_table != table:
                        visit(ref_table)
            visiting.discard(table)
            order.append(table)

        for item in self.items:
            visit(item.table)
        return tuple(order)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice (PyYAML keeps the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise CatalogError(
                str(key),
                "duplicate_key",
                f"{key!r} appears twice in one mapping (line {key_node.start_mark.line + 1})",
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def parse_catalog(text: str) -> Catalog:
    """Parse and validate catalog YAML text.

    Raises
    ------
    CatalogError
        With ``field`` set to the location (``items.3.columns.uscc.type``) and ``rule`` to the
        kind of problem (``literal_error`` for an unknown type, ``value_error``, …).
    """
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise CatalogError("catalog", "yaml_syntax", str(exc)) from exc
    if not isinstance(raw, dict):
        raise CatalogError("catalog", "not_a_mapping", "the catalog must be a YAML mapping")
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        table = _table_at(raw, first["loc"])
        where = f" (item {table!r})" if table else ""
        raise CatalogError(location, first["type"], f"{first['msg']}{where}") from exc


def _table_at(raw: Mapping[str, Any], loc: tuple[int | str, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
        items = raw.get("items") or []
        if loc[1] < len(items) and isinstance(items[loc[1]], dict):
            table = items[loc[1]].get("table")
            return str(table) if table is not None else None
    return None


def load_catalog(path: Path | None = None) -> Catalog:
    """Load the catalog from ``path`` (default: the packaged ``features/catalog.yaml``)."""
    source = path or DEFAULT_CATALOG_PATH
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError("catalog", "unreadable", f"cannot read {source}: {exc}") from exc
    return parse_catalog(text)
