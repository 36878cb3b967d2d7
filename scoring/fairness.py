"""Fairness check: decisions by group, next to the decisions the true risk would justify.

A validator asks whether the model treats groups of entities differently *for reasons
other than their risk*. For each attribute (the operator's gender, the district, the
entity type) and each of its groups, `fairness` puts side by side:

- **approval rate** — share of the group's 信易贷 decisions that are ``approve``;
- **share in top grades** — share graded in supervision class A (the policy's best grades);
- **mean predicted PD** and **mean true risk** — the generator's true PD on synthetic data,
  or the realised 12-month default rate;
- **justified approval rate** — the approval rate the true risk would justify: the share of
  the group whose true PD passes the same cut-off (``pre_approval.approve_max_pd``) as the
  model's PD. With realised labels (no per-entity true PD) it is the share whose model PD,
  rescaled by the group's realised-to-predicted ratio (the PD the model would give were it
  calibrated within the group), passes the cut-off.

Two disparity measures per attribute, over the groups with at least
``policy.fairness.min_group_entities`` entities (``unknown`` is shown, never compared):

- the **four-fifths rule** (US EEOC Uniform Guidelines, 29 CFR 1607.4 D): the lowest
  approval rate divided by the highest; below 0.8 is evidence of adverse impact. It does
  not look at risk, so a riskier group may fail it for good reason;
- the **unexplained disparity**: each group's approval rate divided by its justified rate
  (how much of what its risk justifies it gets), relative to the best-treated group. A group
  below four-fifths of it is *flagged*: it is approved less than its true risk explains.

Gender is read from the resident ID of the entity's legal representative or operator
(GB 11643: the 17th digit is odd for men, even for women), only here and only for this
check: it is never a model feature, and no ID, name or code of a person leaves this module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from features.area_codes import load_area_codes
from features.errors import IdentifierError
from features.identifiers import resident_id_errors
from scoring.errors import ScoringError
from scoring.policy import ScoringPolicy

logger = logging.getLogger(__name__)

#: attributes the check is run over (columns of the ``groups`` frame)
ATTRIBUTES = ("gender", "district", "entity_type")
#: the group of entities whose attribute is not known (no valid resident ID, …)
UNKNOWN = "unknown"
TrueRiskKind = Literal["probability", "label"]
_SCORED_COLUMNS = ("uscc", "decision", "grade", "pd")


@dataclass(frozen=True)
class GroupRates:
    """The rates of one group of one attribute (aggregates only: no entity is named).

    ``fair_share`` is ``approval_rate / justified_approval_rate``; ``relative_share`` is it
    divided by the largest ``fair_share`` of the compared groups (None when not compared).
    """

    group: str
    entities: int
    approval_rate: float
    top_grade_share: float
    mean_pd: float
    true_risk_entities: int
    mean_true_risk: float
    justified_approval_rate: float
    impact_ratio: float | None
    fair_share: float | None
    relative_share: float | None
    compared: bool
    flagged: bool


@dataclass(frozen=True)
class AttributeFairness:
    """One attribute's groups and its disparity ratios."""

    attribute: str
    groups: tuple[GroupRates, ...]
    #: lowest / highest approval rate of the compared groups (the four-fifths rule)
    approval_ratio: float | None
    #: lowest / highest justified approval rate: the disparity the true risk alone explains
    justified_ratio: float | None
    #: lowest relative share: the unexplained disparity
    unexplained_ratio: float | None
    four_fifths_passed: bool | None

    @property
    def flagged_groups(self) -> tuple[str, ...]:
        """Groups approved less than their true risk explains."""
        return tuple(g.group for g in self.groups if g.flagged)

    @property
    def flagged(self) -> bool:
        """Whether any group of the attribute is flagged."""
        return bool(self.flagged_groups)


