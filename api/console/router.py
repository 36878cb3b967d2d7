"""控制台 / the web console: pages for underwriters, regulators and the platform operator.

Server-rendered (Jinja2) from the same service functions as the JSON API, so a page shows
exactly what the API would answer the same key, with the same access rules, consent checks
and query log. Chinese by default, English with ``?lang=en`` (kept in a cookie).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

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
from features.errors import FeatureError
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
HANDLED = (ServiceError, FeatureError, ScoringError)

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


def failure(request: Request, key: KeyInfo | None, exc: Exception) -> HTMLResponse:
    """A refused or failed request as a page, with the field and rule like the API's errors."""
    from api.handlers import status_of  # noqa: PLC0415

    status = status_of(exc)
    lang = language(request)
    if isinstance(exc, Forbidden) and getattr(exc, "field", "") == "role":
        heading, message = translate("forbidden", lang), translate("forbidden", lang)
    else:
        heading = translate("error", lang)
        message = f"{exc.field}: {exc.rule}: {exc.message}"  # type: ignore[attr-defined]
    request.state.outcome = f"error:{getattr(exc, 'field', '')}:{getattr(exc, 'rule', '')}"
    return render(request, "message.html", key, status, heading=heading, message=message)


def signed_in(request: Request, services: Services) -> KeyInfo | None:
    try:
        return resolve(request, services, request.cookies.get(COOKIE))
    except Unauthenticated:
        return None


def require(key: KeyInfo, permission: Permission) -> None:
    if not allowed(key.role, permission):
        raise Forbidden("role", permission.value, f"role {key.role} may not see this page")


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("console_home"), status_code=303)


# ---- signing in -----------------------------------------------------------------------------


@router.get("", name="console_home")
def home(request: Request, services: ServicesDep) -> Response:
    key = signed_in(request, services)
    if key is None:
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
    request: Request, services: ServicesDep, session: SessionDep,
    q: str | None = None, purpose: str | None = None,
) -> Response:  # fmt: skip
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
        require(key, Permission.SCORE_ENTITY)
        chosen = _purpose(purpose)
        if key.role is Role.SUBJECT and not q:
            q = key.subject_id  # a subject sees itself
        results = []
        if q:
            code = q.strip().upper()
            if is_valid_resident_id(code):
                require(key, Permission.SCORE_PERSON)
                person_purpose = chosen if key.role is Role.UNDERWRITER else None
                results = scores.person_scores(
                    services, session, key, code, person_purpose, request
                )
            else:
                url = request.url_for("console_entity", uscc=code)
                return RedirectResponse(f"{url}?purpose={chosen.value}", status_code=303)
    except HANDLED as exc:
        return failure(request, key, exc)
    return render(
        request, "search.html", key, q=q, purpose=chosen.value, results=results,
        purposes=[p.value for p in PURPOSES],
    )  # fmt: skip


def _summary(services: Services, uscc: str, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """What each source says about the entity, from the served view."""
    from features.view import feature_specs  # noqa: PLC0415

    specs = {s.name: s for s in feature_specs()}
    snapshot = scores.served(services)
    out = []
    for source, names in SUMMARY_FEATURES.items():
        values = snapshot.view_values(uscc, list(names))
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
    request: Request, services: Services, session: Any, key: KeyInfo, uscc: str,
    purpose: Purpose, **extra: Any,
) -> HTMLResponse:  # fmt: skip
    wanted = purpose if key.role is Role.UNDERWRITER else None
    score = scores.entity_score(services, session, key, uscc, wanted, request)
    lang = language(request)
    chart = charts.contributions(
        [(r.en if lang == "en" else r.zh, r.contribution) for r in score.reasons],
        title=translate("reasons", lang),
    )  # fmt: skip
    return render(
        request, "entity.html", key, s=score, summary=_summary(services, score.identity.uscc, lang),
        reasons_chart=chart, purpose=purpose.value, **extra,
    )  # fmt: skip


@router.get("/entities/{uscc}", name="console_entity")
def entity(
    request: Request, services: ServicesDep, session: SessionDep, uscc: str,
    purpose: str | None = None,
) -> Response:  # fmt: skip
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
        require(key, Permission.SCORE_ENTITY)
        return _entity_page(request, services, session, key, uscc, _purpose(purpose))
    except HANDLED as exc:
        return failure(request, key, exc)


def parse_report_text(text: str | None) -> dict[str, Any] | None:
    """The form's PBOC report: one account a line, ``<account id> <24 status symbols>``."""
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
    request: Request, services: ServicesDep, session: SessionDep, uscc: str,
    pboc_report: Annotated[str, Form(max_length=5000)] = "",
) -> Response:  # fmt: skip
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
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
    except HANDLED as exc:
        session.rollback()  # nothing of a refused pre-approval is kept
        return failure(request, key, exc)


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


