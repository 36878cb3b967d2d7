"""Month-end status of every PBOC account (PD01C/PD01D/PD01E: the 24/60-month strings).

Repayment-status symbols follow a Markov chain driven by the borrower's latent distress
stage: ``N`` while current (``*`` for an unused revolving line or card, now and then ``M``
— paid after the due day but before month end — and an isolated ``1`` for a late payment
that is caught up, both far more often while the borrower is strained, when it also draws
more on its revolving lines), ``1`` → ``2`` → ``3`` while the borrower is 1–30, 31–60,
61–90 days behind, ``4``–``7`` after the default (91–120 … 180+ days), then ``B`` (呆账) once
written off, or a final ``D`` / ``Z`` / ``G``; ``C`` in the month the account is settled and
``#`` now and then in an account's first month. The five-category class (五级分类) follows the
days past due as in the credit-card rule of DOMAIN.md §3.6: 正常 when current, 关注 at 1–90
days, 次级 at 91–120, 可疑 at 121–180, 损失 beyond.

Rows are generated account by account in chunks (a few hundred thousand accounts at a
time) and streamed to the writer. Post-loan inquiries (贷后管理, reason 01) are drawn in the
same pass, more often for strained and far more often for delinquent borrowers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic import products
from features.synthetic.pboc import Accounts
from features.synthetic.schema import arrow_schema, flat, take
from features.synthetic.world import World

Ints = npt.NDArray[np.int64]

STATUS = ("N", "1", "2", "3", "4", "5", "6", "7", "C", "G", "D", "Z", "B", "M", "*", "#")
_S = {symbol: i for i, symbol in enumerate(STATUS)}
#: Five-category class per status symbol (index into ``FIVE_CLASS``).
FIVE_CLASS = ("1", "2", "3", "4", "5", "6", "9")
_CLASS_OF_STATUS = np.array([0, 1, 1, 1, 2, 3, 3, 4, 0, 4, 4, 4, 4, 0, 0, 6])
DEFAULT_STATUSES = ("4", "5", "6", "7", "B")
CHUNK_ACCOUNTS = 200_000
#: Monthly chance of an ``M`` and of an isolated ``1`` on a current account, for healthy and
#: for strained borrowers (a strained borrower pays late more often before falling behind).
PAID_LATE, STRAINED_PAID_LATE = 0.01, 0.1
CAUGHT_UP, STRAINED_CAUGHT_UP = 0.003, 0.06
#: Revolving utilisation rises by these shares per stage behind and while strained.
UTILISATION_PER_STAGE, UTILISATION_STRAINED = 0.3, 0.5


@dataclass
class PostLoanInquiries:
    """Post-loan inquiries (reason 01) collected while the monthly rows are generated."""

    entity: list[Ints]
    day: list[npt.NDArray[np.datetime64]]
    institution: list[npt.NDArray[np.int64]]  # account index


def row_counts(world: World, accounts: Accounts) -> tuple[Ints, Ints]:
    """(first month, number of monthly rows) of every account within the window."""
    tl = world.timeline
    first = np.maximum(accounts.open_j, tl.j_start)
    last = np.minimum(accounts.close_j, tl.j_end)
    return first, np.maximum(last - first + 1, 0)


def _statuses(
    accounts: Accounts,
    acc: Ints,
    j: Ints,
    stage: Ints,
    strained: npt.NDArray[np.bool_],
    revolving: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> Ints:
    """Status symbol index (into ``STATUS``) of each account-month row."""
    default_j = accounts.default_j[acc]
    after_default = (default_j >= 0) & (j >= default_j)
    u = rng.random((3, acc.size))
    status = np.where((stage >= 1) & (stage <= 3), stage, _S["N"])
    current = (status == _S["N"]) & ~after_default
    status = np.where(current & revolving[acc] & (u[0] < 0.25), _S["*"], status)
    paid_late = np.where(strained, STRAINED_PAID_LATE, PAID_LATE)  # M: after the due day
    caught_up = np.where(strained, STRAINED_CAUGHT_UP, CAUGHT_UP)  # an isolated 1
    status = np.where(current & (status == _S["N"]) & (u[1] < paid_late), _S["M"], status)
    status = np.where(current & (status == _S["N"]) & (u[1] > 1 - caught_up), _S["1"], status)
    status = np.where((j == accounts.open_j[acc]) & current & (u[2] < 0.01), _S["#"], status)
    status = np.where(~after_default & (j == accounts.close_j[acc]), _S["C"], status)
    status = np.where(after_default, _S["4"] + np.minimum(j - default_j, 3), status)
    status = np.where(after_default & (j >= accounts.writeoff_j[acc]), _S["B"], status)
    ends = after_default & (j == accounts.close_j[acc])
    for symbol in ("D", "Z", "G"):
        status = np.where(ends & (accounts.resolution[acc] == symbol), _S[symbol], status)
    result: Ints = status.astype(np.int64)
    return result


def _amounts(
    accounts: Accounts,
    acc: Ints,
    j: Ints,
    stage: Ints,
    strained: npt.NDArray[np.bool_],
    status: Ints,
    amortising: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Balance and overdue amount: amortising or bullet schedules (cards: a used share of
    the limit), frozen once the borrower falls behind; all overdue after the default."""
    amount, term = accounts.amount[acc], accounts.term[acc]
    default_j = accounts.default_j[acc]
    after_default = (default_j >= 0) & (j >= default_j)
    behind = np.where(after_default, j - default_j + 3, np.where(status <= 3, status, 0))
    elapsed = np.maximum(j - behind - accounts.open_j[acc], 0)
    schedule = np.where(
        amortising[acc] & (term > 0),
        amount * np.clip(1 - elapsed / np.maximum(term, 1), 0.02, 1),
        amount,
    )
    card = term == 0
    rise = 1 + UTILISATION_PER_STAGE * stage + UTILISATION_STRAINED * strained
    utilisation = np.clip(rng.beta(2, 5, acc.size) * rise, 0, 1)
    balance = np.where(card, amount * utilisation, schedule)
    installment = np.where(
        card, 0.1 * balance, np.where(amortising[acc], amount / np.maximum(term, 1), amount * 0.006)
    )
    delinquent = (status >= 1) & (status <= 3)
    overdue = np.where(delinquent, np.minimum(balance, status * installment), 0.0)
    overdue = np.where(((status >= 4) & (status <= 7)) | (status == _S["B"]), balance, overdue)
    settled = np.isin(status, [_S["C"], _S["D"], _S["Z"], _S["G"], _S["*"]])
    balance_out = np.asarray(np.round(np.where(settled, 0.0, balance), 2), dtype=np.float64)
    overdue_out = np.asarray(np.round(np.where(settled, 0.0, overdue), 2), dtype=np.float64)
    return balance_out, overdue_out


