"""The console in a real browser: sign in per role, search, reasons, pre-approval, the
regulator's filter and CSV export, an operator resolving an objection, refusals."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.db.tables import Objection
from api.services import supervision
from api.state import Services
from tests.api.conftest import Keys, Workspace
from tests.api.console.conftest import shot
from tests.api.remedies import counted_penalties, subject_key

pytestmark = pytest.mark.slow


def key_of(header: dict[str, str]) -> str:
    return header["Authorization"].removeprefix("Bearer ")


def sign_in(page: Any, live_url: str, header: dict[str, str]) -> None:
    page.goto(f"{live_url}/console")
    page.fill("input[name=api_key]", key_of(header))
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize(
    ("role", "lands_on"),
    [("underwriter", "/console/search"), ("regulator", "/console/supervision"),
     ("analyst", "/console/supervision"), ("admin", "/console/operator"),
     ("subject", "/console/entities/")],
)  # fmt: skip
def test_sign_in_lands_on_the_roles_page(
    page: Any, live_url: str, keys: Keys, role: str, lands_on: str
) -> None:
    sign_in(page, live_url, getattr(keys, role))
    assert lands_on in page.url
    assert page.locator("header .who").inner_text().strip() != ""


def test_a_wrong_key_is_refused(page: Any, live_url: str) -> None:
    page.goto(f"{live_url}/console")
    page.fill("input[name=api_key]", "wzc_nope_nope")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "密钥无效或已吊销"


def test_underwriter_searches_reads_reasons_and_runs_a_preapproval(
    page: Any, live_url: str, keys: Keys, services: Services
) -> None:
    uscc = keys.enterprise.uscc
    row = services.snapshot.score_row(uscc) if services.snapshot else {}
    sign_in(page, live_url, keys.underwriter)
    page.fill("input[name=q]", uscc)
    page.click("form.inline button[type=submit]")
    page.wait_for_url(f"**/console/entities/{uscc}**")
    assert page.locator("[data-test=score]").inner_text() == str(row["score"])
    assert page.locator("[data-test=grade]").inner_text() == row["grade"]
    reasons = page.locator("[data-test=reasons] li").all_inner_texts()
    stored = [row[f"reason_{k}_code"] for k in range(1, 5) if row.get(f"reason_{k}_code")]
    assert [text.split()[0] for text in reasons] == stored
    assert all("：" in text for text in reasons)  # Chinese reason texts: 标签：取值
    assert page.locator("svg.chart").count() == 1  # the SHAP bar chart
    shot(page, "underwriter_entity")

    page.click("[data-test=run-preapproval]")
    page.wait_for_selector("[data-test=preapproval-result]")
    assert (
        page.locator("[data-test=decision]").get_attribute("class").split()[-1] == row["decision"]
    )
    # the bank's PBOC report shows a 90+ days late month: declined, limit 0
    page.fill("textarea[name=pboc_report]", "A1 " + "N" * 23 + "4")
    page.click("[data-test=run-preapproval]")
    page.wait_for_selector("[data-test=preapproval-result]")
    assert "decline" in page.locator("[data-test=decision]").get_attribute("class")
    assert page.locator("[data-test=limit]").inner_text() == "0"
    shot(page, "underwriter_preapproval")


def test_the_entity_page_fits_a_phone(page: Any, live_url: str, keys: Keys) -> None:
    sign_in(page, live_url, keys.underwriter)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_url}/console/entities/{keys.enterprise.uscc}?purpose=loan_approval")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    shot(page, "underwriter_entity_phone")


def test_english_is_switchable(page: Any, live_url: str, keys: Keys) -> None:
    sign_in(page, live_url, keys.regulator)
    page.goto(f"{live_url}/console/policy?lang=en")
    assert "Supervision policy" in page.locator("h1").inner_text()
    page.goto(f"{live_url}/console/policy")  # the choice is kept
    assert "Supervision policy" in page.locator("h1").inner_text()


def test_regulator_filters_and_exports_csv(
    page: Any, live_url: str, keys: Keys, services: Services
) -> None:
    sign_in(page, live_url, keys.regulator)
    shot(page, "regulator_distribution")
    page.select_option("select[name=supervision_class]", "C")
    page.click("[data-test=apply-filter]")
    page.wait_for_url("**supervision_class=C**")
    with services.database.session() as session:
        now = supervision.current(services, session)
        expected = len(now.select(supervision.Filters(supervision_class="C")))
    assert page.locator("[data-test=total]").inner_text().replace(",", "") == str(expected)
    classes = page.locator("[data-test=inspection-list] td.class-C").count()
    assert classes == min(expected, 50)
    with page.expect_download() as download:
        page.click("[data-test=export]")
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == expected
    assert {r["supervision_class"] for r in rows} <= {"C"}


def test_operator_resolves_an_objection(
    page: Any, live_url: str, keys: Keys, services: Services, workspace: Workspace,
    client: TestClient,
) -> None:  # fmt: skip
    penalty = counted_penalties(workspace, services)[0]
    raised = client.post(
        "/v1/objections",
        json={"uscc": penalty.uscc, "record_table": "admin_penalties",
              "record_id": penalty.case_no, "statement": "该处罚决定已被撤销"},
        headers=subject_key(services, penalty.uscc),
    )  # fmt: skip
    assert raised.status_code == 201, raised.text
    objection_id = raised.json()["id"]
    sign_in(page, live_url, keys.admin)
    assert page.locator(f"[data-test=objection-{objection_id}]").count() == 1
    shot(page, "operator_objections")
    row = page.locator(f"[data-test=objection-{objection_id}]")
    row.locator("select[name=outcome]").select_option("维持")
    row.locator(f"[data-test=resolve-{objection_id}]").click()
    page.wait_for_load_state()
    assert page.locator(f"[data-test=objection-{objection_id}]").count() == 0
    with services.database.session() as session:
        stored = session.scalar(select(Objection).where(Objection.id == objection_id))
        assert stored is not None
        assert (stored.status, stored.outcome) == ("resolved", "维持")


@pytest.mark.parametrize(
    ("role", "path"),
    [("regulator", "/console/operator"), ("underwriter", "/console/supervision"),
     ("admin", "/console/search"), ("subject", "/console/policy")],
)  # fmt: skip
def test_a_role_is_refused_a_page_it_may_not_see(
    page: Any, live_url: str, keys: Keys, role: str, path: str
) -> None:
    sign_in(page, live_url, getattr(keys, role))
    response = page.goto(f"{live_url}{path}")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "当前角色无权访问此页面"


def test_without_signing_in_a_page_sends_to_the_sign_in(page: Any, live_url: str) -> None:
    page.goto(f"{live_url}/console/supervision")
    assert page.url.rstrip("/").endswith("/console")
    assert page.locator("input[name=api_key]").count() == 1


def test_a_bad_filter_names_the_field_and_the_allowed_values(
    page: Any, live_url: str, keys: Keys
) -> None:
    sign_in(page, live_url, keys.regulator)
    response = page.goto(f"{live_url}/console/supervision?supervision_class=Z")
    assert response.status == 400
    assert page.locator("main p").inner_text().startswith("supervision_class: choice: one of A")