@router.get("/supervision", name="console_supervision")
def supervision_page(
    request: Request, services: ServicesDep, session: SessionDep,
    district: str | None = None, industry: str | None = None,
    supervision_class: str | None = None, grade: str | None = None, page: int = 1,
) -> Response:  # fmt: skip
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
        require(key, Permission.SUPERVISION)
        params = {"district": district, "industry": industry,
                  "supervision_class": supervision_class, "grade": grade}  # fmt: skip
        filters = _filters(services, params)
        now = supervision.current(services, session)
        rows = now.select(filters)
        page = max(page, 1)
        shown = supervision.page_rows(now, rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
        overall = supervision.summary(now, now.matching(filters))
        lang = language(request)
        classes = [c.name for c in services.policy.classes]
        by_district = [
            (item.name or str(item.code),
             supervision.summary(now, now.matching(supervision.Filters(
                 district=item.code, industry=filters.industry,
                 supervision_class=filters.supervision_class, grade=filters.grade))).by_class)
            for item in overall.by_district if item.code and item.count
        ]  # fmt: skip
        by_industry = [
            (f"{item.code} {(item.name or '')[:8]}",
             supervision.summary(now, now.matching(supervision.Filters(
                 industry=item.code, district=filters.district,
                 supervision_class=filters.supervision_class, grade=filters.grade))).by_class)
            for item in overall.by_industry if item.code and item.count
        ]  # fmt: skip
        request.state.outcome = f"rows={len(rows)}"
    except HANDLED as exc:
        return failure(request, key, exc)
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    return render(
        request, "supervision.html", key, rows=shown, total=len(rows), page=page,
        pages=max((len(rows) + PAGE_SIZE - 1) // PAGE_SIZE, 1), params=params, query=query,
        choices=supervision.allowed_filters(services.policy),
        district_names=dict(zip(*_district_pairs(), strict=True)),
        grade_chart=charts.bars(list(overall.by_grade.items()),
                                title=translate("by_grade", lang)),
        district_chart=charts.stacked(by_district, classes, title=translate("by_district", lang)),
        industry_chart=charts.stacked(by_industry, classes, title=translate("by_industry", lang)),
    )  # fmt: skip


def _district_pairs() -> tuple[list[str], list[str]]:
    from api.services.supervision import _district_table  # noqa: PLC0415

    table = _district_table()
    return list(table), list(table.values())


@router.get("/supervision.csv", name="console_supervision_csv")
def supervision_csv(
    request: Request, services: ServicesDep, session: SessionDep,
    district: str | None = None, industry: str | None = None,
    supervision_class: str | None = None, grade: str | None = None,
) -> Response:  # fmt: skip
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
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
    except HANDLED as exc:
        return failure(request, key, exc)
    request.state.outcome = f"rows={len(rows)}"
    name = f"supervision_{scores.served(services).as_of.isoformat()}.csv"
    return StreamingResponse(
        supervision.csv_chunks(now, rows), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip


@router.get("/policy", name="console_policy")
def policy_page(request: Request, services: ServicesDep) -> Response:
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
        require(key, Permission.POLICY)
    except HANDLED as exc:
        return failure(request, key, exc)
    view = policy_view(services)
    return render(request, "policy.html", key, policy=view)


# ---- operator: objections, repairs, data quality --------------------------------------------


@router.get("/operator", name="console_operator")
def operator_page(request: Request, services: ServicesDep, session: SessionDep) -> Response:
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
        require(key, Permission.OBJECTION_RESOLVE)
        day = service_today()
        open_objections, _ = objections.list_objections(
            services, session, key, status=ObjectionStatus.OPEN, overdue=False, uscc=None,
            page=1, size=services.settings.page_size_max, day=day,
        )  # fmt: skip
        shown = [objections.to_response(o, day) for o in open_objections]
        pending, _ = repairs.list_repairs(
            services, session, key, status=RepairStatus.UNDER_REVIEW, uscc=None, page=1,
            size=services.settings.page_size_max,
        )  # fmt: skip
        request.state.outcome = f"objections={len(shown)} repairs={len(pending)}"
    except HANDLED as exc:
        return failure(request, key, exc)
    return render(
        request, "operator.html", key, objections=shown,
        repairs=[repairs.to_response(r) for r in pending], outcomes=list(ObjectionOutcome),
        quality=_quality(services), today=day,
    )  # fmt: skip


def _quality(services: Services) -> dict[str, Any] | None:
    """The data quality report of the last ingest (``wzcredit quality`` writes it)."""
    import json  # noqa: PLC0415

    path = services.settings.quality_report
    if path is None or not path.exists():
        return None
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


@router.post("/objections/{objection_id}/resolve", name="console_resolve")
def resolve_objection(
    request: Request, services: ServicesDep, session: SessionDep, objection_id: int,
    outcome: Annotated[str, Form()], resolution: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
        require(key, Permission.OBJECTION_RESOLVE)
        try:
            chosen = ObjectionOutcome(outcome)
        except ValueError:
            raise ServiceError("outcome", "choice", "one of 更正 删除 维持 标注") from None
        objections.resolve_objection(
            services, session, key, objection_id, chosen, resolution or chosen.value,
            service_today(),
        )  # fmt: skip
    except HANDLED as exc:
        session.rollback()
        return failure(request, key, exc)
    return RedirectResponse(request.url_for("console_operator"), status_code=303)


@router.post("/repairs/{repair_id}/{action}", name="console_decide_repair")
def decide_repair(
    request: Request, services: ServicesDep, session: SessionDep, repair_id: int, action: str,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    key = signed_in(request, services)
    if key is None:
        return to_login(request)
    try:
        require(key, Permission.REPAIR_DECIDE)
        if action not in ("approve", "reject"):
            raise ServiceError("action", "choice", "approve or reject")
        decide = repairs.approve_repair if action == "approve" else repairs.reject_repair
        decide(services, session, key, repair_id, note or action, service_today())
    except HANDLED as exc:
        session.rollback()
        return failure(request, key, exc)
    return RedirectResponse(request.url_for("console_operator"), status_code=303)


__all__ = ["router"]
