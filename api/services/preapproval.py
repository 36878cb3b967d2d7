"""信易贷 pre-approval (双查询) and 信易批 / 信易租 eligibility of one entity.

The 双查询 puts two sources side by side: the entity's three-in-one view and current PD
(the served snapshot, or its newest rescore after an objection or a repair), and the PBOC
report the bank holds (optional; it can only make the decision worse). `decide` runs on the
one view row with the served policy, so a pre-approval without a report gives the decision
the batch snapshot gave, and eligibility always agrees with the pre-approval.

Access is the score endpoint's (`api.services.scores.decide_access`): an underwriter states
its purpose, a 个体工商户 needs its operator's consent, and every query leaves an inquiry
record of the subject (a pre-approval: 02 贷款审批).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas
from fastapi import Request
from sqlalchemy.orm import Session

from api.deps import KeyInfo
from api.errors import Unavailable
from api.schemas.preapproval import (
    EligibilityResponse,
    Incentive,
    PbocCheck,
    PreApprovalRequest,
    PreApprovalResponse,
    TargetGroupInfo,
)
from api.schemas.scores import DecisionReason, Provenance
from api.security import Role, subject_ref
from api.services.consent import Purpose
from api.services.scores import decide_access, identity, reasons_of, scored_row, served
from api.services.workdays import today as china_today
from api.state import Services
from features.identifiers import validate_uscc
from scoring.decisions import PBOC_FINDINGS, PbocReport, decide, needed_columns, reason_text
from scoring.errors import ScoringError
from scoring.policy import ScoringPolicy


@dataclass(frozen=True)
class EntityDecision:
    """One entity decided now: its current score row and `decide`'s row for it."""

    uscc: str
    row: dict[str, Any]
    cause: str | None
    decided: dict[str, Any]
    policy_version: str


def parse_report(raw: dict[str, Any] | None) -> PbocReport | None:
    """The bank's PBOC report, validated; errors name ``pboc_report.<field>`` and the rule."""
    if raw is None:
        return None
    try:
        return PbocReport.parse(raw)
    except ScoringError as exc:
        raise ScoringError(f"pboc_report.{exc.field}", exc.rule, exc.message) from None


def _decision_columns(policy: ScoringPolicy) -> list[str]:
    """The view columns `decide` reads (the override and target-group flags, the type)."""
    return list(dict.fromkeys(["uscc", "entity_type", *needed_columns(policy)]))


def current_flags(
    view: dict[str, Any], row: dict[str, Any], rescored: bool, policy: ScoringPolicy
) -> dict[str, Any]:
    """The view row's decision columns, as the entity's records stand now.

    A rescore was made after the entity's records changed (an objection upheld, a repair
    approved): its own values of view columns win, and its overrides say which 联合奖惩
    flags hold now (a punish flag holds iff it was applied; a reward flag holds if it was
    applied, keeps the view's value if the reward was withheld, and is off otherwise).
    """
    out = {c: view.get(c) for c in _decision_columns(policy)}
    if not rescored:
        return out
    out.update({c: row[c] for c in out if c in row and c != "uscc"})
    applied = set(row.get("overrides") or ())
    withheld = "reward_withheld" in (row.get("decision_reasons") or ())
    if "overrides" in row:
        for flag in policy.overrides.punish_flags:
            if flag not in row:
                out[flag] = int(f"punish:{flag}" in applied)
        for flag in policy.overrides.reward_flags:
            if flag not in row and not withheld:
                out[flag] = int(f"reward:{flag}" in applied)
    return out


def decide_entity(
    services: Services, session: Session, uscc: str, report: PbocReport | None = None
) -> EntityDecision:
    """`decide` on the entity's view row and current PD under the served policy."""
    snapshot = served(services)
    row, cause = scored_row(services, session, uscc)
    if snapshot.view is None:
        raise Unavailable("view", "loaded", "the served view is not loaded: no decision possible")
    flags = current_flags(snapshot.view_row(uscc), row, cause is not None, services.policy)
    frame = pandas.DataFrame([flags])
    reports = {uscc: report} if report is not None else None
    out = decide(frame, [float(row["pd"])], services.policy, reports=reports)
    decided: dict[str, Any] = out.iloc[0].to_dict()
    return EntityDecision(uscc, row, cause, decided, str(out.attrs["policy_version"]))


def _texts(codes: Any, services: Services) -> list[DecisionReason]:
    out = []
    for code in codes or ():
        text = reason_text(str(code), services.policy)
        out.append(DecisionReason(code=str(code), zh=text.zh, en=text.en))
    return out


def _provenance(services: Services, entity: EntityDecision) -> Provenance:
    info = served(services).info
    row = entity.row
    return Provenance(
        as_of=served(services).as_of,
        snapshot=info.file,
        model_version=str(row.get("model_version", info.model_version)),
        policy_version=str(row.get("policy_version", info.policy_version)),
        rescored=entity.cause is not None,
        rescore_cause=entity.cause,
    )


def _pboc_check(report: PbocReport | None, decided: dict[str, Any]) -> PbocCheck | None:
    if report is None:
        return None
    finding = next(c for c in decided["decision_reasons"] if c in PBOC_FINDINGS)
    return PbocCheck(
        accounts=len(report.accounts), worst_bucket=report.worst_bucket, finding=finding
    )