def monthly_batches(
    world: World, accounts: Accounts, post_loan: PostLoanInquiries
) -> Iterator[pa.Table]:
    """Yield ``pboc_monthly`` in chunks of accounts (rows ordered by account, month)."""
    tl, lat = world.timeline, world.latent
    rng = world.rng("pboc_monthly")
    schema = arrow_schema("pboc_monthly")
    first, counts = row_counts(world, accounts)
    revolving = np.array([p.revolving for p in products.PRODUCTS])[accounts.product]
    amortising = np.array([p.amortising for p in products.PRODUCTS])[accounts.product]
    ids = flat(pa.array(accounts.account_id, type=pa.string()))
    for start in range(0, accounts.n, CHUNK_ACCOUNTS):
        a = np.arange(start, min(start + CHUNK_ACCOUNTS, accounts.n))
        n_rows = counts[a]
        acc = np.repeat(a, n_rows)
        offsets = np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
        j = first[acc] + (np.arange(acc.size) - offsets)
        entity = accounts.entity[acc]
        stage = np.maximum(lat.stage[entity, j], 0).astype(np.int64)
        strained = lat.strained[entity, j]
        status = _statuses(accounts, acc, j, stage, strained, revolving, rng)
        balance, overdue = _amounts(accounts, acc, j, stage, strained, status, amortising, rng)

        # Post-loan inquiries by the lender, far more often for delinquent borrowers.
        delinquent = (status >= 1) & (status <= 3)
        after_default = (accounts.default_j[acc] >= 0) & (j >= accounts.default_j[acc])
        p_inquiry = np.select([delinquent, after_default, strained], [0.4, 0.08, 0.08], 0.02)
        hit = (rng.random(acc.size) < p_inquiry) & (status != _S["C"])
        post_loan.entity.append(entity[hit])
        post_loan.day.append(tl.random_day(j[hit], rng))
        post_loan.institution.append(acc[hit])

        yield pa.Table.from_arrays(
            [
                ids.take(pa.array(acc)),
                world.month_label(j),
                take(STATUS, status),
                pa.array(balance),
                pa.array(overdue),
                take(FIVE_CLASS, _CLASS_OF_STATUS[status]),
            ],
            schema=schema,
        )
