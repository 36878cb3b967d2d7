"""Fixtures shared by every test folder: deliveries built by hand and a fresh warehouse."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# tests run offline: MLflow must not try to send usage telemetry
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# LightGBM's OpenMP threads spin while waiting; on 2 busy cores that slows fits 50-fold
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from tests.features.conftest import Rows, write_delivery

# the small synthetic warehouse and models shared by the scoring and service tests
from tests.fixtures.scoring import challenger, champion, score_matrix, scoring_data

__all__ = ["challenger", "champion", "score_matrix", "scoring_data"]


@pytest.fixture
def make_delivery(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_delivery(tables, name="d1", fmt="csv", delivery_id=...)``."""
    counter = iter(range(1_000))

    def factory(tables: dict[str, Rows], name: str | None = None, **kwargs: object) -> Path:
        return write_delivery(
            tmp_path / (name or f"delivery{next(counter)}"),
            tables,
            **kwargs,  # type: ignore[arg-type]
        )

    return factory


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "wzcredit.duckdb"
