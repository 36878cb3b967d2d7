"""The served model: loaded by alias at start-up, kept when the registry goes away.

`ModelHolder.refresh` asks the registry for the alias again; if the registry cannot be
reached (or the alias is gone) the last good model keeps serving and the failure is logged
and reported by readiness, never raised into a request.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from api.errors import Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    model: Any
    version: str
    alias: str


class ModelHolder:
    def __init__(self, tracking_uri: str, alias: str) -> None:
        self.tracking_uri = tracking_uri
        self.alias = alias
        self._served: ServedModel | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, model: Any, version: str, alias: str = "champion") -> ModelHolder:
        """A holder serving an already loaded model (tests, notebooks)."""
        holder = cls("", alias)
        holder._served = ServedModel(model, version, alias)
        return holder

    @property
    def served(self) -> ServedModel:
        if self._served is None:
            raise Unavailable("model", "loaded", f"no model loaded for alias {self.alias!r}")
        return self._served

    @property
    def loaded(self) -> bool:
        return self._served is not None

    def refresh(self) -> bool:
        """Load the alias again; keep the last good model on any failure. True if loaded."""
        if not self.tracking_uri:
            return self.loaded
        from models.registry import ModelRegistry, RegistryConfig  # noqa: PLC0415 - mlflow is slow

        with self._lock:
            try:
                registry = ModelRegistry(RegistryConfig(tracking_uri=self.tracking_uri))
                model = registry.load(self.alias)
                version = str(registry.aliases().get(self.alias, self.alias))
            except Exception as exc:  # the registry is unreachable: keep serving what we have
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                logger.warning("model registry unavailable, keeping the last good model: %s",
                               type(exc).__name__)  # fmt: skip
                return self.loaded
            self._served = ServedModel(model, version, self.alias)
            self.last_error = None
            logger.info("serving model %s@%s (version %s)", "wzcredit", self.alias, version)
            return True
