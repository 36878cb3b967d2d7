"""From view rows and calibrated PDs to the decisions each user needs: `decide`.

One call gives, for every row of the three-in-one view (三位一体) and in the same order:

- the **score** and **grade** of the PD (the master scale, `scoring.scale`);
- the **信用分类监管 class** with its sampling ratio and inspections a year (regulators);
- the **联合奖惩 overrides** applied, with their reasons;
- the **信易贷 pre-approval** (banks): approve, refer or decline, a suggested limit, a rate
  discount and the reasons, with the 双查询 double check against a PBOC report the bank holds;
- **信易批** (容缺受理) and **信易租** (deposit-free lease) eligibility (the platform).

Rules (every constant is in the policy, ``scoring/policy.yaml``):

1. **Punishment beats the PD.** An entity with any ``overrides.punish_flags`` set (严重失信主体
   名单, 失信被执行人) is put in ``punish_class`` (D) — or kept in a worse class, never moved
   to a better one — and gets no incentive: decline, no limit, no discount, no 信易批, no
   信易租, whatever its PD. Its score and grade stay those of the PD: they measure credit
   risk and are what the model said, while the class and the decision carry the override.
2. **Red lists reward** (``reward_flags``): an extra discount on an approved or referred
   信易贷, and 信易批 and 信易租 whatever the grade — but never for a punished entity and never
   in the punish class (D) or worse; a withheld reward is reported (``reward_withheld``).
3. **信易贷 from the PD**: approve up to ``approve_max_pd``, refer up to ``refer_max_pd``,
   decline above (a PD equal to a cut-off is on the better side, as with grade bands).
4. **双查询**: a PBOC report (`PbocReport`) can only make the decision worse: a 24-month
   status of ``refer_on_pboc_status`` (61+ days late) or a ``pboc_refer_symbols`` symbol
   (G) → refer at best; ``decline_on_pboc_status`` (91+ days) or a ``pboc_decline_symbols``
   symbol (B 呆账, D 担保人代还, Z 以资抵债) → decline. Without a report the decision rests on
   the view alone (reason ``pboc_absent``).
5. **Limit** (yuan): approved — the target group's ``max_limit`` times a share that is 1 up to
   ``approve_full_limit_pd`` and falls linearly to ``min_limit_share`` at ``approve_max_pd``;
   referred — ``min_limit_share`` of the group's maximum, an indicative floor for the
   underwriter (so a PBOC referral lowers the limit, and the limit never rises with the PD);
   declined — 0. Rounded down to ``limit_step``.
6. **Rate discount** (basis points, 0 when declined): the grade's discount + the group's
   discount (+ the red-list reward).
7. **Target group**: the first of `scoring.policy.TARGET_GROUPS` whose flags or entity types
   match (三农, young entrepreneur, individual business, SME), else ``other``.

Columns of the result (index: the frame's):

======================  ========  ===========================================================
column                  dtype     meaning
======================  ========  ===========================================================
score                   int64     score of the PD, rounded
grade                   category  master-scale grade of the PD (categories best first)
supervision_class       category  信用分类监管 class A–D after the overrides
sampling_ratio          float64   the class's 双随机 sampling ratio
inspections_per_year    float64   the class's inspections a year
overrides               object    tuple of the override codes applied (``punish:<flag>``,
                                  ``reward:<flag>``)
override_reasons        object    tuple of their Chinese texts, in the same order
target_group            category  信易贷 target group (`TARGET_GROUPS`)
decision                category  approve / refer / decline
limit                   int64     suggested 信易贷 limit, yuan
rate_discount_bp        float64   rate discount on the bank's listed rate, basis points
decision_reasons        object    tuple of reason codes, the deciding ones first
                                  (`reason_text` gives their zh/en texts)
xinyipi                 bool      信易批 容缺受理 eligible
xinyizu                 bool      信易租 deposit-free lease eligible
======================  ========  ===========================================================

The tuples are shared between rows with the same codes (they are immutable), so a batch of a
million rows builds only a few dozen of them. ``result.attrs["policy_version"]`` records the
policy version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property, lru_cache
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from scoring.errors import ScoringError
from scoring.policy import (
    REPAYMENT_STATUS_SYMBOLS,
    TARGET_GROUPS,
    PreApproval,
    ReasonText,
    ScoringPolicy,
    TargetGroup,
)
from scoring.scale import check_pd, grade_index, score_from_pd

logger = logging.getLogger(__name__)

#: decisions, best first (their index is the decision's level)
DECISIONS: Final = ("approve", "refer", "decline")
APPROVE, REFER, DECLINE = 0, 1, 2
#: what a row's PBOC report shows: none supplied, nothing wrong, a referral, a decline
PBOC_FINDINGS: Final = ("pboc_absent", "pboc_clean", "pboc_refer", "pboc_decline")
_PBOC_LEVEL = np.array([APPROVE, APPROVE, REFER, DECLINE], dtype=np.int8)
_PD_CODES = ("pd_approve", "pd_refer", "pd_decline")
#: months in a PBOC repayment-status string (PD01D, the 24-month history)
HISTORY_MONTHS: Final = 24
#: columns of `decide`'s result, in order
COLUMNS: Final = ("score", "grade", "supervision_class", "sampling_ratio",
                  "inspections_per_year", "overrides", "override_reasons", "target_group",
                  "decision", "limit", "rate_discount_bp", "decision_reasons", "xinyipi",
                  "xinyizu")  # fmt: skip
#: tolerance when flooring limits to the step: 0.3 × 300000 is 89999.99… in floats
_FLOOR_TOLERANCE = 1e-9
#: frames up to this many rows (the API's single entity) match strings with numpy on the
#: objects (≈4 µs a call); larger ones with pandas' hash tables (≈40 µs a call, but 24 ms
#: instead of 130 ms for a million rows)
_SMALL_FRAME = 256
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class PbocAccount(BaseModel):
    """One credit account of a PBOC report (PD01) and its 24-month repayment history.

    ``status_24m`` is the PD01D string, one symbol a month (DOMAIN.md §3.5): ``N`` paid,
    ``1``–``7`` 30-day buckets of days late, ``*`` nothing due, ``#`` unknown, ``/`` not open,
    ``C`` settled, ``G`` ended otherwise, ``D`` paid by the guarantor, ``Z`` repaid with assets,
    ``B`` bad debt, ``M`` paid before month end, ``A`` billing day moved. Oldest month first;
    every month counts, so the order does not change a decision.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str = Field(min_length=1)
    status_24m: str

    @field_validator("status_24m")
    @classmethod
    def _symbols(cls, value: str) -> str:
        if len(value) != HISTORY_MONTHS:
            raise PydanticCustomError(
                "length",
                "a 24-month status string has {months} symbols, one a month; got {got}",
                {"months": HISTORY_MONTHS, "got": len(value)},
            )
        bad = sorted(set(value) - REPAYMENT_STATUS_SYMBOLS)
        if bad:
            raise PydanticCustomError(
                "symbol",
                "not repayment-status symbols (N 1-7 * # / C G D Z B M A): {bad}",
                {"bad": "".join(bad)},
            )
        return value


