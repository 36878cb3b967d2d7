"""The credit information catalog: complete for DATA.md, and strict about what it accepts."""

from __future__ import annotations

import pytest
import yaml

from features.catalog import COLUMN_TYPES, DEFAULT_CATALOG_PATH, load_catalog, parse_catalog
from features.errors import CatalogError

DATA_MD_TABLES = {
    # registry
    "entities", "persons",
    # government public-credit data
    "admin_licenses", "admin_penalties", "serious_dishonesty", "red_list", "dishonest_debtors",
    "tax_credit", "social_insurance_arrears", "abnormal_operations", "credit_commitments",
    "credit_objections", "credit_repairs",
    # PBOC
    "pboc_accounts", "pboc_monthly", "pboc_guarantees", "pboc_inquiries",
    # private lending and reference series
    "private_loans", "wenzhou_index", "lpr",
}  # fmt: skip


def raw_catalog() -> dict:
    return yaml.safe_load(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))


def mutate(change) -> str:  # type: ignore[no-untyped-def]
    raw = raw_catalog()
    change(raw)
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


def item(raw: dict, table: str) -> dict:
    return next(i for i in raw["items"] if i["table"] == table)


def test_catalog_covers_every_table_of_the_three_sources() -> None:
    catalog = load_catalog()
    assert set(catalog.tables) == DATA_MD_TABLES
    kinds = {i.source_kind for i in catalog.items}
    assert kinds == {"registry", "government", "pboc", "private_lending", "reference"}


def test_every_item_has_one_source_a_key_and_described_columns() -> None:
    for entry in load_catalog().items:
        assert entry.source.strip(), entry.table
        assert entry.key, entry.table
        for name, column in entry.columns.items():
            assert column.description, f"{entry.table}.{name} has no description"


def test_registry_comes_first_in_ingest_order() -> None:
    order = load_catalog().ingest_order()
    assert order.index("persons") < order.index("entities") < order.index("admin_penalties")
    assert order.index("pboc_accounts") < order.index("pboc_monthly")


def test_publication_rule_applies_to_licences_and_penalties() -> None:
    catalog = load_catalog()
    with_rule = {i.table for i in catalog.items if i.publication_rule is not None}
    assert with_rule == {"admin_licenses", "admin_penalties"}
    assert catalog.publication_rule["working_days"] == 7


def test_pboc_codes_follow_domain_md() -> None:
    monthly = load_catalog().item("pboc_monthly")
    assert set(monthly.columns["status"].codes or {}) == set("N1234567CGDZBM*#/")
    reasons = load_catalog().item("pboc_inquiries").columns["reason"].codes or {}
    assert {"01", "02", "03", "08", "24", "26"} <= set(reasons)


def test_resident_ids_and_names_are_marked_pii() -> None:
    catalog = load_catalog()
    assert catalog.item("persons").columns["resident_id"].pii
    assert catalog.item("persons").columns["name"].pii
    assert catalog.item("entities").columns["legal_rep_id"].pii


@pytest.mark.parametrize(
    ("change", "location", "rule", "words"),
    [
        (
            lambda r: item(r, "entities")["columns"]["uscc"].update(type="text"),
            "items.0.columns.uscc.type",
            "literal_error",
            "'string'",
        ),
        (
            lambda r: r["items"].append(dict(item(r, "lpr"))),
            "",
            "value_error",
            "duplicate item 'lpr'",
        ),
        (
            lambda r: item(r, "tax_credit").update(source=["国家税务总局温州市税务局", "市财政局"]),
            "items.7.source",
            "value_error",
            "一数一源",
        ),
        (
            lambda r: item(r, "lpr").update(key=["published_at"]),
            "items.19",
            "value_error",
            "key names column 'published_at'",
        ),
        (
            lambda r: item(r, "red_list")["columns"]["uscc"].update(references="firms.uscc"),
            "",
            "value_error",
            "references firms.uscc",
        ),
        (
            lambda r: item(r, "tax_credit")["columns"]["grade"].pop("codes"),
            "items.7.columns.grade",
            "value_error",
            "needs a non-empty 'codes'",
        ),
        (
            lambda r: item(r, "lpr")["columns"]["one_year_rate"].update(min=5, max=1),
            "items.19.columns.one_year_rate",
            "value_error",
            "greater than max",
        ),
        (
            lambda r: item(r, "lpr")["columns"]["one_year_rate"].update(colour="red"),
            "items.19.columns.one_year_rate.colour",
            "extra_forbidden",
            "",
        ),
    ],
    ids=[
        "unknown-type",
        "duplicate-item",
        "two-sources",
        "bad-key",
        "dangling-reference",
        "code-without-codes",
        "min-above-max",
        "unknown-option",
    ],
)
def test_malformed_catalogs_are_refused_with_a_clear_message(
    change,
    location: str,
    rule: str,
    words: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(mutate(change))
    assert caught.value.rule == rule
    assert caught.value.field == location
    assert words in str(caught.value)


def test_unknown_type_message_lists_the_allowed_types() -> None:
    text = mutate(lambda r: item(r, "entities")["columns"]["uscc"].update(type="text"))
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    assert "item 'entities'" in str(caught.value)
    for allowed in COLUMN_TYPES:
        assert repr(allowed) in str(caught.value)


def test_a_key_written_twice_in_yaml_is_refused() -> None:
    """PyYAML would silently keep the second value; the catalog loader must not."""
    text = DEFAULT_CATALOG_PATH.read_text(encoding="utf-8").replace(
        "    key: [uscc]\n", "    key: [uscc]\n    key: [name]\n", 1
    )
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    assert (caught.value.field, caught.value.rule) == ("key", "duplicate_key")


def test_yaml_syntax_errors_are_catalog_errors() -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog("items: [unclosed")
    assert caught.value.rule == "yaml_syntax"
