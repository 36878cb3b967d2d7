"""Registry facts of each market entity (市场主体登记信息) and the population of the view.

The view has one row per entity registered before ``as_of`` and not deregistered by then.
Gender, derivable from resident IDs, is deliberately not a feature (it is used only to audit
fairness); the legal representative's age is.
"""

from __future__ import annotations

import ibis.expr.types as ir

from features.view.context import ENTITY_KEY, ViewContext
from features.view.metadata import FeatureSpec, Source, flag

S: Source = "entity"

FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("entity_age_months", S, "成立月数", "months since registration", "months", -1, fill=None),
    FeatureSpec("entity_type", S, "主体类型", "entity type", "category", 0, "categorical", fill=None),
    FeatureSpec("industry", S, "行业门类", "industry section (GB/T 4754)", "category", 0, "categorical", fill=None),
    FeatureSpec("district", S, "所属区县", "district (current code)", "category", 0, "categorical", fill=None),
    FeatureSpec("log_registered_capital", S, "注册资本（对数）", "registered capital, ln(1 + yuan)", "ln yuan", -1, fill=None),
    FeatureSpec("employees", S, "从业人数", "employees", "count", -1, fill=None),
    flag("is_small_micro", S, "小微企业", "small or micro enterprise", 0),
    flag("is_agricultural", S, "涉农主体（三农）", "agricultural (三农) entity", 0),
    flag("is_young_entrepreneur", S, "青年创业", "young entrepreneur (founder under 35)", 0),
    FeatureSpec("legal_rep_age_years", S, "法定代表人（经营者）年龄", "age of the legal representative or owner", "years", 0, fill=None),
)  # fmt: skip


def population(ctx: ViewContext) -> ir.Table:
    """Entities registered before ``as_of`` and not deregistered by then."""
    e = ctx.table("entities")
    return e.filter(ctx.active(e.registered_on, e.deregistered_on))


def build(ctx: ViewContext) -> ir.Table:
    """One row per entity in the population: ``uscc``, its key, its registry features."""
    e = population(ctx)
    persons = ctx.table("persons").select("resident_id_key", "birth_date")
    e = e.left_join(persons, e.legal_rep_id_key == persons.resident_id_key)
    return e.select(
        "uscc",
        ENTITY_KEY,
        entity_age_months=ctx.months_since(e.registered_on),
        entity_type=e.entity_type,
        industry=e.industry,
        district=e.district,
        log_registered_capital=(e.registered_capital + 1).ln(),
        employees=e.employees.cast("float64"),
        is_small_micro=e.is_small_micro.cast("int64"),
        is_agricultural=e.is_agricultural.cast("int64"),
        is_young_entrepreneur=e.is_young_entrepreneur.cast("int64"),
        legal_rep_age_years=ctx.days_before(e.birth_date).cast("float64") / 365.25,
    )
