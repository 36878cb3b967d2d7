"""Guarantees (相关还款责任, PD03) and inquiry records (查询记录, PH01).

Guarantees: most guaranteed loans (保证, 组合含保证, 农户联保) name a guarantor from the
register — for an enterprise often its own legal representative, otherwise another entity
or person of the same district, the web of mutual guarantees (互保/担保链) that spread the
2011–2014 Wenzhou crisis. A few Wenzhou guarantors stand behind borrowers outside the city.

Inquiries: pre-loan inquiries (02 贷款审批, 03 信用卡审批, 24 融资审批, 26 额度审批) before
each new account and, as "credit shopping" (applications, most declined): a trickle that
rises with the latent score and triples while behind, and — for an entity that turns to banks
when strained — a burst in the first two months of a strained spell and a steady stream
while it lasts (entities that put off their public obligations instead shop far less);
post-loan inquiries (01 贷后管理) by the lenders;
08 担保资格审查 on guarantors; 22 on the legal representative of a borrowing enterprise;
09 司法调查 after some defaults. Entities without any PBOC account are inquired too
(applications that were declined), so even thin files leave a trace here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.identifiers import make_usccs
from features.synthetic import products
from features.synthetic.events import sequence_ids, zero_pad
from features.synthetic.pboc import Accounts, borrower_class
from features.synthetic.pboc_monthly import PostLoanInquiries
from features.synthetic.registry import ENTERPRISE
from features.synthetic.schema import flat, make_table
from features.synthetic.world import World

Ints = npt.NDArray[np.int64]

_OUTSIDE_AREAS = ("330102", "330203", "330481", "310115", "320506", "350203")
_SHOPPING_BASE = (0.005, 0.002, 0.0015, 0.003)
#: Extra monthly applications while strained: (no account yet, with an account).
_STRAINED_SHOPPING = (0.4, 0.5)
#: ... and a burst of applications in the first months of a strained spell.
_BURST, _BURST_MONTHS = (1.0, 1.0), 2
#: ... much less for entities that do not turn to banks when strained.
_QUIET = 0.15
_SHOPPING_REASONS = (("02", 0.45), ("24", 0.2), ("26", 0.15), ("03", 0.15), ("08", 0.05))
_SHOPPING_INSTITUTIONS = (("11", 0.5), ("12", 0.2), ("51", 0.15), ("24", 0.1), ("99", 0.05))


def _pick_in_group(rng: np.random.Generator, group_of: Ints, members: Ints, wanted: Ints) -> Ints:
    """A random member of the same group (e.g. district) for each ``wanted`` group."""
    order = np.argsort(group_of[members], kind="stable")
    sorted_members = members[order]
    groups = group_of[sorted_members]
    start = np.searchsorted(groups, wanted, side="left")
    stop = np.searchsorted(groups, wanted, side="right")
    size = np.maximum(stop - start, 1)
    index = np.minimum(
        start + np.floor(rng.random(wanted.size) * size).astype(np.int64), sorted_members.size - 1
    )
    result: Ints = sorted_members[index]
    return result


def _end_state(
    world: World, accounts: Accounts
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """Balance and five-category class of every account at the end of the window."""
    tl, lat = world.timeline, world.latent
    closed = accounts.close_j <= tl.j_end
    defaulted = (accounts.default_j >= 0) & (accounts.default_j <= tl.j_end)
    since = tl.j_end - accounts.default_j
    stage = np.maximum(lat.stage[accounts.entity, tl.j_end], 0)
    left = np.clip(1 - (tl.j_end - accounts.open_j) / np.maximum(accounts.term, 1), 0.02, 1)
    balance = np.where(closed, 0.0, np.where(defaulted, accounts.amount, accounts.amount * left))
    five = np.select(
        [
            closed & (accounts.resolution == ""),
            closed,
            defaulted & (since == 0),
            defaulted & (since <= 2),
            defaulted,
            stage >= 1,
        ],
        ["1", "5", "3", "4", "5", "2"],
        "1",
    )
    return np.asarray(np.round(balance, 2), dtype=np.float64), five.astype(np.str_)


def build_guarantees(
    world: World, accounts: Accounts
) -> tuple[pa.Table, Ints, npt.NDArray[np.datetime64]]:
    """The ``pboc_guarantees`` table, plus each row's guarantor entity-or-person id and start.

    The second value holds, per row, the person index of a personal guarantor or
    ``-1 - entity`` for an entity guarantor (used for 08 inquiries).
    """
    reg, tl = world.registry, world.timeline
    rng = world.rng("pboc_guarantees")
    guaranteed = np.flatnonzero(
        np.isin(accounts.guarantee, ["3", "5", "7"]) & (rng.random(accounts.n) < 0.6)
    )
    entity = accounts.entity[guaranteed]
    klass = borrower_class(world)[entity]
    enterprises = np.flatnonzero(reg.entity_type == ENTERPRISE)
    people = np.arange(reg.resident_id.size)[: reg.resident_id.size - reg.spare_persons.size]
    district_of_entity = reg.district.astype(np.int64)
    other_entity = _pick_in_group(rng, district_of_entity, enterprises, district_of_entity[entity])
    other_person = _pick_in_group(
        rng, reg.person_district.astype(np.int64), people, district_of_entity[entity]
    )
    own_rep = reg.rep[entity]
    is_enterprise = klass == 0
    use_rep = is_enterprise & (rng.random(entity.size) < 0.5)
    use_entity = is_enterprise & ~use_rep & (other_entity != entity)
    person = np.where(use_rep, own_rep, np.where(use_entity, -1, other_person))
    person = np.where(~is_enterprise & (person == reg.rep[entity]), -1, person)  # not oneself
    use_entity |= person < 0
    other_entity = np.where(other_entity == entity, enterprises[0], other_entity)
    guarantor = np.where(use_entity, reg.uscc[other_entity], reg.resident_id[np.maximum(person, 0)])
    who = np.where(use_entity, -1 - other_entity, person)
    balance, five = _end_state(world, accounts)
    liability = np.where(~is_enterprise & (rng.random(entity.size) < 0.15), "1", "2")
    share = np.where(rng.random(entity.size) < 0.7, 1.0, rng.uniform(0.3, 1.0, entity.size))

    # Wenzhou guarantors behind borrowers outside the city.
    k = max(1, guaranteed.size // 20)
    outside_guarantor = enterprises[rng.integers(0, enterprises.size, k)]
    body = np.strings.add("MA", zero_pad(rng.integers(0, 10**6, k), 6))
    outside_borrower = make_usccs("9", "1", np.array(_OUTSIDE_AREAS)[rng.integers(0, 6, k)], body)
    start_j = rng.integers(tl.j_start - 24, tl.j_end + 1, k)
    started = tl.random_day(start_j, rng)
    end_j = start_j + rng.integers(12, 37, k)
    ended = np.where(
        end_j <= tl.j_end, tl.random_day(np.minimum(end_j, tl.j_end), rng), np.datetime64("NaT")
    )
    outside_amount = np.round(2e6 * np.exp(rng.standard_normal(k)), -2)
    outside_balance = np.where(
        np.isnat(ended), np.round(outside_amount * rng.uniform(0.3, 1, k), 2), 0.0
    )
    outside_five = np.array(["1", "2", "3"])[rng.choice(3, k, p=[0.9, 0.07, 0.03])]

    n = guaranteed.size + k
    table = make_table(
        "pboc_guarantees",
        {
            "guarantee_id": sequence_ids("G", n, 11),
            "guarantor_id": np.concatenate([guarantor, reg.uscc[outside_guarantor]]),
            "borrower_id": pa.concat_arrays(
                [world.subject_of(entity), flat(pa.array(outside_borrower, type=pa.string()))]
            ),
            "liability_type": np.concatenate([liability, np.full(k, "2")]),
            "amount": np.concatenate(
                [np.round(accounts.amount[guaranteed] * share, 2), outside_amount]
            ),
            "balance": np.concatenate([np.round(balance[guaranteed] * share, 2), outside_balance]),
            "five_class": np.concatenate([five[guaranteed], outside_five]),
            "started_on": np.concatenate([accounts.opened_on[guaranteed], started]),
            "ended_on": np.concatenate([accounts.closed_on[guaranteed], ended]),
        },
    )
    starts = np.concatenate([accounts.opened_on[guaranteed], started])
    return table, np.concatenate([who, -1 - outside_guarantor]), starts


def _shopping(world: World, accounts: Accounts, rng: np.random.Generator) -> tuple[Ints, Ints]:
    """(entity, month) of every credit-shopping application (pre-loan inquiry).

    A steady trickle that rises with the latent score (halved for entities with no account),
    tripled while behind; while strained a steady extra rate, plus a burst in the first
    months of the strained spell (the entity looks for money everywhere).
    """
    reg, tl, lat = world.registry, world.timeline, world.latent
    has_account = np.zeros(reg.n, dtype=bool)
    has_account[accounts.entity] = True
    base = np.array(_SHOPPING_BASE)[borrower_class(world)] * np.where(has_account, 1.0, 0.5)
    strained_rate = np.where(has_account, _STRAINED_SHOPPING[1], _STRAINED_SHOPPING[0])
    burst_rate = np.where(has_account, _BURST[1], _BURST[0])
    spell = np.zeros(reg.n, dtype=np.int64)  # months into the current strained spell
    entities, months = [], []
    for j in range(tl.j_end + 1):
        strained = lat.strained[:, j]
        spell = np.where(strained, spell + 1, 0)
        if j < tl.j_start:
            continue
        stage = lat.stage[:, j]
        distress = lat.score[:, j].astype(np.float64) - lat.params.base_logit
        burst = np.where(spell <= _BURST_MONTHS, burst_rate, 0.0)
        rate = base * np.exp(0.6 * distress) * (1 + 2 * ((stage >= 1) & (stage <= 3)))
        rate += (strained_rate + burst) * strained * np.where(lat.seeks_credit, 1.0, _QUIET)
        count = rng.poisson(np.where((stage >= 0) & (stage <= 3), np.minimum(rate, 3.0), 0.0))
        entities.append(np.repeat(np.arange(reg.n), count))
        months.append(np.full(int(count.sum()), j, dtype=np.int64))
    if not entities:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(entities), np.concatenate(months)


def build_inquiries(
    world: World,
    accounts: Accounts,
    post_loan: PostLoanInquiries,
    guarantor: Ints,
    guarantee_start: npt.NDArray[np.datetime64],
) -> pa.Table:
    """The ``pboc_inquiries`` table (see the module docstring)."""
    reg, tl, lat = world.registry, world.timeline, world.latent
    rng = world.rng("pboc_inquiries")
    first_day = tl.month_start(tl.j_start)
    subjects: list[pa.Array] = []
    days, kinds, reasons, institutions = [], [], [], []

    def add(
        subject: pa.Array,
        day: npt.NDArray[np.datetime64],
        kind: npt.NDArray[np.str_],
        reason: npt.NDArray[np.str_],
        institution: npt.NDArray[np.str_],
    ) -> None:
        subjects.append(subject)
        days.append(day)
        kinds.append(kind)
        reasons.append(reason)
        institutions.append(institution)

    def inquiry_kind(kind: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
        result: npt.NDArray[np.str_] = np.where(
            np.isin(kind, products.INQUIRY_INSTITUTION_TYPES), kind, "99"
        )
        return result

    # Pre-loan inquiries before each new account.
    new = np.flatnonzero(accounts.open_j >= tl.j_start)
    count = 1 + rng.poisson(0.6, new.size)
    acc = np.repeat(new, count)
    card = np.array([p.account_type == "R2" for p in products.PRODUCTS])[accounts.product[acc]]
    loan_reason = np.array(["02", "24", "26"])[rng.choice(3, acc.size, p=[0.6, 0.2, 0.2])]
    add(
        world.subject_of(accounts.entity[acc]),
        accounts.opened_on[acc] - rng.integers(0, 21, acc.size).astype("timedelta64[D]"),
        inquiry_kind(accounts.institution_type[acc]),
        np.where(card, "03", loan_reason),
        accounts.institution_id[acc],
    )
    # 22: the legal representative of a borrowing enterprise.
    rep_check = new[
        (reg.entity_type[accounts.entity[new]] == ENTERPRISE) & (rng.random(new.size) < 0.3)
    ]
    add(
        flat(pa.array(reg.resident_id[reg.rep[accounts.entity[rep_check]]], type=pa.string())),
        accounts.opened_on[rep_check]
        - rng.integers(0, 21, rep_check.size).astype("timedelta64[D]"),
        inquiry_kind(accounts.institution_type[rep_check]),
        np.full(rep_check.size, "22"),
        accounts.institution_id[rep_check],
    )
    # 01: post-loan management, collected with the monthly rows.
    post = np.concatenate(post_loan.institution) if post_loan.institution else np.zeros(0, np.int64)
    add(
        world.subject_of(accounts.entity[post]),
        np.concatenate(post_loan.day) if post_loan.day else np.zeros(0, "datetime64[D]"),
        inquiry_kind(accounts.institution_type[post]),
        np.full(post.size, "01"),
        accounts.institution_id[post],
    )
    # 08: guarantor checks.
    person = guarantor >= 0
    guarantor_id = np.where(
        person, reg.resident_id[np.maximum(guarantor, 0)], reg.uscc[np.maximum(-1 - guarantor, 0)]
    )
    add(
        flat(pa.array(guarantor_id, type=pa.string())),
        guarantee_start - rng.integers(0, 11, guarantor.size).astype("timedelta64[D]"),
        np.full(guarantor.size, "11"),
        np.full(guarantor.size, "08"),
        np.array(products.institution_ids("11"))[rng.integers(0, 25, guarantor.size)],
    )
    # Credit shopping (see `_shopping`).
    who, month = _shopping(world, accounts, rng)
    kind = np.array([c for c, _ in _SHOPPING_INSTITUTIONS])[
        rng.choice(5, who.size, p=[w for _, w in _SHOPPING_INSTITUTIONS])
    ]
    institution = np.empty(who.size, dtype="<U16")
    for c, _ in _SHOPPING_INSTITUTIONS:
        rows = np.flatnonzero(kind == c)
        pool = np.array(products.institution_ids(c))
        institution[rows] = pool[rng.integers(0, pool.size, rows.size)]
    add(
        world.subject_of(who),
        tl.random_day(month, rng),
        kind,
        np.array([r for r, _ in _SHOPPING_REASONS])[
            rng.choice(5, who.size, p=[w for _, w in _SHOPPING_REASONS])
        ],
        institution,
    )
    # 09: judicial inquiries after some defaults.
    defaulted = np.flatnonzero((lat.default_month >= 0) & (rng.random(reg.n) < 0.3))
    add(
        world.subject_of(defaulted),
        tl.random_day(lat.default_month[defaulted] + rng.integers(0, 7, defaulted.size), rng),
        np.full(defaulted.size, "99"),
        np.full(defaulted.size, "09"),
        np.array(products.institution_ids("99"))[rng.integers(0, 5, defaulted.size)],
    )

    day = np.concatenate(days)
    keep = (day >= first_day) & (day <= world.last_day)
    order = np.flatnonzero(keep)[np.argsort(day[keep], kind="stable")]
    n = order.size
    return make_table(
        "pboc_inquiries",
        {
            "inquiry_id": sequence_ids("Q", n, 12),
            "subject_id": flat(pa.concat_arrays(subjects).take(pa.array(order))),
            "inquired_on": day[order],
            "institution_type": np.concatenate(kinds)[order],
            "institution_id": np.concatenate(institutions)[order],
            "reason": np.concatenate(reasons)[order],
        },
    )
