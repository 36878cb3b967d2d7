"""控制台 / the web console: pages for underwriters, regulators and the platform operator.

Server-rendered (Jinja2) from the same service functions as the JSON API, so a page shows
exactly what the API would answer the same key, with the same access rules, consent checks
and query log. Chinese by default, English with ``?lang=en`` (kept in a cookie).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from api.console import charts
from api.console.auth import COOKIE, LANG_COOKIE, PATH, resolve
from api.console.i18n import LANGUAGES, translate
from api.deps import KeyInfo, ServicesDep, SessionDep
from api.errors import Forbidden, ServiceError, Unauthenticated
from api.schemas.preapproval import PreApprovalRequest
from api.security import Permission, Role, allowed
from api.services import objections, preapproval, repairs, scores, supervision
from api.services.consent import PURPOSES, Purpose
from api.services.policy_view import policy_view
from api.services.records import ObjectionOutcome, ObjectionStatus, RepairStatus
from api.services.workdays import today as service_today
from api.state import Services
from features.identifiers import is_valid_resident_id
from scoring.errors import ScoringError

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
#: the view columns shown in the three-in-one summary, per source
SUMMARY_FEATURES: dict[str, tuple[str, ...]] = {
    "government": ("gov_negative_records_36m", "gov_penalties_36m", "gov_blacklisted",
                   "gov_dishonest_debtor", "gov_abnormal_listed", "gov_tax_grade",
                   "gov_red_listed"),
    "pboc": ("pboc_has_file", "pboc_accounts_open", "pboc_worst_status_24m",
             "pboc_delinquent_months_24m", "pboc_balance_total", "inq_preloan_6m"),
    "private_lending": ("pl_has_registered_loan", "pl_loans", "pl_amount", "pl_loans_overdue",
                        "pl_rate_spread_mean"),
}  # fmt: skip
PAGE_SIZE = 50

router = APIRouter(prefix=PATH, include_in_schema=False)


def language(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return asked if asked in LANGUAGES else "zh"


def render(
    request: Request, template: str, key: KeyInfo | None, status: int = 200, **context: Any
) -> HTMLResponse:
    lang = language(request)
    response = TEMPLATES.TemplateResponse(
        request, template,
        {"key": key, "lang": lang, "t": lambda k: translate(k, lang), **context},
        status_code=status,
    )  # fmt: skip
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, path=PATH, samesite="strict")
    return response


def error_page(request: Request, exc: Exception, status: int) -> Response:
    """A refused or failed console request as a page (`api.handlers` calls this): signing
    in again for 401, else the field and the rule, like the API's errors."""
    if status == 401:
        return RedirectResponse(request.url_for("console_home"), status_code=303)
    lang = language(request)
    key = getattr(request.state, "key", None)
    if isinstance(exc, Forbidden) and getattr(exc, "field", "") == "role":
        heading = translate("forbidden", lang)
        message = f"{translate(key.role.value, lang) if key else ''}: {exc.rule}"
    else:
        heading = translate("error", lang)
        message = f"{exc.field}: {exc.rule}: {exc.message}"  # type: ignore[attr-defined]
    return render(request, "message.html", key, status, heading=heading, message=message)


def console_key(request: Request, services: ServicesDep) -> KeyInfo:
    """The signed-in key (from the console's cookie); signing in again if there is none."""
    return resolve(request, services, request.cookies.get(COOKIE))


ConsoleKey = Annotated[KeyInfo, Depends(console_key)]


def require(key: KeyInfo, permission: Permission) -> None:
    if not allowed(key.role, permission):
        raise Forbidden("role", permission.value, f"role {key.role} may not see this page")


# ---- signing in -----------------------------------------------------------------------------


@router.get("", name="console_home")
def home(request: Request, services: ServicesDep) -> Response:
    try:
        key = console_key(request, services)
    except Unauthenticated:
        return render(request, "login.html", None)
    target = {
        Role.UNDERWRITER: "console_search", Role.SUBJECT: "console_search",
        Role.REGULATOR: "console_supervision", Role.ANALYST: "console_supervision",
        Role.ADMIN: "console_operator",
    }[key.role]  # fmt: skip
    return RedirectResponse(request.url_for(target), status_code=303)


