"""Government public-credit data (部门数据): licences, penalties, tax grades, arrears, commitments.

Each table is a noisy view of the latent state (see ``latent``) — the distress score, the
strained spell, the stage and, for compliance records, the persistent entity effect, whose
weight ``COMPLIANCE`` lets years of records reveal it — with coverage that differs by
segment. A strained entity that does not turn to banks puts off its public obligations first,
so its strain shows here most:

- ``admin_licenses`` (行政许可): activity, slightly more for healthy entities and half as
  much while strained; published within the 7 working days of the 双公示 rule (late ones are
  injected as faults).
- ``admin_penalties`` (行政处罚): more often and more severe the worse the score, several times
  more while strained (most of all when putting off obligations) or behind; summary-procedure
  (简易) penalties are warnings or small fines; publicity ends after 3 months for light
  penalties and 3 years otherwise (SAMR Order 45 Art. 13).
- ``tax_credit`` (纳税信用等级): the entities taxed on their books (every enterprise and
  cooperative, a tenth of the individual businesses), graded A/B/C/D from a score that falls
  with the year's mean latent score and its strained months, M for entities new that year,
  published in April of the next year.
- ``social_insurance_arrears`` (社保欠缴): employers registered for social insurance, in arrears
  rarely while healthy and most months while strained and putting obligations off — the
  monthly, early signal that also covers thin-file entities.
- ``credit_commitments`` (信用承诺): kept, broken (more likely for weak or strained entities) or
  pending.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic import names
from features.synthetic.events import (
    COMPLIANCE,
    Floats,
    behind,
    defaulted,
    distress,
    logit,
    monthly_events,
    operating,
    pick,
    quality,
    sequence_ids,
    sigmoid,
    strained,
    strained_quietly,
    zero_pad,
)
from features.synthetic.registry import INDIVIDUAL
from features.synthetic.schema import make_table
from features.synthetic.world import World

Ints = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]

_LICENCE_RATE = np.array([0.02, 0.006, 0.01])
_PENALTY_RATE = np.array([0.0036, 0.0013, 0.0018])
_COMMITMENT_RATE = np.array([0.004, 0.001, 0.003])
_LICENCE_ABBREVIATIONS = ("市监", "环", "卫健", "应急", "交运", "建", "商", "农")
_PENALTY_ABBREVIATIONS = ("市监", "环", "应急", "税", "综执", "消", "交运", "人社")
_LICENCE_TYPES = (
    ("普通", 0.55),
    ("登记", 0.15),
    ("核准", 0.10),
    ("认可", 0.08),
    ("特许", 0.04),
    ("其他", 0.08),
)
_ORDINARY_PENALTIES = (
    ("罚款", 0.60),
    ("没收", 0.10),
    ("警告", 0.08),
    ("通报批评", 0.03),
    ("责令停产停业", 0.06),
    ("暂扣许可证", 0.03),
    ("吊销许可证", 0.02),
    ("降低资质等级", 0.01),
    ("限制开展生产经营活动", 0.02),
    ("责令关闭", 0.01),
    ("限制从业", 0.01),
    ("其他", 0.03),
)
_DOMAINS = ("一般", "安全生产", "消防", "特种设备", "食品药品", "生态环境", "税务", "其他")
_COMMITMENT_TYPES = (
    ("审批替代型", 0.25),
    ("容缺受理型", 0.25),
    ("证明事项告知承诺", 0.20),
    ("主动型", 0.20),
    ("信用修复型", 0.10),
)


def _decisions(world: World, month: Ints, name: str) -> tuple[Days, Days]:
    """Decision day (a working day in or just after the month) and publication day (≤ 5
    working days later, within the 7-working-day rule)."""
    rng = world.rng(name)
    decided = world.working_days.next_working_day(world.timeline.random_day(month, rng))
    published = world.working_days.add(decided, rng.integers(0, 6, month.size))
    return decided, published


def _document_numbers(
    abbreviation: npt.NDArray[np.str_], kind: str, decided: Days
) -> npt.NDArray[np.str_]:
    year = decided.astype("datetime64[Y]").astype(np.int64) + 1970
    seq = zero_pad(np.arange(1, decided.size + 1), 6)
    parts = ("温", abbreviation, kind, "〔", year.astype(np.str_), "〕", seq, "号")
    out = np.asarray(parts[0], dtype=np.str_)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part).astype(np.str_))
    return out


def build_licenses(world: World) -> pa.Table:
    """The ``admin_licenses`` table."""
    reg, tl = world.registry, world.timeline
    rate = _LICENCE_RATE[reg.entity_type] * np.where(np.isin(reg.industry, [2, 7, 16]), 1.5, 1.0)

    def probability(j: int) -> Floats:
        busy = rate * np.exp(-0.15 * distress(world, j)) * (1.0 - 0.5 * strained(world, j))
        return np.where(operating(world, j), busy, 0.0)

    entity, month = monthly_events(world, "licence_events", probability, tl.j_start, tl.j_end)
    decided, published = _decisions(world, month, "licence_days")
    keep = published < tl.delivered
    entity, decided, published = entity[keep], decided[keep], published[keep]
    rng = world.rng("licence_details")
    n = entity.size
    authority = rng.integers(0, len(names.LICENCE_AUTHORITIES), n)
    years = rng.choice([3, 5, 0], n, p=[0.4, 0.3, 0.3])
    valid_until = decided.astype("datetime64[M]") + (12 * years)
    valid_until = (
        valid_until.astype("datetime64[D]")
        + (decided - decided.astype("datetime64[M]").astype("datetime64[D]"))
        - np.timedelta64(1, "D")
    )
    valid_until = np.where(years > 0, np.maximum(valid_until, decided), np.datetime64("NaT"))
    return make_table(
        "admin_licenses",
        {
            "license_id": _document_numbers(
                np.array(_LICENCE_ABBREVIATIONS)[authority], "许", decided
            ),
            "uscc": world.uscc_of(entity),
            "authority": np.array(names.LICENCE_AUTHORITIES)[authority],
            "license_type": pick(rng, _LICENCE_TYPES, n),
            "decided_on": decided,
            "published_on": published,
            "valid_until": valid_until,
        },
    )


def build_penalties(world: World) -> tuple[pa.Table, Ints]:
    """The ``admin_penalties`` table, and the entity of each row."""
    reg, tl = world.registry, world.timeline
    rate = _PENALTY_RATE[reg.entity_type]

    def probability(j: int) -> Floats:
        stressed = (
            1.0
            + 2.0 * strained(world, j)
            + 8.0 * strained_quietly(world, j)
            + 2.0 * behind(world, j)
            + defaulted(world, j)
        )
        live = operating(world, j) | defaulted(world, j)
        x = 0.8 * distress(world, j) + COMPLIANCE * quality(world)
        return np.where(live, rate * np.exp(x) * stressed, 0.0)

    entity, month = monthly_events(world, "penalty_events", probability, tl.j_start, tl.j_end)
    decided, published = _decisions(world, month, "penalty_days")
    keep = published < tl.delivered
    entity, month, decided, published = entity[keep], month[keep], decided[keep], published[keep]
    rng = world.rng("penalty_details")
    n = entity.size
    score = world.latent.score[entity, month].astype(np.float64) - world.latent.params.base_logit
    summary = rng.random(n) < 0.3
    penalty_type = np.where(
        summary, np.where(rng.random(n) < 0.5, "警告", "罚款"), pick(rng, _ORDINARY_PENALTIES, n)
    )
    severe = sigmoid(-2.0 + 0.6 * score)
    u = rng.random(n)
    severity = np.where(
        summary, "一般", np.where(u < severe * 0.3, "严重", np.where(u < severe, "较重", "一般"))
    )
    person_like = reg.entity_type[entity] == INDIVIDUAL
    summary_cap = np.where(person_like, 200.0, 3000.0)
    fine = np.where(
        summary,
        np.round(rng.uniform(0.2, 1.0, n) * summary_cap, -1),
        np.round(2e4 * np.exp(rng.standard_normal(n)) * np.where(severity == "一般", 1.0, 4.0), -2),
    )
    monetary = np.isin(penalty_type, ["罚款", "没收"])
    amount = np.where(monetary, np.maximum(fine, 10.0), np.nan)
    industry = reg.industry[entity]
    domain_index = np.where(
        (industry == 7) & (rng.random(n) < 0.5),
        4,
        np.where(
            (industry == 2) & (rng.random(n) < 0.5),
            rng.choice([1, 2, 3, 5], n),
            rng.choice([0, 0, 0, 6, 7], n),
        ),
    )
    light = (
        summary
        | np.isin(penalty_type, ["警告", "通报批评"])
        | (monetary & (amount <= 1e4) & (severity == "一般"))
    )
    months = np.where(light, 3, 36)
    end = (decided.astype("datetime64[M]") + months).astype("datetime64[D]") + (
        decided - decided.astype("datetime64[M]").astype("datetime64[D]")
    )
    authority = rng.integers(0, len(names.PENALTY_AUTHORITIES), n)
    table = make_table(
        "admin_penalties",
        {
            "case_no": _document_numbers(
                np.array(_PENALTY_ABBREVIATIONS)[authority], "罚", decided
            ),
            "uscc": world.uscc_of(entity),
            "authority": np.array(names.PENALTY_AUTHORITIES)[authority],
            "penalty_type": penalty_type,
            "amount": amount,
            "procedure": np.where(summary, "简易", "普通"),
            "severity": severity,
            "domain": np.array(_DOMAINS)[domain_index],
            "decided_on": decided,
            "published_on": published,
            "publicity_end_on": np.maximum(end, decided),
        },
    )
    return table, entity.astype(np.int64)


def build_tax_credit(world: World) -> tuple[pa.Table, Ints, Ints]:
    """The ``tax_credit`` table, plus (entity, year) of every A grade (for the red list)."""
    reg, tl, lat = world.registry, world.timeline, world.latent
    rng = world.rng("tax_credit")
    taxed = reg.keeps_books
    first_year = max(2014, tl.start.year - 1)
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        k: [] for k in ("entity", "year", "grade", "day")
    }
    for year in range(first_year, tl.end.year + 1):
        april = np.datetime64(f"{year + 1}-04-15")
        j_april = int(tl.index_of(np.array([april]))[0])
        if j_april > tl.j_end:
            break
        published = world.working_days.next_working_day(np.array([april]))[0]
        year_end = np.datetime64(f"{year}-12-31")
        alive = (reg.registered_on <= year_end) & (
            np.isnat(reg.deregistered_on) | (reg.deregistered_on > published)
        )
        rows = np.flatnonzero(taxed & alive)
        months = tl.index_of(np.array([np.datetime64(f"{year}-01-01")]))[0] + np.arange(12)
        months = months[(months >= 0) & (months < tl.n_months)]
        mean_score = (
            lat.score[np.ix_(rows, months)].astype(np.float64).mean(axis=1) - lat.params.base_logit
        )
        strained_share = lat.strained[np.ix_(rows, months)].mean(axis=1) * np.where(
            lat.seeks_credit[rows], 1.0, 1.5
        )
        was_default = (lat.default_month[rows] >= 0) & (lat.default_month[rows] <= j_april)
        score = 100 - (
            14
            + 10 * mean_score
            + 40 * strained_share
            + rng.normal(0, 6, rows.size)
            + 45 * was_default
        )
        grade = np.select([score >= 90, score >= 70, score >= 40], ["A", "B", "C"], "D")
        new = reg.registered_on[rows] >= np.datetime64(f"{year}-01-01")
        grade = np.where(new | ((score >= 70) & (rng.random(rows.size) < 0.04)), "M", grade)
        parts["entity"].append(rows)
        parts["year"].append(np.full(rows.size, year))
        parts["grade"].append(grade)
        parts["day"].append(np.full(rows.size, published))
    entity = np.concatenate(parts["entity"]) if parts["entity"] else np.zeros(0, np.int64)
    year_of = np.concatenate(parts["year"]) if parts["year"] else np.zeros(0, np.int64)
    grade = np.concatenate(parts["grade"]) if parts["grade"] else np.zeros(0, "<U1")
    day = np.concatenate(parts["day"]) if parts["day"] else np.zeros(0, "datetime64[D]")
    table = make_table(
        "tax_credit",
        {"uscc": world.uscc_of(entity), "year": year_of, "grade": grade, "evaluated_on": day},
    )
    a_grade = grade == "A"
    return table, entity[a_grade].astype(np.int64), year_of[a_grade].astype(np.int64)


def build_arrears(world: World) -> pa.Table:
    """The ``social_insurance_arrears`` table."""
    reg, tl = world.registry, world.timeline
    rng = world.rng("arrears_details")
    insured = reg.insured
    base = logit(0.004)

    def probability(j: int) -> Floats:
        x = (
            base
            + 1.0 * distress(world, j)
            + COMPLIANCE * quality(world)
            + 2.5 * strained(world, j)
            + 3.0 * strained_quietly(world, j)
            + 1.0 * behind(world, j)
            + 2.0 * defaulted(world, j)
        )
        live = operating(world, j) | defaulted(world, j)
        return np.where(insured & live, sigmoid(x), 0.0)

    entity, month = monthly_events(world, "arrears_events", probability, tl.j_start, tl.j_end)
    owed = reg.employees[entity] * rng.uniform(550, 1650, entity.size)
    reported = tl.month_start(month + 1) + rng.integers(5, 21, entity.size).astype("timedelta64[D]")
    reported = np.minimum(reported, tl.delivered)
    return make_table(
        "social_insurance_arrears",
        {
            "uscc": world.uscc_of(entity),
            "month": world.month_label(month),
            "amount_owed": np.round(owed, 2),
            "reported_on": reported,
        },
    )


def build_commitments(world: World) -> tuple[pa.Table, Ints]:
    """The ``credit_commitments`` table, and the entity of each row."""
    reg, tl, lat = world.registry, world.timeline, world.latent
    rate = _COMMITMENT_RATE[reg.entity_type]

    def probability(j: int) -> Floats:
        year = int(tl.month(j).astype("datetime64[Y]").astype(np.int64)) + 1970
        return np.where(operating(world, j), rate * (3.0 if year >= 2019 else 1.0), 0.0)

    entity, month = monthly_events(world, "commitment_events", probability, tl.j_start, tl.j_end)
    rng = world.rng("commitment_details")
    n = entity.size
    signed = tl.random_day(month, rng)
    due = signed + rng.integers(30, 366, n).astype("timedelta64[D]")
    due_j = np.minimum(tl.index_of(due), tl.n_months - 1)
    score = lat.score[entity, due_j].astype(np.float64) - lat.params.base_logit
    gone_bad = (lat.default_month[entity] >= 0) & (lat.default_month[entity] <= due_j)
    strained_at_due = lat.strained[entity, due_j] * (1.0 + 0.7 * ~lat.seeks_credit[entity])
    broken = rng.random(n) < sigmoid(
        logit(0.05)
        + 1.0 * score
        + COMPLIANCE * lat.quality[entity]
        + 1.5 * strained_at_due
        + 2.0 * gone_bad
    )
    fulfilled = np.where(due >= tl.delivered, "履行中", np.where(broken, "未履行", "已履行"))
    table = make_table(
        "credit_commitments",
        {
            "commitment_id": sequence_ids("CM", n, 10),
            "uscc": world.uscc_of(entity),
            "matter": np.array(names.COMMITMENT_MATTERS)[
                rng.integers(0, len(names.COMMITMENT_MATTERS), n)
            ],
            "commitment_type": pick(rng, _COMMITMENT_TYPES, n),
            "signed_on": signed,
            "due_on": due,
            "fulfilled": fulfilled,
        },
    )
    return table, entity.astype(np.int64)
