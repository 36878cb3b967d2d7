"""Natural persons: resident IDs, names, birth dates and farmer households.

Every legal representative is a person of their own; agricultural entities bring their
farmer households (spouse, children, parents); a few spare persons represent nobody. Birth
dates lie in 1950–2002 (the catalog refuses dates before 1949-10-01). A resident ID's area
is the code in force where the person got the ID (so 洞头 IDs carry 330322 and 龙港 ones
330327), the sequence is unique within area, birth date and sex, odd for men.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from features.identifiers import AreaCodeHistory, make_resident_ids
from features.synthetic import names
from features.synthetic.draws import choice, join

Strings = npt.NDArray[np.str_]
Days = npt.NDArray[np.datetime64]

BIRTH_MIN = np.datetime64("1950-01-01")  # the catalog refuses dates before 1949-10-01
BIRTH_MAX = np.datetime64("2002-12-31")


def issuing_codes(history: AreaCodeHistory, district: Strings, town: Strings, on: Days) -> Strings:
    """Area code in force on ``on`` for a place that is ``district`` (+ ``town``) today.

    Examples
    --------
    >>> from features.identifiers import load_area_codes
    >>> history = load_area_codes()
    >>> issuing_codes(history, np.array(["330383", "330383", "330305"]),
    ...               np.array(["龙港镇", "龙港镇", "北岙街道"]),
    ...               np.array(["2018-05-01", "2020-05-01", "2010-01-01"], dtype="datetime64[D]")
    ...               ).tolist()
    ['330327', '330383', '330322']
    """
    edges = sorted(
        {r.valid_from for r in history.records}
        | {r.valid_to for r in history.records if r.valid_to is not None}
        | {s.effective for s in history.splits}
    )
    representatives = [edges[0] - dt.timedelta(days=1), *edges]
    pair = join(district, "|", town)
    unique_pairs, inverse = np.unique(pair, return_inverse=True)
    table = np.empty((unique_pairs.size, len(representatives)), dtype="<U6")
    for p, key in enumerate(unique_pairs.tolist()):
        code, place = key.split("|", 1)
        for i, day in enumerate(representatives):
            candidates = history.district_codes(on=day)
            if code in candidates:
                table[p, i] = code
                continue
            moved = [c for c in candidates if history.current_district(c, town=place) == code]
            table[p, i] = moved[0] if moved else code
    interval = np.searchsorted(np.array(edges, dtype="datetime64[D]"), on, side="right")
    result: Strings = table[inverse.ravel(), interval]
    return result


def into_birth_range(rng: np.random.Generator, births: Days) -> Days:
    """Move births outside 1950-2002 to a random day within three years of the bound."""
    spread = rng.integers(0, 3 * 365, births.size).astype("timedelta64[D]")
    result: Days = np.where(births < BIRTH_MIN, BIRTH_MIN + spread, births)
    result = np.where(result > BIRTH_MAX, BIRTH_MAX - spread, result)
    return result


def person_names(rng: np.random.Generator, male: npt.NDArray[np.bool_]) -> Strings:
    n = male.size
    surname = np.array(names.SURNAMES)[choice(rng, n, names.SURNAME_WEIGHTS)]
    male_pool, female_pool = np.array(names.GIVEN_MALE), np.array(names.GIVEN_FEMALE)
    first = np.where(
        male,
        male_pool[rng.integers(0, male_pool.size, n)],
        female_pool[rng.integers(0, female_pool.size, n)],
    )
    second = np.where(
        male,
        male_pool[rng.integers(0, male_pool.size, n)],
        female_pool[rng.integers(0, female_pool.size, n)],
    )
    second = np.where(rng.random(n) < 0.7, second, "")
    return join(surname, first, second)


def resident_ids(
    rng: np.random.Generator,
    history: AreaCodeHistory,
    district: Strings,
    town: Strings,
    birth: Days,
    male: npt.NDArray[np.bool_],
) -> Strings:
    """Unique valid IDs; the area is the code in force when the person got the ID."""
    issued = np.maximum(birth + np.timedelta64(16 * 365, "D"), np.datetime64("1985-01-01"))
    area = issuing_codes(history, district, town, issued)
    # Sequence: 2 · (7 · rank + r) + male, unique within (area, birth date, sex); ≤ 993.
    key = join(area, np.datetime_as_string(birth), np.where(male, "1", "0"))
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(key.size), 0))
    rank = np.empty(key.size, dtype=np.int64)
    rank[order] = np.arange(key.size) - group_start
    if rank.max(initial=0) > 70:
        raise ValueError("too many persons share one birth date and area for unique IDs")
    sequence = 2 * (7 * rank + rng.integers(0, 7, key.size)) + male.astype(np.int64)
    return make_resident_ids(area, birth, sequence)


def other_persons(
    rng: np.random.Generator,
    farm: npt.NDArray[np.int64],
    rep_birth: Days,
    rep_male: npt.NDArray[np.bool_],
    spares: int,
) -> tuple[npt.NDArray[np.int64], Days, npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Farmer-household members (1-4 per agricultural entity: spouse, child, parent) and
    spare persons: (home entity, birth date, male, household number) of each."""
    n = rep_birth.size
    members = np.minimum(1 + rng.poisson(1.0, farm.size), 4)
    head = np.repeat(farm, members)
    relation = rng.choice(3, size=head.size, p=[0.4, 0.4, 0.2])
    offset_years = np.select(
        [relation == 0, relation == 1],
        [rng.normal(0, 3, head.size), rng.uniform(22, 32, head.size)],
        -rng.uniform(24, 32, head.size),
    )
    offset = (offset_years * 365.25).astype(np.int64).astype("timedelta64[D]")
    member_birth = into_birth_range(rng, rep_birth[head] + offset)
    member_male = np.where(relation == 0, ~rep_male[head], rng.random(head.size) < 0.5)
    spare_birth = BIRTH_MIN + rng.integers(0, 52 * 365, spares).astype("timedelta64[D]")
    return (
        np.concatenate([head, rng.integers(0, n, spares)]),
        np.concatenate([member_birth, np.minimum(spare_birth, BIRTH_MAX)]),
        np.concatenate([member_male, rng.random(spares) < 0.5]),
        np.concatenate([head, n + np.arange(spares)]),
    )