class PbocReport(BaseModel):
    """A PBOC credit report the bank holds (人行征信, queried with the entity's consent).

    Only what the 双查询 needs: the accounts and their 24-month repayment histories. A
    report without accounts (白户) shows nothing wrong. Build one from untrusted input with
    `PbocReport.parse`, which names the field and the rule that failed.

    Examples
    --------
    >>> report = PbocReport.parse({"accounts": [{"account_id": "1", "status_24m": "N" * 24}]})
    >>> report.worst_bucket, sorted(report.symbols)
    (0, ['N'])
    >>> PbocReport.parse({"accounts": [{"account_id": "1", "status_24m": "NNX"}]})
    Traceback (most recent call last):
    ...
    scoring.errors.ScoringError: accounts.0.status_24m: length: a 24-month status string has 24 symbols, one a month; got 3
    """  # noqa: E501 - a doctest's traceback line cannot wrap

    model_config = ConfigDict(frozen=True, extra="forbid")

    accounts: tuple[PbocAccount, ...]

    @field_validator("accounts")
    @classmethod
    def _unique(cls, value: tuple[PbocAccount, ...]) -> tuple[PbocAccount, ...]:
        ids = [a.account_id for a in value]
        if len(set(ids)) != len(ids):
            raise PydanticCustomError("unique", "an account_id is listed twice")
        return value

    @classmethod
    def parse(cls, raw: Any) -> PbocReport:
        """Validate a report; `ScoringError` names the first broken field and its rule."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "report"
            rule = "unknown_key" if first["type"] == "extra_forbidden" else first["type"]
            raise ScoringError(field, rule, first["msg"]) from None

    @cached_property
    def worst_bucket(self) -> int:
        """Worst days-late bucket (1–7) in the 24 months, 0 if never late."""
        digits = [int(s) for a in self.accounts for s in a.status_24m if s.isdigit()]
        return max(digits, default=0)

    @cached_property
    def symbols(self) -> frozenset[str]:
        """Every symbol that appears in the report's histories."""
        return frozenset(s for a in self.accounts for s in a.status_24m)

    def finding(self, rules: PreApproval) -> int:
        """Index in `PBOC_FINDINGS` of what the report shows under ``rules`` (never 0)."""
        if self.worst_bucket >= rules.decline_on_pboc_status or self.symbols & set(
            rules.pboc_decline_symbols
        ):
            return PBOC_FINDINGS.index("pboc_decline")
        if self.worst_bucket >= rules.refer_on_pboc_status or self.symbols & set(
            rules.pboc_refer_symbols
        ):
            return PBOC_FINDINGS.index("pboc_refer")
        return PBOC_FINDINGS.index("pboc_clean")


