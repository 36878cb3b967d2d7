"""The supervision list, its CSV export and summary, and the policy endpoint (both databases).

Expected lists are computed with pandas from the snapshot and the register, independently
of the service's numpy filtering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from api.db.tables import EntityRescore
from api.services import supervision
from api.services.supervision import CSV_COLUMNS, Filters, mask_business_name
from api.state import Services
from scoring.policy import DEFAULT_POLICY_PATH
from scoring.scale import score_from_pd
from tests.api.conftest import Keys, Workspace

ROW_FIELDS = {
    "uscc",
    "name",
    "entity_type",
    "district",
    "district_name",
    "industry",
    "industry_name",
    "grade",
    "supervision_class",
    "sampling_ratio",
    "inspections_per_year",
    "overrides",
    "rescored",
}


def expected(workspace: Workspace, services: Services) -> pd.DataFrame:
    """The list by pandas: snapshot ⋈ register, sorted by class (worst first), then USCC."""
    scores = workspace.snapshot.scores.to_pandas()
    frame = pd.DataFrame(
        {
            "uscc": scores["uscc"].astype(str),
            "grade": scores["grade"].astype(str),
            "supervision_class": scores["supervision_class"].astype(str),
            "sampling_ratio": scores["sampling_ratio"],
            "overrides": [";".join(o) for o in scores["overrides"]],
        }
    )
    register = pd.DataFrame(
        [
            (f.uscc, f.name, f.entity_type, f.district, f.industry)
            for f in workspace.directory.entities.values()
        ],
        columns=["uscc", "register_name", "entity_type", "district", "industry"],
    )
    frame = frame.merge(register, on="uscc", how="left", validate="one_to_one")
    risk = {c.name: i for i, c in enumerate(services.policy.classes)}
    frame["risk"] = frame["supervision_class"].map(risk)
    return frame.sort_values(["risk", "uscc"], ascending=[False, True]).reset_index(drop=True)


def where(frame: pd.DataFrame, filters: dict[str, str]) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for column, value in filters.items():
        mask &= frame[column] == value
    return frame[mask]


def all_pages(client: TestClient, headers: dict[str, str], size: int, **filters: str) -> Any:
    rows, page, total = [], 1, None
    while total is None or len(rows) < total:
        response = client.get(
            "/v1/supervision", params={**filters, "page": page, "size": size}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        total = body["total"]
        assert body["rows"] or not total
        rows += body["rows"]
        page += 1
    return total, rows


def sample_filters(frame: pd.DataFrame) -> list[dict[str, str]]:
    """Filters built from the data: none, each alone, combined, and one matching nothing."""
    first = frame.iloc[len(frame) // 2]
    return [
        {},
        {"district": first["district"]},
        {"industry": first["industry"], "supervision_class": "D"},
        {"grade": first["grade"]},
        {
            "district": first["district"],
            "industry": first["industry"],
            "supervision_class": first["supervision_class"],
            "grade": first["grade"],
        },
        {
            "supervision_class": "A",
            "grade": frame[frame["supervision_class"] == "D"]["grade"].iloc[-1],
        },
    ]


def test_filters_and_pagination_agree_with_pandas(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    frame = expected(workspace, services)
    size = services.settings.page_size_max
    for filters in sample_filters(frame):
        want = where(frame, filters)
        total, rows = all_pages(client, keys.regulator, size, **filters)
        assert total == len(want), filters
        assert [r["uscc"] for r in rows] == want["uscc"].tolist(), filters
    # a page in the middle: rows 8-14 of the list
    middle = client.get(
        "/v1/supervision", params={"page": 2, "size": 7}, headers=keys.analyst
    ).json()
    assert [r["uscc"] for r in middle["rows"]] == frame["uscc"].iloc[7:14].tolist()
    assert (middle["page"], middle["size"], middle["total"]) == (2, 7, len(frame))
    beyond = client.get("/v1/supervision", params={"page": 10_000}, headers=keys.analyst).json()
    assert (beyond["rows"], beyond["total"]) == ([], len(frame))


def test_rows_show_supervision_only_and_mask_business_names(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    frame = expected(workspace, services).set_index("uscc")
    total, rows = all_pages(client, keys.regulator, services.settings.page_size_max)
    assert total == len(frame)
    businesses = 0
    for row in rows:
        assert set(row) == ROW_FIELDS  # no PD, no reasons, no legal representative
        facts = frame.loc[row["uscc"]]
        assert row["sampling_ratio"] == facts["sampling_ratio"]
        assert row["overrides"] == (facts["overrides"].split(";") if facts["overrides"] else [])
        if facts["entity_type"] == "个体工商户":
            businesses += 1
            assert row["name"] == mask_business_name(facts["register_name"])
            assert row["name"] != facts["register_name"]
        else:
            assert row["name"] == facts["register_name"]
    assert businesses > 0


def test_invalid_filters_name_the_field_and_the_allowed_values(
    client: TestClient, keys: Keys, services: Services
) -> None:
    bad = {"district": "123456", "industry": "Z", "supervision_class": "E", "grade": "ZZ"}
    response = client.get("/v1/supervision", params=bad, headers=keys.regulator)
    assert response.status_code == 422
    detail = {d["field"]: d for d in response.json()["detail"]}
    assert set(detail) == set(bad)
    allowed = supervision.allowed_filters(services.policy)
    for field, values in allowed.items():
        assert detail[field]["rule"] == "enum"
        assert all(v in detail[field]["message"] for v in values)
    for path in ("/v1/supervision.csv", "/v1/supervision/summary"):
        refused = client.get(path, params={"grade": "ZZ"}, headers=keys.regulator)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["field"] == "grade"
    limit = services.settings.page_size_max
    too_big = client.get("/v1/supervision", params={"size": limit + 1}, headers=keys.regulator)
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["field"] == "size"
    assert str(limit) in too_big.json()["detail"][0]["message"]
    page_zero = client.get("/v1/supervision", params={"page": 0}, headers=keys.regulator)
    assert page_zero.status_code == 422


def test_other_roles_are_refused(client: TestClient, keys: Keys) -> None:
    for path in ("/v1/supervision", "/v1/supervision.csv", "/v1/supervision/summary"):
        for headers in (keys.underwriter, keys.admin, keys.subject):
            assert client.get(path, headers=headers).status_code == 403
        assert client.get(path).status_code == 401


def read_csv(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), encoding="utf-8-sig", dtype=str, keep_default_na=False)


def test_csv_export_parses_back_to_the_same_rows(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    frame = expected(workspace, services)
    for filters in sample_filters(frame)[:3]:
        response = client.get("/v1/supervision.csv", params=filters, headers=keys.regulator)
        assert response.status_code == 200
        assert response.content.startswith(supervision.BOM)
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"].startswith("attachment;")
        exported = read_csv(response.content)
        assert tuple(exported.columns) == CSV_COLUMNS
        _, rows = all_pages(client, keys.regulator, services.settings.page_size_max, **filters)
        assert exported["uscc"].tolist() == [r["uscc"] for r in rows]
        assert exported["name"].tolist() == [r["name"] or "" for r in rows]
        assert exported["supervision_class"].tolist() == [r["supervision_class"] for r in rows]
        assert exported["overrides"].tolist() == [";".join(r["overrides"]) for r in rows]
        assert exported["sampling_ratio"].astype(float).tolist() == [
            r["sampling_ratio"] for r in rows
        ]
        assert exported["uscc"].tolist() == where(frame, filters)["uscc"].tolist()


def test_csv_chunks_join_into_one_table(client: TestClient, services: Services, keys: Keys) -> None:
    client.get("/v1/policy", headers=keys.regulator)  # the services started
    with services.database.session() as session:
        now = supervision.current(services, session)
    rows = now.select(Filters())
    whole = b"".join(supervision.csv_chunks(now, rows))
    pieces = list(supervision.csv_chunks(now, rows, chunk=97))
    assert len(pieces) == 1 + -(-len(rows) // 97)
    assert b"".join(pieces) == whole
    assert len(read_csv(whole)) == len(rows)
    empty = read_csv(b"".join(supervision.csv_chunks(now, rows[:0])))
    assert (len(empty), tuple(empty.columns)) == (0, CSV_COLUMNS)


def test_summary_counts_agree_with_pandas(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    frame = expected(workspace, services)
    for filters in sample_filters(frame)[:2]:
        want = where(frame, filters)
        response = client.get("/v1/supervision/summary", params=filters, headers=keys.analyst)
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == len(want)
        assert {k: v for k, v in body["by_class"].items() if v} == (
            want["supervision_class"].value_counts().to_dict()
        )
        assert {k: v for k, v in body["by_grade"].items() if v} == (
            want["grade"].value_counts().to_dict()
        )
        pairs = want.groupby(["supervision_class", "grade"]).size().to_dict()
        assert {
            (c, g): n
            for c, grades in body["by_class_grade"].items()
            for g, n in grades.items()
            if n
        } == pairs
        assert {d["code"]: d["count"] for d in body["by_district"] if d["count"]} == (
            want["district"].value_counts().to_dict()
        )
        assert {d["code"]: d["count"] for d in body["by_industry"] if d["count"]} == (
            want["industry"].value_counts().to_dict()
        )
        assert list(body["by_class"]) == [c.name for c in services.policy.classes]


def test_newest_rescore_replaces_the_snapshot_row(
    client: TestClient, keys: Keys, workspace: Workspace, services: Services
) -> None:
    frame = expected(workspace, services)
    target = frame[frame["supervision_class"] == "A"]["uscc"].iloc[0]
    row = workspace.snapshot.score_row(target)
    result = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
    worse = services.policy.supervision("D")
    middle = services.policy.supervision("C")
    with services.database.session() as session:
        for klass, grade, overrides in (
            (worse, "CC", ["punish:gov_blacklisted"]),
            (middle, middle.grades[0], []),
        ):
            session.add(
                EntityRescore(
                    uscc=target,
                    snapshot_id=services.snapshot_id,
                    cause="objection:test",
                    model_version="1",
                    policy_version=services.policy.version,
                    result={
                        **result,
                        "grade": grade,
                        "supervision_class": klass.name,
                        "sampling_ratio": klass.sampling_ratio,
                        "inspections_per_year": klass.inspections_per_year,
                        "overrides": overrides,
                    },
                )
            )
    total, rows = all_pages(
        client, keys.regulator, services.settings.page_size_max, supervision_class="C"
    )
    assert total == (frame["supervision_class"] == "C").sum() + 1
    mine = [r for r in rows if r["uscc"] == target]
    assert len(mine) == 1
    assert mine[0]["grade"] == middle.grades[0]
    assert mine[0]["rescored"] is True
    assert mine[0]["overrides"] == []  # the newest rescore wins
    assert mine[0]["sampling_ratio"] == middle.sampling_ratio
    in_c = frame[frame["supervision_class"] == "C"]["uscc"].tolist()
    assert [r["uscc"] for r in rows] == sorted([*in_c, target])
    summary = client.get("/v1/supervision/summary", headers=keys.regulator).json()
    counts = frame["supervision_class"].value_counts()
    assert summary["by_class"]["A"] == counts["A"] - 1
    assert summary["by_class"]["C"] == counts["C"] + 1
    exported = read_csv(
        client.get(
            "/v1/supervision.csv", params={"supervision_class": "C"}, headers=keys.regulator
        ).content
    )
    assert exported.loc[exported["uscc"] == target, "rescored"].tolist() == ["true"]


def policy_yaml() -> tuple[str, dict[str, Any]]:
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    return text, yaml.safe_load(text)


@pytest.mark.parametrize("role", ["underwriter", "regulator", "analyst", "admin"])
def test_policy_agrees_with_policy_yaml(
    client: TestClient, keys: Keys, services: Services, role: str
) -> None:
    response = client.get("/v1/policy", headers=getattr(keys, role))
    assert response.status_code == 200
    body = response.json()
    text, raw = policy_yaml()
    assert body["version"] == raw["version"]
    assert body["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert [(b["grade"], b["pd_max"]) for b in body["master_scale"]] == [
        (g["grade"], g["pd_max"]) for g in raw["grades"]
    ]
    class_of = {grade: c["class"] for c in raw["classes"] for grade in c["grades"]}
    previous = None
    for band in body["master_scale"]:
        assert band["supervision_class"] == class_of[band["grade"]]
        low = score_from_pd([band["pd_max"]], services.policy.score)[0]
        assert band["score_from"] == pytest.approx(low, abs=0.005)
        if previous is not None:
            assert band["pd_above"] == previous["pd_max"]
            assert band["score_to"] == previous["score_from"]
        previous = band
    assert [
        (c["supervision_class"], c["grades"], c["sampling_ratio"], c["inspections_per_year"])
        for c in body["classes"]
    ] == [
        (c["class"], c["grades"], c["sampling_ratio"], c["inspections_per_year"])
        for c in raw["classes"]
    ]
    groups = {g["group"]: g for g in body["pre_approval"]["target_groups"]}
    for group in raw["pre_approval"]["target_groups"]:
        got = groups[group["group"]]
        assert (got["max_limit"], got["rate_discount_bp"], got["zh"]) == (
            group["max_limit"],
            group["rate_discount_bp"],
            group["zh"],
        )
    for key in (
        "approve_max_pd",
        "refer_max_pd",
        "grade_rate_discount_bp",
        "decline_on_pboc_status",
    ):
        assert body["pre_approval"][key] == raw["pre_approval"][key]
    assert body["overrides"]["punish_flags"] == raw["overrides"]["punish_flags"]
    assert body["xinyipi_grades"] == raw["xinyipi"]["grades"]
    assert body["xinyizu_grades"] == raw["xinyizu"]["grades"]
    assert body["decision_reasons"]["pd_decline"] == raw["decision_reasons"]["pd_decline"]
    # the sources the policy cites for its classes, from the comments above the section
    block = text[: text.index("\nclasses:")].rsplit("\n\n", 1)[-1]
    cited = [line.lstrip("#").strip().removeprefix("----").strip() for line in block.splitlines()]
    assert all(part in body["notes"]["classes"] for part in cited)
    assert any("〔" in part for part in cited)  # it cites a document
    assert "pre_approval" in body["notes"]


def test_policy_is_refused_to_subjects(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/policy", headers=keys.subject).status_code == 403
