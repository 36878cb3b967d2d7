"""PBOC credit accounts (征信信贷账户, PD01A) and repayment liabilities (相关还款责任, PD03).

Coverage is the point: banks report most enterprises but few individual businesses and
farmers, so well under half of all entities have a PBOC history (thin files). Better
entities are somewhat more likely to be covered and open accounts more often; a strained
entity opens far fewer (banks decline it), and no account is opened while an entity is
delinquent or after it defaulted.

An account follows its borrower's distress stage month by month (see ``pboc_monthly``). An
account that is open when the borrower falls behind for the last time before defaulting
(three months before the default) stays open and reaches status 4 (91–120 days) in the
default month; later it is written off (B, 呆账) or ends by a guarantor's payment (D), by
assets (Z) or otherwise (G). Other accounts close (C, 结清) at maturity once the borrower is
current again, or when the entity is deregistered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic import products
from features.synthetic.events import sequence_ids
from features.synthetic.registry import COOPERATIVE, ENTERPRISE, INDIVIDUAL
from features.synthetic.schema import make_table
from features.synthetic.world import World

Ints = npt.NDArray[np.int64]
Days = npt.NDArray[np.datetime64]

#: Share of entities with a PBOC history by borrower class, and monthly opening rates.
COVERAGE = (0.82, 0.22, 0.30, 0.45)
OPENING_RATE = (0.05, 0.035, 0.03, 0.03)
INITIAL_ACCOUNTS = (1.2, 0.8, 0.6, 0.6)
#: Banks turn most applications of strained borrowers down: their opening rate shrinks.
STRAINED_OPENING = 0.3
RESOLUTION_SHARE = 0.4
NEVER = 1 << 30


@dataclass(frozen=True)
class Accounts:
    """All PBOC accounts (one element per account), sorted by borrower and opening."""

    account_id: npt.NDArray[np.str_]
    entity: Ints
    product: Ints
    institution_type: npt.NDArray[np.str_]
    institution_id: npt.NDArray[np.str_]
    guarantee: npt.NDArray[np.str_]
    term: Ints
    amount: npt.NDArray[np.float64]
    open_j: Ints
    opened_on: Days
    due_on: Days
    close_j: Ints  # month of C / D / Z / G, or NEVER
    closed_on: Days
    default_j: Ints  # the borrower's default month if this account is caught in it, else -1
    writeoff_j: Ints
    resolution: npt.NDArray[np.str_]  # "D", "Z", "G" or "" (written off / not defaulted)

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.entity.size)


def borrower_class(world: World) -> Ints:
    """Borrower class of every entity (see ``products``)."""
    reg = world.registry
    kind = reg.entity_type
    result: Ints = np.select(
        [kind == ENTERPRISE, kind == COOPERATIVE, (kind == INDIVIDUAL) & reg.is_agricultural],
        [products.ENTERPRISE_BORROWER, products.COOPERATIVE_BORROWER, products.FARMER_BORROWER],
        products.OWNER_BORROWER,
    ).astype(np.int64)
    return result


def _weighted(rng: np.random.Generator, options: products.Weighted, n: int) -> npt.NDArray[np.str_]:
    codes = np.array([c for c, _ in options])
    weights = np.array([w for _, w in options])
    result: npt.NDArray[np.str_] = codes[rng.choice(codes.size, n, p=weights / weights.sum())]
    return result


def _openings(world: World, klass: Ints, covered: npt.NDArray[np.bool_]) -> tuple[Ints, Ints]:
    """(entity, opening month) of every account opened before or during the window."""
    lat, tl = world.latent, world.timeline
    rng = world.rng("pboc_openings")
    # Accounts already open when the grid starts.
    before = np.flatnonzero(covered & (lat.registered_month < 0))
    count = rng.poisson(np.array(INITIAL_ACCOUNTS)[klass[before]])
    stock_entity = np.repeat(before, count)
    earliest = np.maximum(lat.registered_month[stock_entity], -48)
    stock_open = earliest + np.floor(rng.random(stock_entity.size) * (-earliest)).astype(np.int64)
    entities, months = [stock_entity], [stock_open]
    rate = np.array(OPENING_RATE)[klass]
    for j in range(tl.j_end + 1):
        score = lat.score[:, j].astype(np.float64)
        p_open = np.minimum(rate * np.exp(-0.25 * (score - lat.params.base_logit)), 0.3)
        p_open = np.where(lat.strained[:, j], STRAINED_OPENING * p_open, p_open)
        eligible = covered & (lat.stage[:, j] == 0)
        hits = np.flatnonzero(eligible & (rng.random(world.registry.n) < p_open))
        entities.append(hits)
        months.append(np.full(hits.size, j, dtype=np.int64))
    return np.concatenate(entities), np.concatenate(months)


def _terms(
    world: World, rng: np.random.Generator, entity: Ints, klass: Ints
) -> dict[str, npt.NDArray[Any]]:
    """Product, institution, guarantee method, term and amount of each account."""
    reg = world.registry
    n = entity.size
    product = np.empty(n, dtype=np.int64)
    for c in range(4):
        rows = np.flatnonzero(klass[entity] == c)
        ids = np.array([i for i, p in enumerate(products.PRODUCTS) if p.borrower == c])
        weights = np.array([products.PRODUCTS[i].weight for i in ids])
        product[rows] = ids[rng.choice(ids.size, rows.size, p=weights / weights.sum())]
    terms: dict[str, npt.NDArray[Any]] = {
        "product": product,
        "institution_type": np.empty(n, dtype="<U2"),
        "institution_id": np.empty(n, dtype="<U16"),
        "guarantee": np.empty(n, dtype="<U1"),
        "term": np.empty(n, dtype=np.int64),
        "amount": np.empty(n, dtype=np.float64),
    }
    capital_ratio = reg.capital[entity] / np.array([1.0e6, 5.0e4, 1.0e6])[reg.entity_type[entity]]
    for i, spec in enumerate(products.PRODUCTS):
        rows = np.flatnonzero(product == i)
        terms["institution_type"][rows] = _weighted(rng, spec.institutions, rows.size)
        terms["guarantee"][rows] = _weighted(rng, spec.guarantees, rows.size)
        terms["term"][rows] = np.array(spec.terms)[rng.integers(0, len(spec.terms), rows.size)]
        raw = spec.median_amount * np.exp(spec.amount_sigma * rng.standard_normal(rows.size))
        terms["amount"][rows] = np.round(raw * capital_ratio[rows] ** 0.3, -2).clip(1000, 5e9)
    for kind in np.unique(terms["institution_type"]):
        rows = np.flatnonzero(terms["institution_type"] == kind)
        pool = np.array(products.institution_ids(str(kind)))
        terms["institution_id"][rows] = pool[rng.integers(0, pool.size, rows.size)]
    return terms


def _fates(
    world: World, rng: np.random.Generator, entity: Ints, open_j: Ints, terms: dict[str, Any]
) -> dict[str, npt.NDArray[Any]]:
    """Close month, default month, write-off month and resolution of each account."""
    lat, tl = world.latent, world.timeline
    n = entity.size
    term = terms["term"]
    card = term == 0
    planned_end = np.where(card, open_j + 1 + rng.geometric(1 / 100, n), open_j + term)
    default = lat.default_month[entity]
    caught = (default >= 0) & (open_j <= default - 4) & (planned_end >= default - 3)
    default_j = np.where(caught, default, -1)
    # Normal close: first month from the planned end in which the borrower is current.
    last = tl.n_months - 1
    close_j = np.full(n, NEVER, dtype=np.int64)
    for lag in range(3, -1, -1):
        month = planned_end + lag
        inside = month <= last
        # before the grid (stock accounts of short windows) the borrower counts as current
        stage = np.where(
            month < 0, 0, np.where(inside, lat.stage[entity, np.clip(month, 0, last)], 9)
        )
        close_j = np.where(inside & (stage <= 0), month, close_j)
    close_j = np.minimum(close_j, lat.deregistered_month[entity])
    resolved = caught & (rng.random(n) < RESOLUTION_SHARE)
    resolve_j = default_j + rng.integers(4, 25, n)
    guarantee = terms["guarantee"]
    by_guarantee = np.select(
        [np.isin(guarantee, ["3", "5", "7"]), np.isin(guarantee, ["1", "2", "6"])], ["D", "Z"], "G"
    )
    return {
        "close_j": np.where(caught, np.where(resolved, resolve_j, NEVER), close_j),
        "default_j": default_j,
        "writeoff_j": np.where(caught & ~resolved, default_j + rng.integers(6, 19, n), NEVER),
        "resolution": np.where(resolved, by_guarantee, "").astype(np.str_),
    }


def build_accounts(world: World) -> Accounts:
    """Draw every PBOC account and its fate (see the module docstring)."""
    lat, tl, reg = world.latent, world.timeline, world.registry
    rng = world.rng("pboc_accounts")
    klass = borrower_class(world)
    shift = -0.4 * (lat.base - np.median(lat.base))
    p_cover = np.array(COVERAGE)[klass]
    p_cover = 1.0 / (1.0 + np.exp(-(np.log(p_cover / (1.0 - p_cover)) + shift)))
    covered = rng.random(reg.n) < p_cover
    entity, open_j = _openings(world, klass, covered)
    terms = _terms(world, rng, entity, klass)
    columns = {
        "entity": entity,
        "open_j": open_j,
        **terms,
        **_fates(world, rng, entity, open_j, terms),
    }
    keep = (columns["close_j"] >= tl.j_start - 24) & (open_j <= tl.j_end)
    order = np.lexsort((open_j, entity))
    order = order[keep[order]]
    c = {name: values[order] for name, values in columns.items()}

    opened_on = tl.random_day(c["open_j"], rng)
    day = (opened_on - tl.month_start(c["open_j"])).astype(np.int64)
    due_month = c["open_j"] + c["term"]
    offset = np.minimum(day, tl.days_in_month(due_month) - 1).astype("timedelta64[D]")
    due_on = np.where(c["term"] == 0, np.datetime64("NaT"), tl.month_start(due_month) + offset)
    shown = c["close_j"] <= tl.j_end
    closed_on = np.maximum(tl.random_day(np.where(shown, c["close_j"], tl.j_end), rng), opened_on)
    return Accounts(
        account_id=sequence_ids("WZ", order.size, 12),
        opened_on=opened_on,
        due_on=due_on,
        closed_on=np.where(shown, closed_on, np.datetime64("NaT")),
        **c,
    )


def accounts_table(world: World, accounts: Accounts) -> pa.Table:
    """The ``pboc_accounts`` table."""
    spec = products.PRODUCTS
    return make_table(
        "pboc_accounts",
        {
            "account_id": accounts.account_id,
            "borrower_id": world.subject_of(accounts.entity),
            "account_type": np.array([p.account_type for p in spec])[accounts.product],
            "institution_type": accounts.institution_type,
            "institution_id": accounts.institution_id,
            "business_type": np.array([p.business_type for p in spec])[accounts.product],
            "guarantee_method": accounts.guarantee,
            "opened_on": accounts.opened_on,
            "due_on": accounts.due_on,
            "amount": accounts.amount,
            "closed_on": accounts.closed_on,
        },
    )


def pboc_shows_default(world: World, accounts: Accounts) -> npt.NDArray[np.bool_]:
    """Entities whose default month appears as status 4 in ``pboc_monthly``."""
    shown = np.zeros(world.registry.n, dtype=bool)
    caught = (accounts.default_j >= 0) & (accounts.default_j <= world.timeline.j_end)
    shown[accounts.entity[caught]] = True
    return shown