@router.post("/login", name="console_login")
def login(
    request: Request, services: ServicesDep, api_key: Annotated[str, Form(max_length=200)]
) -> Response:
    try:
        resolve(request, services, api_key)
    except Unauthenticated:
        lang = language(request)
        return render(request, "login.html", None, 401, error=translate("bad_key", lang))
    response = RedirectResponse(request.url_for("console_home"), status_code=303)
    response.set_cookie(COOKIE, api_key.strip(), path=PATH, httponly=True, samesite="strict")
    return response


@router.post("/logout", name="console_logout")
def logout(request: Request) -> Response:
    response = RedirectResponse(request.url_for("console_home"), status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


# ---- underwriter: search, entity, pre-approval ----------------------------------------------


def _purpose(value: str | None) -> Purpose:
    try:
        return Purpose(value or Purpose.LOAN_APPROVAL)
    except ValueError:
        raise ServiceError("purpose", "choice", f"one of {[p.value for p in Purpose]}") from None


@router.get("/search", name="console_search")
def search(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey,
    q: str | None = None, purpose: str | None = None,
) -> Response:  # fmt: skip
    require(key, Permission.SCORE_ENTITY)
    chosen = _purpose(purpose)
    if key.role is Role.SUBJECT and not q:
        q = key.subject_id  # a subject sees itself
    results = []
    if q:
        code = q.strip().upper()
        if not is_valid_resident_id(code):
            url = request.url_for("console_entity", uscc=code)
            return RedirectResponse(f"{url}?purpose={chosen.value}", status_code=303)
        require(key, Permission.SCORE_PERSON)
        wanted = chosen if key.role is Role.UNDERWRITER else None
        results = scores.person_scores(services, session, key, code, wanted, request)
    return render(
        request, "search.html", key, q=q, purpose=chosen.value, results=results,
        purposes=[p.value for p in PURPOSES],
    )  # fmt: skip


def _summary(
    services: Services, uscc: str, lang: str, rescored_view: dict[str, Any] | None
) -> list[tuple[str, list[tuple[str, str]]]]:
    """What each source says about the entity: the rescore's view if any, else the served one."""
    from features.view import feature_specs  # noqa: PLC0415

    specs = {s.name: s for s in feature_specs()}
    snapshot = scores.served(services)
    out = []
    for source, names in SUMMARY_FEATURES.items():
        values = rescored_view or snapshot.view_values(uscc, list(names))
        rows = []
        for name in names:
            spec = specs[name]
            value = values.get(name)
            if spec.kind == "flag":
                text = translate("yes" if value else "no", lang)
            elif value is None:
                text = "—"
            elif isinstance(value, float):
                text = f"{value:,.2f}".rstrip("0").rstrip(".")
            else:
                text = str(value)
            rows.append((spec.en if lang == "en" else spec.zh, text))
        out.append((source, rows))
    return out


def _entity_page(
    request: Request, services: Services, session: Session, key: KeyInfo, uscc: str,
    purpose: Purpose, **extra: Any,
) -> HTMLResponse:  # fmt: skip
    wanted = purpose if key.role is Role.UNDERWRITER else None
    score = scores.entity_score(services, session, key, uscc, wanted, request)
    code = score.identity.uscc
    row, _ = scores.scored_row(services, session, code)
    lang = language(request)
    chart = charts.contributions(
        [(r.en if lang == "en" else r.zh, r.contribution) for r in score.reasons],
        title=translate("reasons", lang),
    )  # fmt: skip
    return render(
        request, "entity.html", key, s=score, reasons_chart=chart, purpose=purpose.value,
        summary=_summary(services, code, lang, row.get("view")), **extra,
    )  # fmt: skip


@router.get("/entities/{uscc}", name="console_entity")
def entity(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey, uscc: str,
    purpose: str | None = None,
) -> Response:  # fmt: skip
    require(key, Permission.SCORE_ENTITY)
    return _entity_page(request, services, session, key, uscc, _purpose(purpose))


def parse_report_text(text: str | None) -> dict[str, Any] | None:
    """The form's PBOC report: one account a line, ``<account id> <24 status symbols>``.

    >>> parse_report_text("A1 " + "N" * 24)["accounts"][0]["account_id"]
    'A1'
    >>> parse_report_text("  ") is None
    True
    """
    lines = [line.split() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None
    accounts = []
    for number, parts in enumerate(lines):
        if len(parts) != 2:
            raise ScoringError(
                f"pboc_report.line_{number + 1}", "id_and_status",
                "one account a line: an account id, a space, 24 status symbols",
            )  # fmt: skip
        accounts.append({"account_id": parts[0], "status_24m": parts[1]})
    return {"accounts": accounts}


@router.post("/entities/{uscc}/preapproval", name="console_preapproval")
def run_preapproval(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey, uscc: str,
    pboc_report: Annotated[str, Form(max_length=5000)] = "",
) -> Response:  # fmt: skip
    require(key, Permission.PREAPPROVAL)
    body = PreApprovalRequest(
        uscc=uscc, purpose=Purpose.LOAN_APPROVAL, pboc_report=parse_report_text(pboc_report)
    )
    result = preapproval.pre_approve(services, session, key, body, request)
    shown = {
        "decision": result.decision, "limit": result.limit,
        "rate_discount_bp": result.rate_discount_bp, "target_group": result.target_group.zh,
        "reasons": result.decision_reasons,
    }  # fmt: skip
    return _entity_page(
        request, services, session, key, uscc, Purpose.LOAN_APPROVAL, preapproval=shown,
        pboc_text=pboc_report,
    )  # fmt: skip


# ---- regulator: distribution, inspection list, export, policy -------------------------------


def _filters(services: Services, params: dict[str, str | None]) -> supervision.Filters:
    allowed_values = supervision.allowed_filters(services.policy)
    given = {}
    for name, value in params.items():
        if not value:
            continue
        if value not in allowed_values[name]:
            raise ServiceError(name, "choice", f"one of {', '.join(allowed_values[name])}")
        given[name] = value
    return supervision.Filters(**given)


def _by_class(
    now: supervision.Current, filters: supervision.Filters, field: str, items: list[Any],
    label: Callable[[Any], str],
) -> list[tuple[str, dict[str, int]]]:  # fmt: skip
    """Class counts of each district (or industry), the other filters kept."""
    out = []
    for item in items:
        if not item.code or not item.count:
            continue
        narrowed = dataclasses.replace(filters, **{field: item.code})
        out.append((label(item), supervision.summary(now, now.matching(narrowed)).by_class))
    return out


@router.get("/supervision", name="console_supervision")
def supervision_page(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey,
    district: str | None = None, industry: str | None = None,
    supervision_class: str | None = None, grade: str | None = None, page: int = 1,
) -> Response:  # fmt: skip
    require(key, Permission.SUPERVISION)
    params = {"district": district, "industry": industry,
              "supervision_class": supervision_class, "grade": grade}  # fmt: skip
    filters = _filters(services, params)
    now = supervision.current(services, session)
    rows = now.select(filters)
    page = max(page, 1)
    shown = supervision.page_rows(now, rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    overall = supervision.summary(now, now.matching(filters))
    request.state.outcome = f"rows={len(rows)}"
    lang = language(request)
    classes = [c.name for c in services.policy.classes]
    districts = _by_class(now, filters, "district", overall.by_district,
                          lambda item: item.name or str(item.code))  # fmt: skip
    industries = _by_class(now, filters, "industry", overall.by_industry,
                           lambda item: f"{item.code} {(item.name or '')[:8]}")  # fmt: skip
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    return render(
        request, "supervision.html", key, rows=shown, total=len(rows), page=page,
        pages=max((len(rows) + PAGE_SIZE - 1) // PAGE_SIZE, 1), params=params, query=query,
        choices=supervision.allowed_filters(services.policy),
        district_names={i.code: i.name for i in overall.by_district if i.code and i.name},
        grade_chart=charts.bars(list(overall.by_grade.items()), title=translate("by_grade", lang)),
        district_chart=charts.stacked(districts, classes, title=translate("by_district", lang)),
        industry_chart=charts.stacked(industries, classes, title=translate("by_industry", lang)),
    )  # fmt: skip


@router.get("/supervision.csv", name="console_supervision_csv")
def supervision_csv(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey,
    district: str | None = None, industry: str | None = None,
    supervision_class: str | None = None, grade: str | None = None,
) -> Response:  # fmt: skip
    require(key, Permission.SUPERVISION)
    filters = _filters(
        services,
        {
            "district": district,
            "industry": industry,
            "supervision_class": supervision_class,
            "grade": grade,
        },
    )
    now = supervision.current(services, session)
    rows = now.select(filters)
    request.state.outcome = f"rows={len(rows)}"
    name = f"supervision_{scores.served(services).as_of.isoformat()}.csv"
    return StreamingResponse(
        supervision.csv_chunks(now, rows), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip


@router.get("/policy", name="console_policy")
def policy_page(request: Request, services: ServicesDep, key: ConsoleKey) -> Response:
    require(key, Permission.POLICY)
    return render(request, "policy.html", key, policy=policy_view(services))


# ---- operator: objections, repairs, data quality --------------------------------------------


@router.get("/operator", name="console_operator")
def operator_page(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey
) -> Response:
    require(key, Permission.OBJECTION_RESOLVE)
    day = service_today()
    size = services.settings.page_size_max
    open_objections, _ = objections.list_objections(
        services, session, key, status=ObjectionStatus.OPEN, overdue=False, uscc=None,
        page=1, size=size, day=day,
    )  # fmt: skip
    pending, _ = repairs.list_repairs(
        services, session, key, status=RepairStatus.UNDER_REVIEW, uscc=None, page=1, size=size
    )
    request.state.outcome = f"objections={len(open_objections)} repairs={len(pending)}"
    return render(
        request, "operator.html", key,
        objections=[objections.to_response(o, day) for o in open_objections],
        repairs=[repairs.to_response(r) for r in pending], outcomes=list(ObjectionOutcome),
        quality=_quality(services), today=day,
    )  # fmt: skip


def _quality(services: Services) -> dict[str, Any] | None:
    """The data quality report of the last ingest (``wzcredit quality`` writes it)."""
    path = services.settings.quality_report
    if path is None or not path.exists():
        return None
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


@router.post("/objections/{objection_id}/resolve", name="console_resolve")
def resolve_objection(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey,
    objection_id: int, outcome: Annotated[str, Form()],
    resolution: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    require(key, Permission.OBJECTION_RESOLVE)
    try:
        chosen = ObjectionOutcome(outcome)
    except ValueError:
        codes = " ".join(o.value for o in ObjectionOutcome)
        raise ServiceError("outcome", "choice", f"one of {codes}") from None
    objections.resolve_objection(
        services, session, key, objection_id, chosen, resolution or chosen.value,
        service_today(),
    )  # fmt: skip
    return RedirectResponse(request.url_for("console_operator"), status_code=303)


@router.post("/repairs/{repair_id}/{action}", name="console_decide_repair")
def decide_repair(
    request: Request, services: ServicesDep, session: SessionDep, key: ConsoleKey,
    repair_id: int, action: str, note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    require(key, Permission.REPAIR_DECIDE)
    deciders = {"approve": repairs.approve_repair, "reject": repairs.reject_repair}
    if action not in deciders:
        raise ServiceError("action", "choice", "approve or reject")
    deciders[action](services, session, key, repair_id, note or action, service_today())
    return RedirectResponse(request.url_for("console_operator"), status_code=303)


__all__ = ["router"]
