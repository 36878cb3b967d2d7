"""The served scoring policy as users read it: GET /v1/policy.

Built from the validated `ScoringPolicy` the service loaded (never re-read), with the
master scale's score bands computed by the scoring code itself, and the policy file's own
comments above each section — where it cites its sources — passed on verbatim.
"""

from __future__ import annotations

import hashlib
import re

from api.schemas.supervision import (
    MasterScaleBand,
    OverridesOut,
    PolicyResponse,
    PreApprovalRulesOut,
    ReasonTextOut,
    ScoreScaleOut,
    SupervisionClassOut,
    TargetGroupOut,
)
from api.state import Services
from scoring.policy import ScoringPolicy
from scoring.scale import score_from_pd

_SECTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")


def policy_notes(text: str) -> dict[str, str]:
    """Each top-level section's comment block (the lines just above it), as one paragraph.

    Examples
    --------
    >>> policy_notes("# ---- classes: A-D (6号).\\n# ratios: 林甸县\\nclasses:\\n  - a: 1")
    {'classes': 'classes: A-D (6号). ratios: 林甸县'}
    """
    notes: dict[str, str] = {}
    block: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not line.startswith(" "):
            block.append(stripped.lstrip("#").strip().removeprefix("----").strip())
            continue
        match = _SECTION.match(line)
        if match and block:
            notes[match.group(1)] = " ".join(part for part in block if part)
        block = []
    return notes


def master_scale(policy: ScoringPolicy) -> list[MasterScaleBand]:
    """Grade → PD band → score band → supervision class."""
    bands = []
    above = 0.0
    for band in policy.grades:
        low, high = score_from_pd([band.pd_max, above], policy.score).tolist()
        bands.append(
            MasterScaleBand(
                grade=band.grade,
                zh=band.zh,
                pd_above=above,
                pd_max=band.pd_max,
                score_from=round(low, 2),
                score_to=round(high, 2),
                supervision_class=policy.class_of_grade[band.grade],
            )
        )
        above = band.pd_max
    return bands


def policy_view(services: Services) -> PolicyResponse:
    """The served policy: its version, scales, classes, overrides and 信易+ terms."""
    policy = services.policy
    rules, over = policy.pre_approval, policy.overrides
    return PolicyResponse(
        version=policy.version,
        sha256=hashlib.sha256(services.policy_text.encode("utf-8")).hexdigest(),
        score=ScoreScaleOut(**policy.score.model_dump(include=set(ScoreScaleOut.model_fields))),
        master_scale=master_scale(policy),
        classes=[
            SupervisionClassOut(
                supervision_class=c.name,
                grades=list(c.grades),
                zh=c.zh,
                en=c.en,
                sampling_ratio=c.sampling_ratio,
                inspections_per_year=c.inspections_per_year,
            )
            for c in policy.classes
        ],
        overrides=OverridesOut(**over.model_dump(include=set(OverridesOut.model_fields))),
        pre_approval=PreApprovalRulesOut(
            **rules.model_dump(include=set(PreApprovalRulesOut.model_fields) - {"target_groups"}),
            target_groups=[
                TargetGroupOut(**g.model_dump(include=set(TargetGroupOut.model_fields)))
                for g in rules.target_groups
            ],
        ),
        xinyipi_grades=list(policy.xinyipi.grades),
        xinyizu_grades=list(policy.xinyizu.grades),
        decision_reasons={
            code: ReasonTextOut(zh=text.zh, en=text.en)
            for code, text in policy.decision_reasons.items()
        },
        notes=policy_notes(services.policy_text),
    )
