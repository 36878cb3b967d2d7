"""Fixtures of the scoring tests: a small synthetic warehouse and real models trained on it.

Everything is session-scoped and built on first use (nothing is fitted at import), so that
the scoring tests share one generation (3,000 entities, about 5 s) and one fit of each model:

- `scoring_data`: labelled training and validation snapshots of the view, and the view as
  of `SCORE_AS_OF` (unlabelled, later than both): the rows a batch scoring run would score;
- `champion`: the calibrated LightGBM champion, early-stopped and calibrated on validation;
- `challenger`: the calibrated WOE scorecard;
- `score_matrix`: the model matrix of the rows to score (`Design.matrix`).

Models are shared: tests must not refit or mutate them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from features.ingest import ingest_delivery
from features.synthetic import GeneratorConfig, generate
from features.view import build_view
from features.view.engine import duckdb_tables
from models.calibration import CalibratedModel, calibrate
from models.champion import LightGBMChampion
from models.datasets import TARGET, Design, snapshots
from models.scorecard import WOEScorecard

ENTITIES = 3_000
SEED = 7
TRAIN_AS_OF = (dt.date(2017, 12, 31), dt.date(2018, 6, 30))
VALIDATION_AS_OF = dt.date(2018, 12, 31)
SCORE_AS_OF = dt.date(2019, 12, 31)


@dataclass(frozen=True)
class ScoringData:
    """View rows of the small synthetic warehouse.

    Attributes
    ----------
    train, validation
        Labelled snapshots (view columns and ``default_12m``) for fitting and calibrating.
    score
        The view as of `SCORE_AS_OF`: ``uscc``, ``as_of`` and every feature, no label.
    design
        Which columns the models see (from the feature metadata).
    warehouse
        The DuckDB file, for tests that need the tables themselves.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    score: pd.DataFrame
    design: Design
    warehouse: Path


@pytest.fixture(scope="session")
def scoring_data(tmp_path_factory: pytest.TempPathFactory) -> ScoringData:
    root = tmp_path_factory.mktemp("scoring")
    result = generate(GeneratorConfig(entities=ENTITIES, seed=SEED), root / "delivery")
    warehouse = root / "warehouse.duckdb"
    ingest_delivery(result.out, warehouse)
    with duckdb_tables(warehouse) as (_, tables):
        train = snapshots(tables, TRAIN_AS_OF)
        validation = snapshots(tables, [VALIDATION_AS_OF])
        score = build_view(tables, SCORE_AS_OF).table.to_pandas()
    return ScoringData(train, validation, score, Design.from_specs(), warehouse)


@pytest.fixture(scope="session")
def score_matrix(scoring_data: ScoringData) -> pd.DataFrame:
    return scoring_data.design.matrix(scoring_data.score)


@pytest.fixture(scope="session")
def champion(scoring_data: ScoringData) -> CalibratedModel:
    design, train, valid = scoring_data.design, scoring_data.train, scoring_data.validation
    x_valid, y_valid = design.matrix(valid), valid[TARGET].to_numpy()
    model = LightGBMChampion(
        n_estimators=300, monotone=design.monotone, categorical=list(design.categorical)
    )
    model.fit(design.matrix(train), train[TARGET].to_numpy(), eval_set=(x_valid, y_valid))
    return calibrate(model, x_valid, y_valid)


@pytest.fixture(scope="session")
def challenger(scoring_data: ScoringData) -> CalibratedModel:
    design, train, valid = scoring_data.design, scoring_data.train, scoring_data.validation
    card = WOEScorecard(monotone=design.monotone, categorical=list(design.categorical))
    card.fit(design.matrix(train), train[TARGET].to_numpy())
    return calibrate(card, design.matrix(valid), valid[TARGET].to_numpy())