def reason_text(code: str, policy: ScoringPolicy) -> ReasonText:
    """The zh/en text of a decision or override reason code.

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> reason_text("pd_decline", load_policy()).en
    'PD above the referral cut-off'
    """
    try:
        return policy.decision_reasons[code]
    except KeyError:
        raise ScoringError("reason_code", "known", f"{code!r} is no reason code") from None


Columns = Mapping[str, npt.NDArray[Any]]


def _require(columns: Columns, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ScoringError(missing[0], "required_column", f"the view has no column(s) {missing}")


def _flag(columns: Columns, column: str) -> BoolArray:
    """A 0/1 column of the view as booleans (missing is 0, the flags' fill value)."""
    values = columns[column]
    if values.dtype.kind not in "biuf":  # objects, nullable integers: the slower way
        try:
            values = np.array([_flag_value(v) for v in values], dtype=np.float64)
        except (TypeError, ValueError):
            raise ScoringError(column, "flag", "a flag must be 0/1 or boolean") from None
    out: BoolArray = values > 0  # NaN > 0 is False
    return out


def _flag_value(value: Any) -> float:
    if value is None or value is pandas.NA:
        return 0.0
    return float(value)


@lru_cache(maxsize=64)
def _dtype(categories: tuple[str, ...]) -> pandas.CategoricalDtype:
    """One categorical dtype per list of names (validating categories costs 0.1 ms a time)."""
    return pandas.CategoricalDtype(categories)


def _categorical(codes: npt.NDArray[np.integer[Any]], names: Sequence[str]) -> pandas.Categorical:
    return pandas.Categorical.from_codes(codes, dtype=_dtype(tuple(names)))


def _mask(columns: Columns, n: int, flags: Sequence[str]) -> IntArray:
    """Bit ``len(flags) - 1 - i`` set where ``flags[i]`` is set."""
    mask = np.zeros(n, dtype=np.int64)
    for flag in flags:
        mask = (mask << 1) | _flag(columns, flag)
    return mask


def _pboc_findings(
    columns: Columns, n: int, reports: Mapping[str, PbocReport] | None, rules: PreApproval
) -> npt.NDArray[np.int8]:
    findings = np.zeros(n, dtype=np.int8)
    if not reports:
        return findings
    for key, report in reports.items():
        if not isinstance(report, PbocReport):
            raise ScoringError(f"reports.{key}", "type", "reports must be PbocReport objects")
    if n <= _SMALL_FRAME:
        position = {key: i for i, key in enumerate(reports)}
        row_of = np.array([position.get(u, -1) for u in columns["uscc"]], dtype=np.intp)
    else:
        row_of = pandas.Index(list(reports)).get_indexer(columns["uscc"])
    found = row_of >= 0
    by_report = np.array([r.finding(rules) for r in reports.values()], dtype=np.int8)
    findings[found] = by_report[row_of[found]]
    if not found.any():
        logger.debug("none of %d PBOC reports matches a row", len(reports))
    return findings


def _isin(column: npt.NDArray[Any], values: Sequence[str]) -> BoolArray:
    """Where ``column`` is one of ``values`` (see `_SMALL_FRAME`)."""
    if len(column) <= _SMALL_FRAME:
        small: BoolArray = np.isin(column.astype(object), list(values))
        return small
    large: BoolArray = pandas.Index(column).isin(values)
    return large


def _target_groups(columns: Columns, n: int, rules: PreApproval) -> npt.NDArray[np.int8]:
    """Index in `TARGET_GROUPS` of each row's group: the first that matches wins."""
    other = TARGET_GROUPS.index("other")
    groups = np.full(n, other, dtype=np.int8)
    configured: dict[str, TargetGroup] = {g.group: g for g in rules.target_groups}
    for index in reversed(range(other)):  # later groups first, so that earlier ones win
        group = configured.get(TARGET_GROUPS[index])
        if group is None:
            continue
        match = np.zeros(n, dtype=np.bool_)
        for flag in group.flags:
            match |= _flag(columns, flag)
        if group.entity_types:
            match |= _isin(columns["entity_type"], group.entity_types)
        groups[match] = index
    return groups


def _limits(
    pd: npt.NDArray[np.float64],
    level: npt.NDArray[np.int8],
    group: npt.NDArray[np.int8],
    rules: PreApproval,
) -> IntArray:
    span = rules.approve_max_pd - rules.approve_full_limit_pd
    floor = rules.min_limit_share
    if span > 0:
        fall = np.clip((pd - rules.approve_full_limit_pd) / span, 0.0, 1.0)
        share = 1.0 - (1.0 - floor) * fall
    else:
        share = np.where(pd <= rules.approve_full_limit_pd, 1.0, floor)
    share = np.where(level == REFER, floor, share)
    maximum = np.array([rules.group(name).max_limit for name in TARGET_GROUPS])[group]
    steps = np.floor(maximum * share / rules.limit_step + _FLOOR_TOLERANCE)
    limit: IntArray = np.where(level == DECLINE, 0.0, steps * rules.limit_step).astype(np.int64)
    return limit


def _reason_tables(
    keys: IntArray, policy: ScoringPolicy
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """Overrides, their texts and decision reasons for every row, from the row keys.

    A key packs (pd level, PBOC finding, rewards withheld, punish mask, reward mask); only
    the keys present are decoded, and rows share the tuples of their key.
    """
    punish, reward = policy.overrides.punish_flags, policy.overrides.reward_flags
    texts = policy.decision_reasons
    present = np.flatnonzero(np.bincount(keys))
    size = int(present[-1]) + 1 if present.size else 0
    overrides = np.empty(size, dtype=object)
    override_texts = np.empty(size, dtype=object)
    reasons = np.empty(size, dtype=object)
    for key in present.tolist():
        reward_bits = key & ((1 << len(reward)) - 1)
        punish_bits = (key >> len(reward)) & ((1 << len(punish)) - 1)
        rest = key >> (len(reward) + len(punish))
        withheld, finding, pd_level = rest & 1, (rest >> 1) % 4, (rest >> 1) // 4
        punished = [f"punish:{f}" for i, f in enumerate(punish)
                    if punish_bits >> (len(punish) - 1 - i) & 1]  # fmt: skip
        rewards = [f"reward:{f}" for i, f in enumerate(reward)
                   if reward_bits >> (len(reward) - 1 - i) & 1]  # fmt: skip
        applied = tuple(punished) + (() if withheld else tuple(rewards))
        overrides[key] = applied
        override_texts[key] = tuple(texts[code].zh for code in applied)
        checks = [(pd_level, _PD_CODES[pd_level]),
                  (int(_PBOC_LEVEL[finding]), PBOC_FINDINGS[finding])]  # fmt: skip
        checks.sort(key=lambda check: -check[0])  # stable: the PD first on a tie
        level = DECLINE if punished else max(check[0] for check in checks)
        extra: tuple[str, ...] = ()
        if rewards and withheld:
            extra = ("reward_withheld",)
        elif rewards and level != DECLINE:
            extra = tuple(rewards)
        reasons[key] = (*punished, *(code for _, code in checks), *extra)
    return overrides[keys], override_texts[keys], reasons[keys]


def needed_columns(policy: ScoringPolicy, *, reports: bool = False) -> tuple[str, ...]:
    """The view columns `decide` reads under ``policy`` (``uscc`` too with reports)."""
    rules, over = policy.pre_approval, policy.overrides
    needed = [*over.punish_flags, *over.reward_flags]
    needed += [f for g in rules.target_groups for f in g.flags]
    if any(g.entity_types for g in rules.target_groups):
        needed.append("entity_type")
    if reports:
        needed.append("uscc")
    return tuple(dict.fromkeys(needed))


def categories(policy: ScoringPolicy) -> dict[str, tuple[str, ...]]:
    """The names of the coded columns of `decide_arrays` (code ``i`` is ``names[i]``)."""
    return {
        "grade": policy.grade_names,
        "supervision_class": tuple(c.name for c in policy.classes),
        "target_group": tuple(TARGET_GROUPS),
        "decision": tuple(DECISIONS),
    }


def decide(
    frame: pandas.DataFrame,
    pd: npt.ArrayLike,
    policy: ScoringPolicy,
    *,
    reports: Mapping[str, PbocReport] | None = None,
) -> pandas.DataFrame:
    """Score, grade, supervision class, overrides, 信易贷, 信易批 and 信易租 of view rows.

    Parameters
    ----------
    frame
        Rows of the three-in-one view. Needs the policy's override flags, ``entity_type``
        and the target groups' flags; ``uscc`` too when ``reports`` are given.
    pd
        Calibrated 12-month PD of each row, in the frame's order.
    policy
        The scoring policy (`scoring.policy.load_policy`).
    reports
        PBOC reports the bank holds, by ``uscc`` (双查询). Rows without one are decided on the
        view alone; reports of entities not in the frame are ignored (one mapping can serve
        every chunk of a batch).

    Returns
    -------
    pandas.DataFrame
        The columns of `COLUMNS` (see the module docstring), indexed like ``frame``.

    Examples
    --------
    >>> import pandas
    >>> from scoring.policy import load_policy
    >>> frame = pandas.DataFrame({
    ...     "entity_type": ["个体工商户", "企业"], "is_agricultural": [0, 0],
    ...     "is_young_entrepreneur": [0, 0], "is_small_micro": [0, 1],
    ...     "gov_blacklisted": [0, 0], "gov_dishonest_debtor": [0, 1], "gov_red_listed": [0, 1]})
    >>> out = decide(frame, [0.004, 0.0005], load_policy())
    >>> out[["grade", "supervision_class", "decision", "limit", "xinyipi"]]
      grade supervision_class decision   limit  xinyipi
    0    AA                 A  approve  300000     True
    1   AAA                 D  decline       0    False
    >>> out.loc[1, "overrides"], out.loc[1, "decision_reasons"]
    (('punish:gov_dishonest_debtor',), ('punish:gov_dishonest_debtor', 'pd_approve', 'pboc_absent', 'reward_withheld'))
    """  # noqa: E501 - a doctest's output line cannot wrap
    needed = needed_columns(policy, reports=bool(reports))
    columns = {c: frame[c].to_numpy() for c in needed if c in frame.columns}
    decided = decide_arrays(columns, pd, policy, reports=reports)  # names what is missing
    for name, names in categories(policy).items():
        decided[name] = _categorical(decided[name], names)
    out = pandas.DataFrame(decided, index=frame.index)
    out.attrs["policy_version"] = policy.version
    return out


def decide_arrays(
    columns: Columns,
    pd: npt.ArrayLike,
    policy: ScoringPolicy,
    *,
    reports: Mapping[str, PbocReport] | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """`decide` on plain arrays: the view's columns by name, one value per row.

    The same rules and values as `decide`, without pandas (one served entity is a row of
    length-1 arrays); the columns of `categories` come back as integer codes.
    """

    needed = needed_columns(policy, reports=bool(reports))
    _require(columns, needed)
    n = len(columns[needed[0]]) if needed else 0
    p = check_pd(pd)
    if p.ndim != 1 or len(p) != n:
        raise ScoringError("pd", "length", f"{p.shape} PDs for {n} rows of the view")
    rules, over = policy.pre_approval, policy.overrides

    grade = grade_index(p, policy)
    class_names: list[str] = [c.name for c in policy.classes]
    class_of_grade = np.array([class_names.index(policy.class_of_grade[g])
                               for g in policy.grade_names])  # fmt: skip
    punish_class = class_names.index(over.punish_class)
    punish_mask = _mask(columns, n, over.punish_flags)
    reward_mask = _mask(columns, n, over.reward_flags)
    punished = punish_mask > 0
    klass = np.maximum(class_of_grade[grade], np.where(punished, punish_class, 0))
    withheld = punished | (klass >= punish_class)
    rewarded = (reward_mask > 0) & ~withheld

    pd_level = (p > rules.approve_max_pd).astype(np.int8) + (p > rules.refer_max_pd)
    finding = _pboc_findings(columns, n, reports, rules)
    level = np.maximum(pd_level, _PBOC_LEVEL[finding])
    level[punished] = DECLINE
    group = _target_groups(columns, n, rules)
    limit = _limits(p, level, group, rules)
    grade_discount = np.array([rules.grade_rate_discount_bp[g] for g in policy.grade_names])
    group_discount = np.array([rules.group(name).rate_discount_bp for name in TARGET_GROUPS])
    discount = grade_discount[grade] + group_discount[group]
    discount = discount + np.where(rewarded, over.reward_rate_discount_bp, 0.0)
    discount = np.where(level == DECLINE, 0.0, discount)
    xinyipi = ~withheld & ((grade < len(policy.xinyipi.grades)) | (rewarded & over.reward_xinyipi))
    xinyizu = ~withheld & ((grade < len(policy.xinyizu.grades)) | (rewarded & over.reward_xinyizu))

    keys = (((pd_level.astype(np.int64) * 4 + finding) * 2 + withheld)
            << (len(over.punish_flags) + len(over.reward_flags)))  # fmt: skip
    keys |= (punish_mask << len(over.reward_flags)) | reward_mask
    overrides, override_reasons, decision_reasons = _reason_tables(keys, policy)
    ratio = np.array([c.sampling_ratio for c in policy.classes])
    per_year = np.array([c.inspections_per_year for c in policy.classes])
    return {
        "score": np.rint(score_from_pd(p, policy.score)).astype(np.int64),
        "grade": grade,
        "supervision_class": klass,
        "sampling_ratio": ratio[klass],
        "inspections_per_year": per_year[klass],
        "overrides": overrides,
        "override_reasons": override_reasons,
        "target_group": group,
        "decision": level,
        "limit": limit,
        "rate_discount_bp": discount,
        "decision_reasons": decision_reasons,
        "xinyipi": xinyipi,
        "xinyizu": xinyizu,
    }


__all__ = [
    "COLUMNS",
    "DECISIONS",
    "HISTORY_MONTHS",
    "PBOC_FINDINGS",
    "PbocAccount",
    "PbocReport",
    "categories",
    "decide",
    "decide_arrays",
    "needed_columns",
    "reason_text",
]