def pre_approve(
    services: Services,
    session: Session,
    key: KeyInfo,
    body: PreApprovalRequest,
    request: Request,
    today: dt.date | None = None,
) -> PreApprovalResponse:
    """POST /v1/preapprovals: the 信易贷 pre-approval (双查询) of one entity."""
    code = validate_uscc(body.uscc, "uscc")
    report = parse_report(body.pboc_report)
    facts = services.directory.entity(code)
    access = decide_access(
        services, session, key, facts, Purpose(body.purpose), request, today or china_today()
    )
    entity = decide_entity(services, session, code, report)
    decided, policy = entity.decided, services.policy
    group = policy.pre_approval.group(str(decided["target_group"]))
    request.state.outcome = f"decision={decided['decision']} limit={int(decided['limit'])}"
    return PreApprovalResponse(
        identity=identity(facts, code, access.unmasked),
        provenance=_provenance(services, entity),
        policy_version=entity.policy_version,
        pd=float(entity.row["pd"]),
        score=int(decided["score"]),
        grade=str(decided["grade"]),
        target_group=TargetGroupInfo(
            group=str(decided["target_group"]),
            zh=group.zh,
            max_limit=group.max_limit,
            rate_discount_bp=group.rate_discount_bp,
        ),
        decision=decided["decision"],
        limit=int(decided["limit"]),
        rate_discount_bp=float(decided["rate_discount_bp"]),
        decision_reasons=_texts(decided["decision_reasons"], services),
        overrides=_texts(decided["overrides"], services),
        pboc=_pboc_check(report, decided),
        xinyipi=bool(decided["xinyipi"]),
        xinyizu=bool(decided["xinyizu"]),
        reasons=reasons_of(entity.row, served(services), code, Role.UNDERWRITER),
    )


def _grade_reason(grade: str, policy: ScoringPolicy) -> DecisionReason:
    band = next(b for b in policy.grades if b.grade == grade)
    return DecisionReason(
        code=f"grade:{grade}", zh=f"信用等级{grade}（{band.zh}）", en=f"credit grade {grade}"
    )


def incentive(
    eligible: bool,
    grades: tuple[str, ...],
    reward: bool,
    decided: dict[str, Any],
    services: Services,
) -> Incentive:
    """Why an incentive (信易批 or 信易租) is given or withheld, from `decide`'s row.

    Given: the grade is eligible (basis ``grade``), else a red list rewards it
    (``red_list``). Withheld: a 失信 list punishes (``punished``, its override texts), the
    class is the punish class (``supervision_class``, the class's text and any withheld
    reward), or the grade is not eligible (``grade``).
    """
    policy = services.policy
    grade, klass = str(decided["grade"]), str(decided["supervision_class"])
    applied = [str(c) for c in decided["overrides"]]
    if eligible:
        if grade in grades:
            return Incentive(
                eligible=True,
                basis="grade",
                eligible_grades=list(grades),
                reasons=[_grade_reason(grade, policy)],
            )
        rewards = [c for c in applied if c.startswith("reward:")] if reward else []
        return Incentive(
            eligible=True,
            basis="red_list",
            eligible_grades=list(grades),
            reasons=_texts(rewards, services),
        )
    punished = [c for c in applied if c.startswith("punish:")]
    if punished:
        return Incentive(
            eligible=False,
            basis="punished",
            eligible_grades=list(grades),
            reasons=_texts(punished, services),
        )
    if klass == policy.overrides.punish_class:
        supervision = policy.supervision(klass)
        reasons = [DecisionReason(code=f"class:{klass}", zh=supervision.zh, en=supervision.en)]
        if "reward_withheld" in decided["decision_reasons"]:
            reasons += _texts(["reward_withheld"], services)
        return Incentive(
            eligible=False, basis="supervision_class", eligible_grades=list(grades), reasons=reasons
        )
    return Incentive(
        eligible=False,
        basis="grade",
        eligible_grades=list(grades),
        reasons=[_grade_reason(grade, policy)],
    )


def eligibility(
    services: Services,
    session: Session,
    key: KeyInfo,
    uscc: str,
    purpose: Purpose | None,
    request: Request,
    today: dt.date | None = None,
) -> EligibilityResponse:
    """GET /v1/entities/{uscc}/eligibility: 信易批 and 信易租, with their reasons.

    The eligibility follows from the grade (as the score does), so an underwriter's query is
    one like the score's: purpose, the operator's consent for a 个体工商户, an inquiry record.
    A regulator's is logged under the entity's pseudonym.
    """
    code = validate_uscc(uscc, "uscc")
    facts = services.directory.entity(code)
    decide_access(services, session, key, facts, purpose, request, today or china_today())
    if key.role is not Role.UNDERWRITER:
        request.state.subject_ref = subject_ref(services.settings.secret, code)
    entity = decide_entity(services, session, code)
    decided, over = entity.decided, services.policy.overrides
    xinyipi = incentive(
        bool(decided["xinyipi"]),
        services.policy.xinyipi.grades,
        over.reward_xinyipi,
        decided,
        services,
    )
    xinyizu = incentive(
        bool(decided["xinyizu"]),
        services.policy.xinyizu.grades,
        over.reward_xinyizu,
        decided,
        services,
    )
    request.state.outcome = f"xinyipi={xinyipi.eligible} xinyizu={xinyizu.eligible}"
    return EligibilityResponse(
        uscc=code,
        provenance=_provenance(services, entity),
        policy_version=entity.policy_version,
        grade=str(decided["grade"]),
        supervision_class=str(decided["supervision_class"]),
        xinyipi=xinyipi,
        xinyizu=xinyizu,
        overrides=_texts(decided["overrides"], services),
    )
