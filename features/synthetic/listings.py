"""Lists kept by the authorities: abnormal operations, blacklist, red list, dishonest debtors.

- ``abnormal_operations`` (经营异常名录): mostly "annual report not filed" listings each July
  (reports are due by 30 June), rare for healthy entities and common for strained, weak and
  defaulted ones, most removed once the report is filed; "unreachable at the registered
  address" while strained (most of all when putting obligations off), behind or after a
  default. An enterprise still listed after 3 years moves to the serious list.
- ``serious_dishonesty`` (严重失信名单): the 3-year rule above, plus rare listings whose
  hazard rises steeply with the latent score and after a default (tax, wage arrears, safety).
- ``red_list`` (守信红名单): A-grade taxpayers and honours of the best entities not strained.
- ``dishonest_debtors`` (失信被执行人): a listing at or after an entity's default. When neither
  ``pboc_monthly`` nor ``private_loans`` shows the default, the court listing in the default
  month is what makes it visible, so every default appears in the records in its month.
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
)
from features.synthetic.registry import ENTERPRISE, INDIVIDUAL
from features.synthetic.schema import make_table
from features.synthetic.world import World

Ints = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]

_ANNUAL_REPORT_BASE = (logit(0.01), logit(0.014), logit(0.02))
_LIST_TYPES = (
    ("重大税收违法失信主体", 0.3),
    ("拖欠农民工工资失信联合惩戒对象", 0.25),
    ("安全生产严重失信主体", 0.15),
    ("食品药品严重失信主体", 0.1),
    ("其他", 0.2),
)
_HONOURS = ("守合同重信用", "海关高级认证企业", "诚信示范企业", "其他")


def _removal(
    world: World, listed: Days, removed: npt.NDArray[np.bool_], low: int, high: int
) -> Days:
    """Removal day ``low``–``high`` days after listing, or NaT (also when not yet happened)."""
    rng = world.rng("removals")
    day = listed + rng.integers(low, high + 1, listed.size).astype("timedelta64[D]")
    result: Days = np.where(removed & (day < world.timeline.delivered), day, np.datetime64("NaT"))
    return result


def build_abnormal_operations(world: World) -> tuple[pa.Table, Ints, Ints, Days]:
    """``abnormal_operations``, the entity of each row, and (entity, day) of enterprises
    still listed 3 years on."""
    reg, tl = world.registry, world.timeline
    rng = world.rng("abnormal_operations")
    base = np.array(_ANNUAL_REPORT_BASE)[reg.entity_type]

    def annual(j: int) -> Floats:
        if int(tl.month(j).astype(np.int64)) % 12 != 6:  # July
            return np.zeros(reg.n)
        x = (
            base
            + 0.8 * distress(world, j)
            + COMPLIANCE * quality(world)
            + 3.0 * strained(world, j)
            + 2.0 * strained_quietly(world, j)
            + 1.5 * defaulted(world, j)
        )
        registered_before = tl.index_of(reg.registered_on) < j - 6
        return np.where(
            (operating(world, j) | defaulted(world, j)) & registered_before, sigmoid(x), 0.0
        )

    def unreachable(j: int) -> Floats:
        return (
            np.where(defaulted(world, j), 0.01, 0.0)
            + np.where(behind(world, j), 0.04, 0.0)
            + np.where(strained(world, j), 0.015, 0.0)
            + np.where(strained_quietly(world, j), 0.06, 0.0)
        )

    a_entity, a_month = monthly_events(world, "annual_report_events", annual, tl.j_start, tl.j_end)
    u_entity, u_month = monthly_events(
        world, "unreachable_events", unreachable, tl.j_start, tl.j_end
    )
    entity = np.concatenate([a_entity, u_entity])
    month = np.concatenate([a_month, u_month])
    n, n_annual = entity.size, a_entity.size
    reason = np.where(
        np.arange(n) < n_annual, "未按规定报送年度报告", "通过登记的住所或者经营场所无法联系"
    )
    rare = rng.random(n) < 0.03
    reason = np.where(
        rare,
        np.where(rng.random(n) < 0.5, "未按规定公示即时信息", "公示信息隐瞒真实情况弄虚作假"),
        reason,
    )
    listed = tl.random_day(month, rng)
    score = world.latent.score[entity, month].astype(np.float64) - world.latent.params.base_logit
    p_remove = np.where(np.arange(n) < n_annual, sigmoid(1.5 - 0.7 * score), 0.2)
    removed = _removal(world, listed, rng.random(n) < p_remove, 20, 540)
    order = np.argsort(listed, kind="stable")
    three_years = listed + np.timedelta64(3 * 365, "D")
    stuck = (
        np.isnat(removed)
        & (reg.entity_type[entity] == ENTERPRISE)
        & (three_years < tl.delivered)
        & (reason != "通过登记的住所或者经营场所无法联系")
    )
    table = make_table(
        "abnormal_operations",
        {
            "record_id": sequence_ids("AO", n),
            "uscc": world.uscc_of(entity[order]),
            "reason": reason[order],
            "listed_on": listed[order],
            "removed_on": removed[order],
        },
    )
    return table, entity[order].astype(np.int64), entity[stuck], three_years[stuck]


def build_serious_dishonesty(
    world: World, stuck_entity: Ints, stuck_day: Days
) -> tuple[pa.Table, Ints]:
    """The ``serious_dishonesty`` table, and the entity of each row."""
    reg, tl = world.registry, world.timeline
    rng = world.rng("serious_dishonesty")

    def probability(j: int) -> Floats:
        x = logit(0.00015) + 1.0 * distress(world, j) + 1.5 * defaulted(world, j)
        return np.where(operating(world, j) | defaulted(world, j), sigmoid(x), 0.0)

    entity, month = monthly_events(world, "serious_events", probability, tl.j_start, tl.j_end)
    listed = np.concatenate([tl.random_day(month, rng), stuck_day])
    entity = np.concatenate([entity, stuck_entity])
    n, n_events = entity.size, month.size
    list_type = np.where(np.arange(n) < n_events, pick(rng, _LIST_TYPES, n), "严重违法失信企业")
    authority = np.where(
        np.arange(n) < n_events,
        np.array(names.LIST_AUTHORITIES)[rng.integers(0, len(names.LIST_AUTHORITIES), n)],
        "温州市市场监督管理局",
    )
    owner = (reg.entity_type[entity] == INDIVIDUAL) & (rng.random(n) < 0.5)
    subject = np.where(owner, reg.resident_id[reg.rep[entity]], reg.uscc[entity])
    removed = _removal(world, listed, rng.random(n) < 0.3, 365, 3 * 365)
    order = np.argsort(listed, kind="stable")
    table = make_table(
        "serious_dishonesty",
        {
            "list_id": sequence_ids("SD", n),
            "subject_id": subject[order],
            "list_type": list_type[order],
            "issuing_authority": authority[order],
            "listed_on": listed[order],
            "removed_on": removed[order],
        },
    )
    return table, entity[order].astype(np.int64)


def build_red_list(world: World, a_entity: Ints, a_year: Ints) -> pa.Table:
    """The ``red_list`` table."""
    reg, tl = world.registry, world.timeline
    rng = world.rng("red_list")
    tax = rng.random(a_entity.size) < 0.3
    tax_entity = a_entity[tax]
    tax_day = world.working_days.next_working_day(
        np.array([np.datetime64(f"{y + 1}-05-20") for y in a_year[tax]], dtype="datetime64[D]")
    )

    def probability(j: int) -> Floats:
        x = logit(0.0025) - 1.2 * distress(world, j)
        eligible = operating(world, j) & ~strained(world, j) & (reg.entity_type == ENTERPRISE)
        return np.where(eligible, sigmoid(x), 0.0)

    entity, month = monthly_events(world, "honour_events", probability, tl.j_start, tl.j_end)
    honour = np.array(_HONOURS)[rng.choice(4, entity.size, p=[0.6, 0.05, 0.25, 0.1])]
    listed = np.concatenate([tax_day, tl.random_day(month, rng)])
    keep = listed < tl.delivered
    entity = np.concatenate([tax_entity, entity])[keep]
    honour = np.concatenate([np.full(tax_entity.size, "纳税信用A级"), honour])[keep]
    listed = listed[keep]
    n = entity.size
    issuer = np.where(
        honour == "纳税信用A级",
        "国家税务总局温州市税务局",
        np.array(names.HONOUR_ISSUERS)[rng.integers(1, len(names.HONOUR_ISSUERS), n)],
    )
    years = np.where(honour == "纳税信用A级", 1, 2)
    expires = (listed.astype("datetime64[M]") + 12 * years).astype(
        "datetime64[D]"
    ) - np.timedelta64(1, "D")
    order = np.argsort(listed, kind="stable")
    return make_table(
        "red_list",
        {
            "honour_id": sequence_ids("RL", n),
            "uscc": world.uscc_of(entity[order]),
            "honour_type": honour[order],
            "issuer": issuer[order],
            "listed_on": listed[order],
            "expires_on": np.maximum(expires, listed)[order],
        },
    )


def build_dishonest_debtors(
    world: World, otherwise_shown: npt.NDArray[np.bool_]
) -> tuple[pa.Table, Ints]:
    """The ``dishonest_debtors`` table and the entity of each row; ``otherwise_shown`` marks
    defaults PBOC or private lending already show."""
    reg, tl, lat = world.registry, world.timeline, world.latent
    rng = world.rng("dishonest_debtors")
    default = lat.default_month
    observed = (default >= 0) & (default <= tl.j_snapshot)
    required = observed & ~otherwise_shown
    extra = observed & otherwise_shown & (rng.random(reg.n) < 0.25)
    entity = np.flatnonzero(required | extra)
    delay = np.where(required[entity], 0, rng.integers(0, 13, entity.size))
    month = np.minimum(default[entity] + delay, tl.j_snapshot)
    listed = tl.random_day(month, rng)
    listed = np.minimum(listed, tl.delivered - np.timedelta64(1, "D"))
    n = entity.size
    ratio = reg.capital[entity] / np.array([1.0e6, 5.0e4, 1.0e6])[reg.entity_type[entity]]
    amount = np.round(2e5 * np.exp(rng.standard_normal(n)) * ratio**0.4, 2).clip(1000, 1e10)
    removed = _removal(world, listed, rng.random(n) < 0.35, 90, 720)
    codes = np.array([d[0] for d in names.DISTRICTS])
    court_codes = np.where(codes == "330383", "330327", codes)
    court_names = np.array([d[1] + "人民法院" for d in names.DISTRICTS])
    court_names = np.where(codes == "330383", "苍南县人民法院", court_names)
    district = reg.district[entity]
    year = (listed.astype("datetime64[Y]").astype(np.int64) + 1970).astype(np.str_)
    order = np.argsort(listed, kind="stable")
    seq = np.arange(1, n + 1).astype(np.str_)
    case_no = np.strings.add(
        np.strings.add(np.strings.add("（", year[order]), "）浙"),
        np.strings.add(
            np.strings.add(np.strings.slice(court_codes[district][order], 2, 6), "执"),
            np.strings.add(seq, "号"),
        ),
    )
    table = make_table(
        "dishonest_debtors",
        {
            "case_no": case_no,
            "subject_id": world.subject_of(entity[order]),
            "court": court_names[district][order],
            "amount": amount[order],
            "listed_on": listed[order],
            "removed_on": removed[order],
        },
    )
    return table, entity[order].astype(np.int64)
