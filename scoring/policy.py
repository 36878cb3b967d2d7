"""The scoring policy: every constant between a calibrated PD and a decision, validated.

`load_policy` reads ``scoring/policy.yaml`` (or another file) into frozen pydantic models.
Loading refuses, with a `PolicyError` naming the field and the rule:

- unknown keys anywhere (a misspelt key must not silently fall back to a default);
- grade bands that do not rise strictly or do not end at a PD of 1 (every PD must fall in
  exactly one band);
- supervision classes that do not take every grade exactly once, in order, or whose
  inspection intensity falls as the risk rises;
- decision cut-offs out of order (approve < refer), PBOC thresholds out of order (refer ≤
  decline) or a symbol both referred and declined, discounts that grow for worse grades,
  eligibility lists that are not the best grades, target groups without criteria (or
  ``other`` with some) or whose smallest limit rounds to nothing, and override or
  target-group flags the view does not have;
- decision reason texts that miss a code the decisions give, or name one they never give.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from scoring.errors import PolicyError

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")
#: 信易贷 target groups, in the order a case is assigned to them (first match wins)
TARGET_GROUPS = ("agricultural", "young_entrepreneur", "individual_business", "small_micro",
                 "other")  # fmt: skip
#: PBOC 24-month repayment-status symbols (DOMAIN.md §3.5): 1–7 are 30-day buckets of days
#: late; the others are states (N 正常, * 无需还款, # 状态未知, / 未开立, C 结清, G 非正常结束,
#: D 担保人代还, Z 以资抵债, B 呆账, M 月底前还款, A 账单日调整)
REPAYMENT_STATUS_SYMBOLS = frozenset("N1234567*#/CGDZBMA")
#: the symbols that are no days-late bucket, which the policy may refer or decline on
StateSymbol = Literal["N", "*", "#", "/", "C", "G", "D", "Z", "B", "M", "A"]
#: codes of the decision reasons (scoring/decisions.py) besides ``punish:<flag>`` and
#: ``reward:<flag>``; each needs a text in the policy's ``decision_reasons``
DECISION_REASON_CODES = ("pd_approve", "pd_refer", "pd_decline", "pboc_absent", "pboc_clean",
                         "pboc_refer", "pboc_decline", "reward_withheld")  # fmt: skip


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScoreScale(_Frozen):
    """Points-to-double-the-odds scaling of a PD to a score."""

    base_score: float
    base_odds: float = Field(gt=0)
    pdo: float = Field(gt=0)
    min_score: float
    max_score: float
    pd_floor: float = Field(gt=0, lt=0.5)

    @model_validator(mode="after")
    def _range(self) -> ScoreScale:
        if not self.min_score < self.base_score < self.max_score:
            raise ValueError("min_score < base_score < max_score is required")
        return self


class GradeBand(_Frozen):
    """A grade of the master scale: PDs above the previous band's ``pd_max`` up to its own."""

    grade: str = Field(min_length=1)
    pd_max: float = Field(gt=0, le=1)
    zh: str = Field(min_length=1)


class SupervisionClass(_Frozen):
    """A 信用分类监管 class: its grades and its inspection intensity."""

    name: Literal["A", "B", "C", "D"] = Field(alias="class")
    grades: tuple[str, ...] = Field(min_length=1)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    sampling_ratio: float = Field(gt=0, le=1)
    inspections_per_year: float = Field(gt=0)


class Overrides(_Frozen):
    """联合奖惩: flags of the view that punish (class D, no incentive) or reward."""

    punish_flags: tuple[str, ...] = Field(min_length=1)
    punish_class: Literal["A", "B", "C", "D"]
    reward_flags: tuple[str, ...]
    reward_rate_discount_bp: float = Field(ge=0)
    reward_xinyipi: bool
    reward_xinyizu: bool


class TargetGroup(_Frozen):
    """A 信易贷 target group: who belongs to it, its maximum limit and its rate discount.

    An entity belongs to the group when any of ``flags`` (0/1 columns of the view) is set or
    its ``entity_type`` is one of ``entity_types``; ``other`` has no criteria.
    """

    group: Literal["individual_business", "agricultural", "young_entrepreneur", "small_micro",
                   "other"]  # fmt: skip
    zh: str = Field(min_length=1)
    flags: tuple[str, ...]
    entity_types: tuple[str, ...]
    max_limit: float = Field(gt=0)
    rate_discount_bp: float = Field(ge=0)

    @model_validator(mode="after")
    def _criteria(self) -> TargetGroup:
        has_criteria = bool(self.flags or self.entity_types)
        if self.group == "other" and has_criteria:
            raise ValueError("the group 'other' takes every entity left: it has no criteria")
        if self.group != "other" and not has_criteria:
            raise ValueError(f"the group {self.group!r} needs flags or entity_types")
        return self