@dataclass(frozen=True)
class FairnessResult:
    """`fairness` tables of every attribute and how they were computed."""

    attributes: tuple[AttributeFairness, ...]
    true_risk_kind: TrueRiskKind
    approve_max_pd: float
    top_grades: tuple[str, ...]
    threshold: float
    min_group_entities: int
    entities: int

    def attribute(self, name: str) -> AttributeFairness:
        """The table of attribute ``name``."""
        for table in self.attributes:
            if table.attribute == name:
                return table
        raise ScoringError("attribute", "known", f"{name!r} was not checked")

    @property
    def flagged(self) -> bool:
        """Whether any group of any attribute is flagged."""
        return any(table.flagged for table in self.attributes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready numbers (NaN as None)."""
        return {
            "true_risk_kind": self.true_risk_kind,
            "approve_max_pd": self.approve_max_pd,
            "top_grades": list(self.top_grades),
            "threshold": self.threshold,
            "min_group_entities": self.min_group_entities,
            "entities": self.entities,
            "attributes": {
                table.attribute: {
                    "approval_ratio": table.approval_ratio,
                    "justified_ratio": table.justified_ratio,
                    "unexplained_ratio": table.unexplained_ratio,
                    "four_fifths_passed": table.four_fifths_passed,
                    "flagged_groups": list(table.flagged_groups),
                    "groups": [_plain(asdict(group)) for group in table.groups],
                }
                for table in self.attributes
            },
        }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in values.items()}


# ------------------------------------------------------------------------------ groups
def resident_id_gender(ids: pd.Series) -> pd.Series:
    """Gender from resident IDs (GB 11643: odd 17th digit male, even female), vectorised.

    Missing and invalid IDs (any rule of `features.identifiers.resident_id_errors`) give
    `UNKNOWN`. Same rule as `features.identifiers.parse_resident_id`.

    Examples
    --------
    >>> resident_id_gender(pd.Series(["33030219900307001X", "330302199003070028", None,
    ...                               "12345"])).tolist()
    ['male', 'female', 'unknown', 'unknown']
    """
    text = ids.astype("string").str.strip().str.upper()
    errors = resident_id_errors(pa.array(text.to_numpy(dtype=object, na_value=None),
                                         type=pa.large_string()))  # fmt: skip
    valid = text.notna().to_numpy() & errors.is_null().to_numpy(zero_copy_only=False)
    digit = pd.to_numeric(text.str.slice(16, 17), errors="coerce").to_numpy(dtype=np.float64)
    gender = np.where(digit % 2 == 1, "male", "female")
    return pd.Series(np.where(valid, gender, UNKNOWN), index=ids.index, name="gender")


def entity_groups(entities: pd.DataFrame) -> pd.DataFrame:
    """``uscc, gender, district, entity_type`` of every entity of the ``entities`` table.

    ``gender`` comes from ``legal_rep_id`` (the legal representative or operator), which is
    dropped; ``district`` is named (``鹿城区 330302``) where the area-code history knows it.
    """
    missing = [c for c in ("uscc", "legal_rep_id", "district", "entity_type")
               if c not in entities.columns]  # fmt: skip
    if missing:
        raise ScoringError("entities", "columns", f"missing columns: {missing}")
    unique = entities.drop_duplicates("uscc", keep="last")
    if len(unique) < len(entities):
        logger.warning("entities: %d repeated uscc rows, the last kept",
                       len(entities) - len(unique))  # fmt: skip
    history = load_area_codes()

    def district_name(code: object) -> str:
        if code is None or pd.isna(code):
            return UNKNOWN
        try:
            return f"{history.name(str(code))} {code}"
        except IdentifierError:
            return str(code)

    names = {code: district_name(code) for code in unique["district"].unique()}
    return pd.DataFrame(
        {
            "uscc": unique["uscc"].astype("string").to_numpy(),
            "gender": resident_id_gender(unique["legal_rep_id"]).to_numpy(),
            "district": unique["district"].map(names).to_numpy(),
            "entity_type": unique["entity_type"].astype("string").fillna(UNKNOWN).to_numpy(),
        }
    )


def warehouse_groups(tables: Mapping[str, ir.Table]) -> pd.DataFrame:
    """`entity_groups` of the warehouse's ``entities`` table (IDs never leave the query)."""
    entities = tables["entities"].select("uscc", "legal_rep_id", "district", "entity_type")
    return entity_groups(entities.to_pandas())


# ---------------------------------------------------------------------------- fairness
def fairness(
    scored: pd.DataFrame,
    groups: pd.DataFrame,
    true_risk: pd.Series,
    policy: ScoringPolicy,
    *,
    kind: TrueRiskKind = "probability",
    attributes: Sequence[str] = ATTRIBUTES,
    threshold: float | None = None,
    min_group_entities: int | None = None,
) -> FairnessResult:
    """Approval and grade rates by group, next to the rates the true risk would justify.

    Parameters
    ----------
    scored
        One row per entity: ``uscc``, ``decision``, ``grade``, ``pd`` (`scoring.batch.
        score_frame` output).
    groups
        ``uscc`` and one column per attribute (`entity_groups`); entities missing here are
        in group `UNKNOWN`.
    true_risk
        Indexed by ``uscc``: the true PD (``kind="probability"``, the generator's truth) or
        the realised 12-month default, 0/1 (``kind="label"``). Entities without a value
        count in the group sizes and approval rates, not in the true-risk columns.
    policy
        The scoring policy: its approval cut-off and its class-A grades.
    kind, attributes, threshold, min_group_entities
        See the module docstring.

    Returns
    -------
    FairnessResult

    Raises
    ------
    ScoringError
        ``scored`` lacks a column or repeats an entity, ``groups`` lacks an attribute,
        ``true_risk`` is not a probability (or not 0/1 for labels), ``kind`` is unknown.

    Examples
    --------
    >>> from scoring.policy import load_policy
    >>> scored = pd.DataFrame({"uscc": ["a", "b", "c", "d"], "pd": [0.01, 0.2, 0.01, 0.2],
    ...                        "decision": ["approve", "decline", "approve", "decline"],
    ...                        "grade": ["BBB", "CC", "BBB", "CC"]})
    >>> groups = pd.DataFrame({"uscc": ["a", "b", "c", "d"], "gender": ["male", "male",
    ...                        "female", "female"]})
    >>> truth = pd.Series([0.01, 0.2, 0.01, 0.01], index=["a", "b", "c", "d"])
    >>> result = fairness(scored, groups, truth, load_policy(), attributes=["gender"],
    ...                   min_group_entities=1)
    >>> [(g.group, g.approval_rate, g.justified_approval_rate, g.flagged)
    ...  for g in result.attribute("gender").groups]
    [('female', 0.5, 1.0, True), ('male', 0.5, 0.5, False)]
    """
    missing = [c for c in _SCORED_COLUMNS if c not in scored.columns]
    if missing:
        raise ScoringError("scored", "columns", f"missing columns: {missing}")
    if scored["uscc"].duplicated().any():
        raise ScoringError("scored", "unique_uscc", "an entity is scored twice")
    absent = [a for a in attributes if a not in groups.columns]
    if absent:
        raise ScoringError("groups", "columns", f"missing attributes: {absent}")
    if kind not in ("probability", "label"):
        raise ScoringError("kind", "known", f"'probability' or 'label', got {kind!r}")
    risk = pd.to_numeric(true_risk, errors="coerce").astype("float64")
    known = risk.dropna()
    if not ((known >= 0) & (known <= 1)).all():
        raise ScoringError("true_risk", "probability", "true risks must lie in [0, 1]")
    if kind == "label" and not known.isin([0.0, 1.0]).all():
        raise ScoringError("true_risk", "label", "realised defaults must be 0 or 1")
    cut_off = policy.pre_approval.approve_max_pd
    top_grades = policy.classes[0].grades
    if threshold is None:
        threshold = policy.fairness.min_ratio
    if min_group_entities is None:
        min_group_entities = policy.fairness.min_group_entities
    keys = scored["uscc"].astype("string").to_numpy()
    by_uscc = groups.assign(uscc=groups["uscc"].astype("string")).drop_duplicates("uscc")
    frame = pd.DataFrame(
        {
            "approved": (scored["decision"].astype("string") == "approve").to_numpy(),
            "top": scored["grade"].astype("string").isin(top_grades).to_numpy(),
            "pd": scored["pd"].to_numpy(dtype=np.float64),
            "risk": risk.groupby(level=0).last().reindex(keys).to_numpy(),
        }
    )
    located = by_uscc.set_index("uscc").reindex(keys)
    tables = []
    for attribute in attributes:
        labels = located[attribute].astype("string").fillna(UNKNOWN).to_numpy()
        tables.append(
            _attribute(attribute, frame.assign(group=labels), kind, cut_off, threshold,
                       min_group_entities)
        )  # fmt: skip
    return FairnessResult(tuple(tables), kind, cut_off, top_grades, threshold,
                          min_group_entities, len(frame))  # fmt: skip


def _justified(part: pd.DataFrame, kind: TrueRiskKind, cut_off: float) -> float:
    """The approval rate the group's true risk would justify (module docstring)."""
    rated = part[part["risk"].notna()]
    if rated.empty:
        return float("nan")
    if kind == "probability":
        return float((rated["risk"] <= cut_off).mean())
    mean_pd = float(rated["pd"].mean())
    if mean_pd <= 0:
        return float("nan")
    rescaled = np.clip(rated["pd"] * float(rated["risk"].mean()) / mean_pd, 0.0, 1.0)
    return float((rescaled <= cut_off).mean())


def _ratio(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    if not finite or max(finite) <= 0:
        return None
    return min(finite) / max(finite)


def _attribute(
    attribute: str,
    frame: pd.DataFrame,
    kind: TrueRiskKind,
    cut_off: float,
    threshold: float,
    min_group_entities: int,
) -> AttributeFairness:
    rows: list[dict[str, Any]] = []
    for name, part in frame.groupby("group", sort=True):
        approval = float(part["approved"].mean())
        justified = _justified(part, kind, cut_off)
        share = approval / justified if justified > 0 else float("nan")
        rows.append(
            {
                "group": str(name),
                "entities": len(part),
                "approval_rate": approval,
                "top_grade_share": float(part["top"].mean()),
                "mean_pd": float(part["pd"].mean()),
                "true_risk_entities": int(part["risk"].notna().sum()),
                "mean_true_risk": float(part["risk"].mean()),
                "justified_approval_rate": justified,
                "fair_share": share,
                "compared": str(name) != UNKNOWN and len(part) >= min_group_entities,
            }
        )
    compared = [r for r in rows if r["compared"]]
    best_approval = max((r["approval_rate"] for r in compared), default=float("nan"))
    shares = [r["fair_share"] for r in compared if np.isfinite(r["fair_share"])]
    best_share = max(shares, default=float("nan"))
    groups = []
    for r in rows:
        impact = relative = None
        if r["compared"] and best_approval > 0:
            impact = r["approval_rate"] / best_approval
        if r["compared"] and np.isfinite(r["fair_share"]) and best_share > 0:
            relative = r["fair_share"] / best_share
        share = r.pop("fair_share")
        groups.append(
            GroupRates(
                **r,
                impact_ratio=impact,
                fair_share=share if np.isfinite(share) else None,
                relative_share=relative,
                flagged=relative is not None and relative < threshold,
            )
        )
    approval_ratio = _ratio([r["approval_rate"] for r in compared])
    relatives = [g.relative_share for g in groups if g.relative_share is not None]
    return AttributeFairness(
        attribute=attribute,
        groups=tuple(groups),
        approval_ratio=approval_ratio,
        justified_ratio=_ratio([r["justified_approval_rate"] for r in compared]),
        unexplained_ratio=min(relatives, default=None),
        four_fifths_passed=None if approval_ratio is None else approval_ratio >= threshold,
    )


__all__ = [
    "ATTRIBUTES",
    "UNKNOWN",
    "AttributeFairness",
    "FairnessResult",
    "GroupRates",
    "entity_groups",
    "fairness",
    "resident_id_gender",
    "warehouse_groups",
]
