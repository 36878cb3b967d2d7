"""The market-entity register (市场主体登记) and the natural persons behind it.

Shape (DOMAIN.md §2): about 27% enterprises (企业), 72% individual businesses (个体工商户)
and 1% farmers' cooperatives (农民专业合作社, possible only since the 2007 law). Registration
dates run from 1995 to the last simulated month, younger entities more numerous;
deregistration is a constant hazard of 2–4% a year by type. Capital and employees are
log-normal by type. Every entity has one legal representative (or owner), a person of its
own; agricultural entities also bring their farmer households. Public obligations: most
enterprises and cooperatives with staff, and a fifth of the individual businesses with three
or more, are registered employers for social insurance (``insured``); every enterprise and
cooperative and a tenth of the individual businesses are taxed on their books
(``keeps_books``, graded for tax credit).

USCC area part: the registering authority's code in force on the registration day, so 龙港
entities registered before 2019-08-16 carry 330327 and 洞头 entities registered before the
2015 change carry 330322 (灵昆 ones 330303), while ``district`` holds today's code. Organisation
bodies are 8 digits for entities registered before the USCC reform (2015-10-01) and "MA" + 6
symbols after it.

Assumptions (not published, see ``names``): per-district shares; the industry mix below
(manufacturing C and wholesale/retail F dominate; individual businesses mostly F, H, O);
"small/micro" = an enterprise with fewer than 300 employees and under ¥50m capital.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.identifiers import load_area_codes, make_usccs
from features.synthetic import names
from features.synthetic.config import REGISTRY_START, GeneratorConfig
from features.synthetic.draws import choice, join, pick, pick_by_group
from features.synthetic.people import (
    into_birth_range,
    issuing_codes,
    other_persons,
    person_names,
    resident_ids,
)
from features.synthetic.schema import flat, make_table
from features.synthetic.timeline import stream

Strings = npt.NDArray[np.str_]
Days = npt.NDArray[np.datetime64]

ENTITY_TYPES = ("企业", "个体工商户", "农民专业合作社")
ENTERPRISE, INDIVIDUAL, COOPERATIVE = 0, 1, 2
TYPE_SHARES = (0.27, 0.72, 0.01)
USCC_KINDS = ("1", "2", "3")
DEREGISTRATION_PER_YEAR = (0.025, 0.035, 0.02)
INDUSTRIES = tuple("ABCDEFGHIJKLMNOPQRST")
#: Section weights by entity type (assumption; S and T are not market entities).
INDUSTRY_WEIGHTS: tuple[tuple[float, ...], ...] = (
    # A    B    C     D    E    F     G    H    I    J    K    L    M    N    O    P    Q    R  S  T
    (
        2.0,
        0.2,
        30.0,
        0.5,
        6.0,
        28.0,
        3.0,
        2.0,
        4.0,
        0.8,
        2.0,
        9.0,
        5.0,
        0.5,
        1.5,
        0.5,
        0.3,
        1.0,
        0,
        0,
    ),
    (
        3.0,
        0.0,
        10.0,
        0.0,
        1.0,
        50.0,
        5.0,
        12.0,
        1.0,
        0.0,
        0.0,
        2.0,
        0.5,
        0.0,
        12.0,
        0.5,
        0.5,
        2.5,
        0,
        0,
    ),
    (
        90.0,
        0.0,
        4.0,
        0.0,
        0.0,
        3.0,
        1.0,
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        1.0,
        0.0,
        0.0,
        0.0,
        0,
        0,
    ),
)
USCC_REFORM = np.datetime64("2015-10-01")
COOPERATIVE_LAW = np.datetime64("2007-07-01")
_ALPHABET = np.array(list("0123456789ABCDEFGHJKLMNPQRTUWXY"))
_DIGITS = np.array(list("0123456789"))


@dataclass(frozen=True)
class Registry:
    """Entities (length N) and persons (length P) as numpy arrays.

    ``rep`` maps each entity to its legal representative's row in the person arrays; every
    person represents at most one entity. ``subject_id`` is who borrows and who courts list:
    the USCC of enterprises and cooperatives, the owner's resident ID for individual
    businesses.
    """

    uscc: Strings
    name: Strings
    entity_type: npt.NDArray[np.int8]
    industry: npt.NDArray[np.int8]
    district: npt.NDArray[np.int8]
    town: Strings
    village: Strings  # "" when none
    registered_on: Days
    deregistered_on: Days  # NaT when still registered
    capital: npt.NDArray[np.float64]
    employees: npt.NDArray[np.int64]
    rep: npt.NDArray[np.int64]
    is_small_micro: npt.NDArray[np.bool_]
    is_agricultural: npt.NDArray[np.bool_]
    is_young: npt.NDArray[np.bool_]
    resident_id: Strings
    person_name: Strings
    birth_date: Days
    household_id: Strings
    person_district: npt.NDArray[np.int8]
    person_town: Strings
    person_village: Strings
    spare_persons: npt.NDArray[np.int64]  # persons representing no entity
    insured: npt.NDArray[np.bool_]  # an employer registered for social insurance
    keeps_books: npt.NDArray[np.bool_]  # taxed on its books: graded for tax credit

    @property
    def n(self) -> int:
        """Number of entities."""
        return int(self.uscc.size)

    @property
    def subject_id(self) -> Strings:
        """Borrower / listed subject per entity (USCC, or the owner's resident ID)."""
        owner = self.resident_id[self.rep]
        result: Strings = np.where(self.entity_type == INDIVIDUAL, owner, self.uscc)
        return result

    def entities_table(self) -> pa.Table:
        """The ``entities`` table in catalog order."""
        codes = np.array([d[0] for d in names.DISTRICTS])
        return make_table(
            "entities",
            {
                "uscc": self.uscc,
                "name": self.name,
                "entity_type": np.array(ENTITY_TYPES)[self.entity_type],
                "industry": np.array(INDUSTRIES)[self.industry],
                "district": codes[self.district],
                "town": _nullable(self.town),
                "village": _nullable(self.village),
                "registered_on": self.registered_on,
                "deregistered_on": self.deregistered_on,
                "registered_capital": self.capital,
                "employees": self.employees,
                "legal_rep_id": self.resident_id[self.rep],
                "is_small_micro": self.is_small_micro,
                "is_agricultural": self.is_agricultural,
                "is_young_entrepreneur": self.is_young,
            },
        )

    def persons_table(self) -> pa.Table:
        """The ``persons`` table in catalog order."""
        codes = np.array([d[0] for d in names.DISTRICTS])
        return make_table(
            "persons",
            {
                "resident_id": self.resident_id,
                "name": self.person_name,
                "birth_date": self.birth_date,
                "household_id": self.household_id,
                "district": codes[self.person_district],
                "town": _nullable(self.person_town),
                "village": _nullable(self.person_village),
            },
        )


def _nullable(values: Strings) -> pa.Array:
    return flat(pa.array(values, type=pa.string(), mask=values == ""))


# ------------------------------------------------------------------------ area codes
# ------------------------------------------------------------------------ generation
def _registration_days(
    rng: np.random.Generator, n: int, first: np.datetime64, last: np.datetime64, growth: float
) -> Days:
    """Days in [first, last] with density ∝ exp(growth · years): younger ones more numerous."""
    span = float((last - first).astype(np.int64))
    g = growth / 365.25
    t = np.log1p(rng.random(n) * np.expm1(g * span)) / g
    result: Days = first + np.minimum(t.astype(np.int64), int(span)).astype("timedelta64[D]")
    return result


def _unique_usccs(
    rng: np.random.Generator, kind: Strings, area: Strings, registered: Days, taken: Strings
) -> Strings:
    """Valid USCCs, unique among themselves and not in ``taken``."""
    n = kind.size
    result = np.empty(n, dtype="<U18")
    todo = np.arange(n)
    while todo.size:
        old = registered[todo] < USCC_REFORM
        digits = _DIGITS[rng.integers(0, 10, (todo.size, 8))]
        symbols = _ALPHABET[rng.integers(0, 31, (todo.size, 8))]
        symbols[:, 0], symbols[:, 1] = "M", "A"
        chars = np.where(old[:, None], digits, symbols)
        bodies = np.ascontiguousarray(chars).view("<U8").ravel()
        result[todo] = make_usccs("9", kind[todo], area[todo], bodies)
        _, first_seen = np.unique(result, return_index=True)
        clash = np.ones(n, dtype=bool)
        clash[first_seen] = False
        clash |= np.isin(result, taken)
        todo = np.flatnonzero(clash)
    return result


def _entity_names(
    rng: np.random.Generator,
    kind: npt.NDArray[np.int64],
    industry: npt.NDArray[np.int64],
    district_name: Strings,
) -> Strings:
    n = kind.size
    trade = join(pick(rng, names.TRADE_NAMES, n), pick(rng, names.TRADE_NAMES, n))
    words = pick_by_group(rng, [names.INDUSTRY_WORDS[s] for s in INDUSTRIES], industry)
    shop_pools = [names.SHOP_WORDS.get(s, ("经营部",)) for s in INDUSTRIES]
    shops = pick_by_group(rng, shop_pools, industry)
    suffix = np.array(["有限公司", "股份有限公司", "集团有限公司"])[choice(rng, n, (93, 4, 3))]
    prefix = np.where(rng.random(n) < 0.6, "温州", district_name)
    enterprise = join(prefix, trade, words, suffix)
    individual = join(district_name, trade, shops)
    cooperative = join(district_name, trade, pick(rng, names.COOP_PRODUCTS, n), "专业合作社")
    result: Strings = np.select(
        [kind == ENTERPRISE, kind == INDIVIDUAL], [enterprise, individual], cooperative
    )
    return result


def _villages(rng: np.random.Generator, n: int) -> Strings:
    return join(pick(rng, names.VILLAGE_PREFIXES, n), pick(rng, names.VILLAGE_ROOTS, n), "村")


def _size(
    rng: np.random.Generator, kind: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Registered capital (¥, log-normal by type) and employees."""
    n = kind.size
    sigma = np.array([1.3, 1.0, 0.9])[kind]
    median = np.array([1.0e6, 5.0e4, 1.0e6])[kind]
    capital = np.clip(np.round(median * np.exp(sigma * rng.standard_normal(n)), -3), 1000, 1e11)
    employees = np.select(
        [kind == ENTERPRISE, kind == INDIVIDUAL],
        [np.round(10 * np.exp(1.1 * rng.standard_normal(n))), 1 + rng.poisson(1.2, n)],
        3 + rng.poisson(5, n),
    ).astype(np.int64)
    return capital, employees


def build_registry(config: GeneratorConfig) -> Registry:
    """Generate the entity register and the persons behind it."""
    rng = stream(config.seed, "registry")
    history = load_area_codes()
    n = config.entities
    last = np.datetime64(config.end_month, "M").astype("datetime64[D]")
    last = (last.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1

    kind = choice(rng, n, TYPE_SHARES)
    industry = np.empty(n, dtype=np.int64)
    for k in (ENTERPRISE, INDIVIDUAL, COOPERATIVE):
        rows = np.flatnonzero(kind == k)
        industry[rows] = choice(rng, rows.size, INDUSTRY_WEIGHTS[k])
    district = choice(rng, n, [d[2] for d in names.DISTRICTS])
    town = pick_by_group(rng, [d[3] for d in names.DISTRICTS], district)
    rural = np.strings.endswith(town, "镇") | np.strings.endswith(town, "乡")
    agricultural = (industry == 0) | (kind == COOPERATIVE)
    has_village = rural & (agricultural | (rng.random(n) < 0.35))
    village = np.where(has_village, _villages(rng, n), "")

    registered = _registration_days(rng, n, np.datetime64(REGISTRY_START), last, 0.12)
    coop = kind == COOPERATIVE
    registered[coop] = _registration_days(rng, int(coop.sum()), COOPERATIVE_LAW, last, 0.12)
    hazard = np.array(DEREGISTRATION_PER_YEAR)[kind] / 365.25
    lifetime = rng.exponential(1.0 / hazard).astype(np.int64)
    deregistered = registered + lifetime.astype("timedelta64[D]")
    deregistered = np.where(deregistered <= last, deregistered, np.datetime64("NaT"))

    capital, employees = _size(rng, kind)
    small_micro = (kind == ENTERPRISE) & (employees < 300) & (capital < 5e7)

    codes = np.array([d[0] for d in names.DISTRICTS])
    district_names = np.array([d[1] for d in names.DISTRICTS])
    area = issuing_codes(history, codes[district], town, registered)
    uscc = _unique_usccs(rng, np.array(USCC_KINDS)[kind], area, registered, np.array([], "<U18"))
    entity_name = _entity_names(rng, kind, industry, district_names[district])

    # Spare persons: in the register but representing no entity (used by fault extras).
    spares = max(20, int(np.ceil(n * config.fault_rate * 1.5)) + 20)
    # Legal representatives: age at registration, within birth years 1950-2002.
    age_years = np.clip(rng.normal(np.where(coop, 48.0, 38.0), 9.0), 18.0, 70.0)
    rep_birth = registered - (age_years * 365.25).astype(np.int64).astype("timedelta64[D]")
    rep_birth = into_birth_range(rng, rep_birth)
    young = (registered - rep_birth).astype(np.int64) < 35 * 365.25
    rep_male = rng.random(n) < 0.52

    farm = np.flatnonzero(agricultural & (kind != ENTERPRISE))
    home, p_birth, p_male, household = other_persons(rng, farm, rep_birth, rep_male, spares)
    p_home = np.concatenate([np.arange(n), home])
    p_birth = np.concatenate([rep_birth, p_birth])
    p_male = np.concatenate([rep_male, p_male])
    p_district = district[p_home]
    p_town = town[p_home]
    members = home.size - spares
    p_village = np.concatenate([village, village[home[:members]], np.full(spares, "")])
    household = np.concatenate([np.arange(n), household])
    household_id = join(codes[p_district], np.char.zfill(household.astype(np.str_), 10))
    resident_id = resident_ids(rng, history, codes[p_district], p_town, p_birth, p_male)

    return Registry(
        uscc=uscc,
        name=entity_name,
        entity_type=kind.astype(np.int8),
        industry=industry.astype(np.int8),
        district=district.astype(np.int8),
        town=town,
        village=village.astype(np.str_),
        registered_on=registered,
        deregistered_on=deregistered,
        capital=capital,
        employees=employees,
        rep=np.arange(n, dtype=np.int64),
        is_small_micro=small_micro,
        is_agricultural=agricultural,
        is_young=young,
        resident_id=resident_id,
        person_name=person_names(rng, p_male),
        birth_date=p_birth,
        household_id=household_id,
        person_district=p_district.astype(np.int8),
        person_town=p_town,
        person_village=p_village,
        spare_persons=n + members + np.arange(spares, dtype=np.int64),
        **_obligations(stream(config.seed, "obligations"), kind, employees),
    )


def _obligations(
    rng: np.random.Generator, kind: npt.NDArray[np.int64], employees: npt.NDArray[np.int64]
) -> dict[str, npt.NDArray[np.bool_]]:
    """Who owes social insurance (most enterprises with staff, a fifth of the individual
    businesses with 3 or more) and who is taxed on its books (every enterprise and
    cooperative, a tenth of the individual businesses)."""
    individual = kind == INDIVIDUAL
    u = rng.random((2, kind.size))
    insured = np.where(individual, (employees >= 3) & (u[0] < 0.2), (employees >= 1) & (u[0] < 0.8))
    return {"insured": insured, "keeps_books": ~individual | (u[1] < 0.10)}
