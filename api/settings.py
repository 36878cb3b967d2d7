"""The service's settings: one object, built at the entry point (never at import).

Values come from keyword arguments, then ``WZCREDIT_*`` environment variables, then the
defaults below (an embedded SQLite database and the demo's folders). Outside development a
placeholder secret is refused: the secret keys the pseudonyms under which subjects appear
in the query log, so a guessable one would make those pseudonyms reversible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the development default; refused when ``environment`` is not development
PLACEHOLDER_SECRET = "change-me-in-production"


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="WZCREDIT_", extra="forbid", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        "sqlite:///wzcredit.db",
        description="SQLAlchemy URL of the service database (SQLite or PostgreSQL).",
    )
    warehouse: Path = Field(
        Path("warehouse/wzcredit.duckdb"), description="DuckDB warehouse (read only here)."
    )
    scores: Path = Field(Path("scores"), description="Folder of score snapshots (CURRENT).")
    features: Path = Field(Path("features"), description="Folder of the views (wzcredit features).")
    quality_report: Path | None = Field(
        None, description="The last `wzcredit quality` report (JSON), shown to the operator."
    )
    tracking_uri: str = Field("sqlite:///mlruns/mlflow.db", description="MLflow tracking URI.")
    model_alias: str = Field("champion", description="Registered alias (or version) served.")
    secret: str = Field(
        PLACEHOLDER_SECRET,
        description="Keys the subject pseudonyms of the query log (HMAC-SHA256).",
        min_length=16,
    )
    institution: str = Field("鹿城农商行", description="Default institution of new keys.")
    page_size_max: int = Field(500, ge=1, le=10_000)
    refresh_seconds: float = Field(
        300.0, ge=0, description="How often to look for a new model and snapshot (0: never)."
    )
    migrate_on_start: bool = Field(
        True, description="Upgrade the database to the latest migration at start-up."
    )

    @model_validator(mode="after")
    def _real_secret_outside_development(self) -> Settings:
        if self.environment == "production" and self.secret == PLACEHOLDER_SECRET:
            raise ValueError(
                "secret: not_placeholder: set WZCREDIT_SECRET to a random value in production"
            )
        return self