class PreApproval(_Frozen):
    """信易贷 pre-approval cut-offs, limits and discounts."""

    approve_max_pd: float = Field(gt=0, lt=1)
    refer_max_pd: float = Field(gt=0, lt=1)
    approve_full_limit_pd: float = Field(gt=0, lt=1)
    min_limit_share: float = Field(gt=0, le=1)
    limit_step: float = Field(ge=1, multiple_of=1)  # whole yuan
    refer_on_pboc_status: int = Field(ge=1, le=7)
    decline_on_pboc_status: int = Field(ge=1, le=7)
    pboc_refer_symbols: tuple[StateSymbol, ...]
    pboc_decline_symbols: tuple[StateSymbol, ...]
    grade_rate_discount_bp: dict[str, float]
    target_groups: tuple[TargetGroup, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _order(self) -> PreApproval:
        if not self.approve_full_limit_pd <= self.approve_max_pd < self.refer_max_pd:
            raise ValueError("approve_full_limit_pd <= approve_max_pd < refer_max_pd is required")
        names = [g.group for g in self.target_groups]
        if len(set(names)) != len(names):
            raise ValueError(f"a target group is listed twice: {names}")
        if "other" not in names:
            raise ValueError("the group 'other' is required (entities in no target group)")
        if any(v < 0 for v in self.grade_rate_discount_bp.values()):
            raise ValueError("grade_rate_discount_bp: discounts cannot be negative")
        if self.decline_on_pboc_status < self.refer_on_pboc_status:
            raise ValueError("refer_on_pboc_status <= decline_on_pboc_status is required")
        both = set(self.pboc_refer_symbols) & set(self.pboc_decline_symbols)
        if both:
            raise ValueError(f"symbols both referred and declined: {sorted(both)}")
        for g in self.target_groups:
            if g.max_limit * self.min_limit_share < self.limit_step:
                raise ValueError(
                    f"{g.group}: max_limit × min_limit_share is below limit_step "
                    "(an approval would round to no limit)"
                )
        return self

    def group(self, name: str) -> TargetGroup:
        """The target group called ``name``."""
        for group in self.target_groups:
            if group.group == name:
                return group
        return self.group("other")


class Eligibility(_Frozen):
    """Grades eligible for an incentive (信易批, 信易租)."""

    grades: tuple[str, ...] = Field(min_length=1)


class Rural(_Frozen):
    """信用户 / 信用村 / 信用乡镇 thresholds (DOMAIN.md §8)."""

    household_min_grade: str
    village_household_share: float = Field(gt=0, le=1)
    village_no_arrears_share: float = Field(gt=0, le=1)
    village_npl_max: float = Field(gt=0, le=1)
    town_village_share: float = Field(gt=0, le=1)
    town_npl_max: float = Field(gt=0, le=1)
    town_no_arrears_share: float = Field(gt=0, le=1)
    #: a 信用村's NPL ratio may rise by less than this over the year (when last year is known)
    village_npl_increase_max: float = Field(gt=0, le=1)


class Reasons(_Frozen):
    """Reason codes: how many are reported."""

    top: int = Field(ge=1, le=20)


class Remedies(_Frozen):
    """Legal periods of objections (异议) and credit repair (信用修复), with their sources.

    An objection is settled within ``objection_working_days`` Chinese working days, once
    extendable to ``objection_max_working_days`` in all. An administrative penalty may be
    repaired once the longer of its severity's and its domain's minimum publicity (months
    from the decision) has passed, and never when its type is in
    ``repair_excluded_penalty_types``.
    """

    objection_working_days: int = Field(ge=1)
    objection_max_working_days: int = Field(ge=1)
    objection_source: str = Field(min_length=1)
    repair_min_publicity_months: dict[str, int] = Field(min_length=1)
    repair_min_publicity_months_by_domain: dict[str, int]
    repair_excluded_penalty_types: tuple[str, ...]
    repair_source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _periods(self) -> Remedies:
        if self.objection_max_working_days < self.objection_working_days:
            raise ValueError("objection_max_working_days must be at least objection_working_days")
        months = [*self.repair_min_publicity_months.values(),
                  *self.repair_min_publicity_months_by_domain.values()]  # fmt: skip
        if any(m < 0 for m in months):
            raise ValueError("repair minimum publicity periods cannot be negative")
        return self


class Threshold(_Frozen):
    """A monitoring threshold: ``warning`` first, ``alert`` when crossed further."""

    warning: float = Field(ge=0)
    alert: float = Field(ge=0)
    #: "above": values above the threshold are bad (PSI); "below": values below are (p-values)
    bad_when: Literal["above", "below"] = "above"

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        worse = self.alert >= self.warning if self.bad_when == "above" else (
            self.alert <= self.warning)  # fmt: skip
        if not worse:
            raise ValueError(f"alert {self.alert} must lie beyond warning {self.warning} "
                             f"(bad when {self.bad_when})")  # fmt: skip
        return self

    def level(self, value: float) -> Literal["ok", "warning", "alert"]:
        """``ok``, ``warning`` or ``alert`` for a measured value.

        >>> Threshold(warning=0.1, alert=0.25).level(0.3)
        'alert'
        >>> Threshold(warning=0.05, alert=0.01, bad_when="below").level(0.03)
        'warning'
        """
        sign = 1.0 if self.bad_when == "above" else -1.0
        if sign * value > sign * self.alert or value == self.alert:
            return "alert"
        if sign * value > sign * self.warning or value == self.warning:
            return "warning"
        return "ok"


class Monitoring(_Frozen):
    """Thresholds of `wzcredit monitor` (分析预警), with where they come from."""

    score_psi: Threshold
    feature_psi: Threshold
    #: two-sided binomial test of a grade's realised default count against its mean PD
    calibration_p_value: Threshold
    #: grades with fewer entities are shown but not tested
    calibration_min_entities: int = Field(ge=1)
    #: share of entities whose grade moved by more than one notch between two snapshots
    migration_far_share: Threshold
    source: str = Field(min_length=1)


class Fairness(_Frozen):
    """Thresholds of the fairness check of the validation report (`scoring.fairness`)."""

    #: a group approved at less than this ratio of the best-treated group's rate (relative
    #: to what its true risk justifies) is flagged; the four-fifths rule uses the same ratio
    min_ratio: float = Field(gt=0, le=1)
    #: smaller groups are shown but not compared
    min_group_entities: int = Field(ge=1)
    source: str = Field(min_length=1)


class ReasonText(_Frozen):
    """The Chinese and English text of a decision reason code."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class ScoringPolicy(_Frozen):
    """The whole scoring policy (see ``scoring/policy.yaml`` for the meaning of each value)."""

    version: str = Field(min_length=1)
    score: ScoreScale
    grades: tuple[GradeBand, ...] = Field(min_length=2)
    classes: tuple[SupervisionClass, ...] = Field(min_length=1)
    overrides: Overrides
    pre_approval: PreApproval
    xinyipi: Eligibility
    xinyizu: Eligibility
    rural: Rural
    reasons: Reasons
    decision_reasons: dict[str, ReasonText]
    remedies: Remedies
    monitoring: Monitoring
    fairness: Fairness

    @model_validator(mode="after")
    def _consistent(self) -> ScoringPolicy:
        bounds = [band.pd_max for band in self.grades]
        if any(b <= a for a, b in pairwise(bounds)):
            raise ValueError(f"grades: pd_max must rise strictly, got {bounds}")
        if bounds[-1] != 1.0:
            raise ValueError("grades: the last band must end at pd_max 1 (cover every PD)")
        names = self.grade_names
        if len(set(names)) != len(names):
            raise ValueError(f"grades: a grade is named twice: {names}")
        taken = [g for c in self.classes for g in c.grades]
        if taken != list(names):
            raise ValueError(
                f"classes: must take every grade exactly once, best first; got {taken}, "
                f"grades are {list(names)}"
            )
        class_names = [c.name for c in self.classes]
        if class_names != sorted(class_names) or len(set(class_names)) != len(class_names):
            raise ValueError(f"classes: must be listed A, B, C, D in order, got {class_names}")
        for better, worse in pairwise(self.classes):
            if worse.sampling_ratio < better.sampling_ratio:
                raise ValueError(
                    f"classes: sampling_ratio falls from {better.name} to {worse.name}"
                )
            if worse.inspections_per_year < better.inspections_per_year:
                raise ValueError(
                    f"classes: inspections_per_year falls from {better.name} to {worse.name}"
                )
        if self.overrides.punish_class not in class_names:
            raise ValueError(f"overrides: punish_class {self.overrides.punish_class} is no class")
        discounts = self.pre_approval.grade_rate_discount_bp
        if set(discounts) != set(names):
            raise ValueError("pre_approval: grade_rate_discount_bp must give every grade a value")
        values = [discounts[name] for name in names]
        if any(b > a for a, b in pairwise(values)):
            raise ValueError("pre_approval: grade_rate_discount_bp must not grow for worse grades")
        for key in ("xinyipi", "xinyizu"):
            grades = list(getattr(self, key).grades)
            if grades != list(names[: len(grades)]):
                raise ValueError(f"{key}: grades must be the best grades in order, got {grades}")
        if self.rural.household_min_grade not in names:
            raise ValueError(f"rural: household_min_grade {self.rural.household_min_grade} "
                             "is no grade")  # fmt: skip
        codes = {*DECISION_REASON_CODES, *self.override_codes}
        if set(self.decision_reasons) != codes:
            missing = sorted(codes - set(self.decision_reasons))
            unknown = sorted(set(self.decision_reasons) - codes)
            raise ValueError(f"decision_reasons: missing {missing}, unknown {unknown}")
        return self

    @cached_property
    def override_codes(self) -> tuple[str, ...]:
        """Codes of the 联合奖惩 overrides: ``punish:<flag>`` and ``reward:<flag>``."""
        return (*(f"punish:{flag}" for flag in self.overrides.punish_flags),
                *(f"reward:{flag}" for flag in self.overrides.reward_flags))  # fmt: skip

    @cached_property
    def grade_names(self) -> tuple[str, ...]:
        """Grades, best first."""
        return tuple(band.grade for band in self.grades)

    @cached_property
    def class_of_grade(self) -> dict[str, str]:
        """Supervision class of each grade."""
        return {grade: c.name for c in self.classes for grade in c.grades}

    def supervision(self, name: str) -> SupervisionClass:
        """The class called ``name``."""
        for c in self.classes:
            if c.name == name:
                return c
        raise PolicyError("class", "unknown", f"{name!r} is not a class of the policy")

    def check_flags(self, columns: Sequence[str]) -> None:
        """Refuse override and target-group flags that are not columns of the view."""
        flags = (*self.overrides.punish_flags, *self.overrides.reward_flags)
        missing = [f for f in flags if f not in columns]
        if missing:
            raise PolicyError("overrides", "unknown_flag", f"not columns of the view: {missing}")
        group_flags = [f for g in self.pre_approval.target_groups for f in g.flags]
        missing = [f for f in group_flags if f not in columns]
        if missing:
            raise PolicyError(
                "pre_approval.target_groups", "unknown_flag", f"not columns of the view: {missing}"
            )


def _location(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "policy"


def parse_policy(raw: Any) -> ScoringPolicy:
    """Validate a parsed policy document; `PolicyError` names the first broken field."""
    try:
        return ScoringPolicy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        rule = "unknown_key" if first["type"] == "extra_forbidden" else first["type"]
        message = first["msg"].removeprefix("Value error, ")
        raise PolicyError(_location(first), rule, message) from None


def load_policy(path: Path | None = None) -> ScoringPolicy:
    """Load and validate the scoring policy (default: the packaged ``policy.yaml``)."""
    source = path or DEFAULT_POLICY_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError("policy", "readable", f"{source.name}: {exc}") from None
    policy = parse_policy(raw)
    from features.view import feature_specs  # noqa: PLC0415 - keeps `scoring` light to import

    policy.check_flags([spec.name for spec in feature_specs()])
    return policy


__all__ = [
    "DECISION_REASON_CODES",
    "DEFAULT_POLICY_PATH",
    "REPAYMENT_STATUS_SYMBOLS",
    "TARGET_GROUPS",
    "ReasonText",
    "Remedies",
    "ScoringPolicy",
    "load_policy",
    "parse_policy",
]
