"""Registered private loans (民间借贷备案, 温州市民间融资管理条例 Art. 14).

A minority of entities borrow privately; whether they do is independent of their latent
quality (a registered loan is positive credit evidence and must never lower a grade by
itself, Art. 18). New loans come more often the worse the latent score and three times as
often while strained, never while the entity is behind or after it defaulted. Every loan of
¥3m or more, or with 30 or more lenders, is registered (mandatory); smaller ones only
voluntarily (about a third), and only registered loans are delivered — so many private
borrowers leave no trace. Most are registered within the 15 days the regulation allows, some
later.

The rate is the 温州指数 composite of the contract month plus a spread by lender type that
grows with the latent score and while strained; some exceed the legal cap (24% before
2020-08-20, then 4×LPR), a distress signal. The status is the state on the delivery date
(a snapshot): 正常, 结清 (with ``settled_on``), 逾期 (1–90 days) or 违约 (more than 90 days:
the loan was outstanding when the borrower defaulted). ``overdue_days`` counts from the day
the borrower fell behind, so ``delivered_on - overdue_days + 90 days`` — the day it passed
90 days overdue, the PBOC 91+ days rule — falls in the borrower's default month.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic.events import sequence_ids
from features.synthetic.reference import legal_cap
from features.synthetic.registry import COOPERATIVE, ENTERPRISE, INDIVIDUAL
from features.synthetic.schema import make_table
from features.synthetic.world import World

Ints = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]
logger = logging.getLogger(__name__)

PARTICIPATION = {ENTERPRISE: 0.14, INDIVIDUAL: 0.07, COOPERATIVE: 0.05}
MANDATORY_AMOUNT = 3_000_000.0
VOLUNTARY_SHARE = 0.35
LENDERS = ("个人", "企业", "小额贷款公司", "民间资本管理公司", "其他")
_LENDER_WEIGHTS = (0.55, 0.15, 0.12, 0.08, 0.10)
_LENDER_SPREAD = (-1.0, 0.0, 2.5, 1.0, 4.0)
_COLLATERAL = (
    ("无", 0.35),
    ("房产", 0.25),
    ("车辆", 0.10),
    ("股权", 0.05),
    ("保证", 0.20),
    ("其他", 0.05),
)
_PURPOSE = (("生产经营", 0.45), ("资金周转", 0.35), ("购房", 0.05), ("消费", 0.10), ("其他", 0.05))


def _codes(
    rng: np.random.Generator, options: tuple[tuple[str, float], ...], n: int
) -> npt.NDArray[np.str_]:
    weights = np.array([w for _, w in options])
    result: npt.NDArray[np.str_] = np.array([c for c, _ in options])[
        rng.choice(len(options), n, p=weights / weights.sum())
    ]
    return result


def _contracts(world: World, rng: np.random.Generator) -> tuple[Ints, Ints]:
    """(entity, month) of every private loan contracted in the window."""
    reg, tl, lat = world.registry, world.timeline, world.latent
    participation = np.vectorize(PARTICIPATION.__getitem__, otypes=[float])(reg.entity_type)
    user = rng.random(reg.n) < participation
    entities, months = [], []
    for j in range(tl.j_start, tl.j_end + 1):
        distress = lat.score[:, j].astype(np.float64) - lat.params.base_logit
        p_new = np.minimum(0.03 * np.exp(0.3 * distress) * (1 + 2 * lat.strained[:, j]), 0.3)
        hits = np.flatnonzero(user & (lat.stage[:, j] == 0) & (rng.random(reg.n) < p_new))
        entities.append(hits)
        months.append(np.full(hits.size, j, dtype=np.int64))
    return np.concatenate(entities), np.concatenate(months)


def _snapshot(
    world: World,
    rng: np.random.Generator,
    entity: Ints,
    contract_j: Ints,
    due_j: Ints,
    contract_on: Days,
    due_on: Days,
) -> tuple[npt.NDArray[np.str_], Ints, Days, npt.NDArray[np.bool_]]:
    """Status, overdue days and settled day on the delivery date, and which loans were
    outstanding when their borrower defaulted (see the module docstring)."""
    tl, lat = world.timeline, world.latent
    n = entity.size
    s = tl.j_snapshot
    delivered = tl.delivered
    default = lat.default_month[entity]
    caught = (default >= 0) & (default <= s) & (contract_j <= default - 3) & (due_j >= default - 3)
    stage_now = lat.stage[entity, s].astype(np.int64)
    onset = s - stage_now + 1
    behind = (
        ~caught & (stage_now >= 1) & (stage_now <= 3) & (contract_j <= onset) & (due_j >= onset)
    )
    cross_month = np.where(caught, default, onset + 3)
    room = (delivered - tl.month_start(cross_month)).astype(np.int64) - 1
    r = np.minimum(rng.integers(0, 28, n), np.maximum(room, 0))
    overdue_since = tl.month_start(cross_month) + (r - 90).astype("timedelta64[D]")
    overdue_days = np.where(
        caught | behind, np.clip((delivered - overdue_since).astype(np.int64), 1, 36500), 0
    )
    overdue_days = np.where(behind, np.minimum(overdue_days, 90), overdue_days)
    matured = ~caught & ~behind & (due_on < delivered)
    early_day = contract_on + (rng.random(n) * (due_on - contract_on).astype(np.int64)).astype(
        np.int64
    ).astype("timedelta64[D]")
    late_day = due_on + rng.integers(0, 11, n).astype("timedelta64[D]")
    settled_on = np.minimum(
        np.where(rng.random(n) < 0.15, early_day, late_day), delivered - np.timedelta64(1, "D")
    )
    settled_on = np.where(matured, settled_on, np.datetime64("NaT"))
    status = np.select([caught, behind, matured], ["违约", "逾期", "结清"], "正常")
    return status, overdue_days, settled_on, caught


def build_private_loans(
    world: World, composite: npt.NDArray[np.float64]
) -> tuple[pa.Table, npt.NDArray[np.bool_], Ints]:
    """The ``private_loans`` table, which entities' defaults it shows (status 违约), and the
    entity of each row."""
    reg, tl, lat = world.registry, world.timeline, world.latent
    rng = world.rng("private_loans")
    entity, contract_j = _contracts(world, rng)
    n = entity.size

    kind = reg.entity_type[entity]
    lender = rng.choice(len(LENDERS), n, p=_LENDER_WEIGHTS)
    lender_count = np.select(
        [rng.random(n) < 0.82, rng.random(n) < 0.83],
        [1, rng.integers(2, 6, n)],
        rng.integers(30, 51, n),
    )
    median = np.array([1.2e6, 3.0e5, 4.0e5])[kind]
    capital_ratio = reg.capital[entity] / np.array([1.0e6, 5.0e4, 1.0e6])[kind]
    amount = np.round(median * np.exp(rng.standard_normal(n)) * capital_ratio**0.2, -3).clip(
        1000, 1e9
    )
    registered = (
        (amount >= MANDATORY_AMOUNT) | (lender_count >= 30) | (rng.random(n) < VOLUNTARY_SHARE)
    )
    contract_on = tl.random_day(contract_j, rng)
    delay = np.where(rng.random(n) < 0.93, rng.integers(0, 16, n), rng.integers(16, 91, n))
    registered_on = contract_on + delay.astype("timedelta64[D]")
    keep = registered & (registered_on < world.timeline.delivered)
    term = np.array([3, 6, 6, 12, 12, 12, 24])[rng.integers(0, 7, n)]
    day = (contract_on - tl.month_start(contract_j)).astype(np.int64)
    due_j = contract_j + term
    due_on = tl.month_start(due_j) + np.minimum(day, tl.days_in_month(due_j) - 1).astype(
        "timedelta64[D]"
    )
    distress = lat.score[entity, contract_j].astype(np.float64) - lat.params.base_logit
    strained = lat.strained[entity, contract_j]
    spread = (
        np.array(_LENDER_SPREAD)[lender] + 2.5 * distress + 3.0 * strained + rng.normal(0, 2.0, n)
    )
    rate = np.round(np.clip(composite[contract_j] + spread, 3.0, 60.0), 2)

    status, overdue_days, settled_on, caught = _snapshot(
        world, rng, entity, contract_j, due_j, contract_on, due_on
    )

    order = np.flatnonzero(keep)[np.argsort(contract_on[keep], kind="stable")]
    shows_default = np.zeros(reg.n, dtype=bool)
    shows_default[entity[keep & caught]] = True
    purpose = _codes(rng, _PURPOSE, n)
    table = make_table(
        "private_loans",
        {
            "loan_id": sequence_ids("WZMJ", order.size, 10),
            "borrower_id": world.subject_of(entity[order]),
            "lender_type": np.array(LENDERS)[lender[order]],
            "lender_count": lender_count[order],
            "amount": amount[order],
            "annual_rate": rate[order],
            "contract_on": contract_on[order],
            "registered_on": registered_on[order],
            "term_months": term[order],
            "due_on": due_on[order],
            "collateral": _codes(rng, _COLLATERAL, n)[order],
            "purpose": purpose[order],
            "status": status[order],
            "overdue_days": overdue_days[order],
            "settled_on": settled_on[order],
        },
    )
    above_cap = rate[order] > legal_cap(contract_on[order])
    logger.info(
        "private loans priced above the legal cap: %d of %d", above_cap.sum(), above_cap.size
    )
    return table, shows_default, entity[order].astype(np.int64)
