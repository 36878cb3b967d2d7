"""Credit products seen in the PBOC credit reference data (PD01A codes, DOMAIN.md §3.2).

Each product fixes the account type (PD01AD01), business type (PD01AD03), the institution
types (PD01AD02) and guarantee methods (PD01AD07) that offer it with their weights, the
terms in months (0 = a card with no due date) and a log-normal amount. Borrower classes:
enterprises borrow under their USCC, individual-business owners and farmers under their
resident ID (个人经营性贷款, 农户贷款), cooperatives under their USCC. The mix is an
assumption; the codes are the catalog's.
"""

from __future__ import annotations

from dataclasses import dataclass

ENTERPRISE_BORROWER, OWNER_BORROWER, FARMER_BORROWER, COOPERATIVE_BORROWER = 0, 1, 2, 3

Weighted = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Product:
    """One credit product (see the module docstring)."""

    borrower: int
    account_type: str
    business_type: str
    weight: float
    institutions: Weighted
    guarantees: Weighted
    terms: tuple[int, ...]
    median_amount: float
    amount_sigma: float
    amortising: bool

    @property
    def revolving(self) -> bool:
        """Revolving lines and cards can show ``*`` (no repayment due this month)."""
        return self.account_type in ("R1", "R2", "R3")


_BANKS: Weighted = (("11", 0.8), ("12", 0.15), ("51", 0.05))
PRODUCTS: tuple[Product, ...] = (
    # enterprises (USCC)
    Product(
        0,
        "D1",
        "E1",
        0.50,
        _BANKS,
        (("2", 0.4), ("3", 0.35), ("5", 0.1), ("1", 0.05), ("4", 0.1)),
        (6, 12, 12, 12, 24),
        2.0e6,
        1.1,
        False,
    ),
    Product(
        0,
        "D1",
        "E2",
        0.15,
        (("11", 1.0),),
        (("2", 0.7), ("5", 0.2), ("3", 0.1)),
        (36, 60, 60),
        6.0e6,
        1.0,
        True,
    ),
    Product(
        0,
        "D1",
        "E3",
        0.10,
        (("11", 1.0),),
        (("1", 0.5), ("4", 0.3), ("3", 0.2)),
        (3, 6),
        1.5e6,
        1.0,
        False,
    ),
    Product(
        0,
        "R1",
        "E1",
        0.15,
        (("11", 0.9), ("12", 0.1)),
        (("2", 0.5), ("3", 0.5)),
        (12,),
        3.0e6,
        1.0,
        False,
    ),
    Product(0, "D1", "92", 0.05, (("22", 1.0),), (("6", 0.5), ("2", 0.5)), (36,), 1.0e6, 0.9, True),
    Product(
        0,
        "D1",
        "99",
        0.05,
        (("51", 0.6), ("25", 0.4)),
        (("3", 0.6), ("4", 0.4)),
        (6, 12),
        5.0e5,
        0.9,
        False,
    ),
    # individual-business owners (resident ID)
    Product(
        1,
        "D1",
        "41",
        0.37,
        (("11", 0.6), ("12", 0.3), ("51", 0.1)),
        (("2", 0.35), ("3", 0.35), ("4", 0.2), ("5", 0.1)),
        (12, 12, 24, 36),
        3.0e5,
        0.9,
        True,
    ),
    Product(1, "R2", "81", 0.30, (("11", 1.0),), (("4", 1.0),), (0,), 3.0e4, 0.8, False),
    Product(1, "D1", "11", 0.08, (("11", 1.0),), (("2", 1.0),), (120, 240, 360), 8.0e5, 0.6, True),
    Product(
        1, "D1", "21", 0.07, (("23", 0.6), ("11", 0.4)), (("2", 1.0),), (36,), 1.5e5, 0.5, True
    ),
    Product(
        1, "D1", "91", 0.10, (("24", 0.5), ("11", 0.5)), (("4", 1.0),), (12, 24), 5.0e4, 0.7, True
    ),
    Product(1, "D1", "42", 0.03, (("11", 1.0),), (("3", 1.0),), (24,), 2.0e5, 0.4, True),
    Product(
        1,
        "R1",
        "41",
        0.05,
        (("11", 0.7), ("12", 0.3)),
        (("2", 0.6), ("3", 0.4)),
        (12,),
        5.0e5,
        0.8,
        False,
    ),
    # farmers (resident ID)
    Product(
        2,
        "D1",
        "51",
        0.45,
        (("11", 0.6), ("12", 0.4)),
        (("7", 0.4), ("3", 0.3), ("4", 0.2), ("2", 0.1)),
        (12,),
        1.0e5,
        0.7,
        True,
    ),
    Product(
        2,
        "D1",
        "52",
        0.35,
        (("11", 0.6), ("12", 0.4)),
        (("7", 0.3), ("3", 0.4), ("2", 0.3)),
        (12, 24),
        2.0e5,
        0.8,
        True,
    ),
    Product(2, "R2", "81", 0.20, (("11", 1.0),), (("4", 1.0),), (0,), 2.0e4, 0.6, False),
    # cooperatives (USCC)
    Product(
        3,
        "D1",
        "E1",
        0.8,
        (("11", 0.5), ("12", 0.5)),
        (("3", 0.6), ("2", 0.4)),
        (12,),
        5.0e5,
        0.8,
        False,
    ),
    Product(
        3, "D1", "99", 0.2, (("12", 1.0),), (("7", 0.5), ("3", 0.5)), (12, 24), 3.0e5, 0.7, True
    ),
)

#: Institutions per institution type (PD01AD02): how many synthetic ones exist.
INSTITUTIONS_PER_TYPE = {
    "11": 25,
    "12": 10,
    "22": 5,
    "23": 3,
    "24": 3,
    "25": 3,
    "51": 15,
    "53": 5,
    "99": 5,
}
#: Institution types a query record may carry (catalog pboc_inquiries.institution_type).
INQUIRY_INSTITUTION_TYPES = ("11", "12", "22", "24", "51", "53", "99")


def institution_ids(kind: str) -> tuple[str, ...]:
    """Synthetic institution codes of one type, e.g. ``11330300A007``.

    Examples
    --------
    >>> institution_ids("53")[:2]
    ('53330300A001', '53330300A002')
    """
    return tuple(f"{kind}330300A{i:03d}" for i in range(1, INSTITUTIONS_PER_TYPE[kind] + 1))
