"""The MLflow tracking store and model registry: log a training run, register, promote, load.

Following kedro-mlflow, the registry is just another data source: a model is addressed by
alias (``models:/wzcredit@champion``) or by version, and the object logged at training time
is the very object served — `ModelRegistry.load` returns the fitted scikit-learn compatible
classifier, so ``predict_proba`` runs the same code as during training.

The store is ``sqlite:///mlruns/mlflow.db`` with artifacts under ``mlruns/artifacts`` by
default (paths relative to the working directory, resolved once when the registry is built);
in production any SQLAlchemy URL or an MLflow tracking server. Aliases decide what serves:

- ``champion`` serves; `ModelRegistry.promote` moves it only to a version whose out-of-time
  metric (``oot.roc_auc`` by default) is not below the current champion's, unless forced, and
  hands the old holder ``previous_champion`` (one command to roll back);
- ``challenger`` (the WOE scorecard) is compared against it; ``candidate`` waits for review.

This is the only module of the project that imports :mod:`mlflow`. Two MLflow habits are
kept out of the way: its fluent API reads a process-global tracking URI (set here only for
the length of one `ModelRegistry.log_training` call, under a lock, and put back), and it
writes to stdout and stderr in places (we avoid those code paths or turn the text into log
records).

Serialization: a model is saved in the ``skops`` format when skops can represent it (LightGBM,
calibrators, pipelines), trusting the types of the object handed over at training time;
otherwise (optbinning's scorecard holds Cython objects) in ``cloudpickle``, which MLflow
flags with a security warning. Either way only analysts write to the registry, and a loaded
model is trusted exactly as much as the registry is.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import math
import numbers
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeAlias

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking._tracking_service import utils as tracking_utils

from models.errors import ModelError

__all__ = [
    "LoggedModel",
    "ModelRegistry",
    "PromotionRefused",
    "PromotionResult",
    "RegistryConfig",
    "RegistryError",
    "RunRecord",
    "VersionInfo",
]

_logger = logging.getLogger(__name__)
#: the alias a new training gives its champion model while the current champion serves
CANDIDATE = "candidate"

#: MLflow's limits on one parameter value and on the entities of one ``log_batch`` call
MAX_PARAM_LENGTH = 6000
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_TRUNCATED = "…[truncated]"
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_RESERVED_ALIAS = re.compile(r"^(latest|[vV]\d+|\d+)$", re.IGNORECASE)
#: MLflow's fluent API (used by ``log_model``) reads process-global URIs
_FLUENT_LOCK = threading.Lock()
_TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"

ArtifactValue: TypeAlias = str | bytes | dict[str, Any] | list[Any] | pd.DataFrame | Path


class RegistryError(LookupError):
    """The registry has no such model, version or alias, or cannot be read.

    Parameters
    ----------
    field
        What was looked up: ``alias``, ``version``, ``experiment``, ``tracking_uri``.
    rule
        A stable machine-readable rule name, e.g. ``alias_assigned``.
    message
        Human-readable explanation naming the missing alias or version.

    Examples
    --------
    >>> str(RegistryError("alias", "alias_assigned", "no version has alias 'champion'"))
    "alias: alias_assigned: no version has alias 'champion'"
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.field = field
        self.rule = rule
        self.message = message
        super().__init__(f"{field}: {rule}: {message}")


class PromotionRefused(ModelError):  # noqa: N818 - the name says what happened
    """A promotion would replace the alias holder by a version that is worse on the metric.

    ``field`` is the metric (``oot.roc_auc``); the message names both versions and both
    values and says that ``force`` overrides the check.
    """


@dataclass(frozen=True)
class RegistryConfig:
    """Where the tracking store, the artifacts and the registered model live.

    ``tracking_uri`` is any MLflow tracking URI (a SQLAlchemy URL such as
    ``postgresql://…`` or ``sqlite:///…``, or ``http://`` for a tracking server); the same
    URI serves as registry URI. ``artifact_location`` applies when the experiment is
    created; an existing experiment keeps its own. Relative paths are relative to the
    working directory when the `ModelRegistry` is built.
    """

    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_location: str = "mlruns/artifacts"
    model_name: str = "wzcredit"
    experiment: str = "wzcredit"
    #: let MLflow work out the model's pip requirements: ``uv export`` when the working
    #: directory is a uv project (quick), else re-importing the model in a subprocess
    #: (several seconds per model). Off, only the flavor's defaults are written.
    infer_requirements: bool = True


@dataclass(frozen=True)
class LoggedModel:
    """One logged training run: its MLflow run, registered version and model URI."""

    run_id: str
    version: int | None
    model_uri: str


@dataclass(frozen=True)
class RunRecord:
    """What a training run logged: params and metrics as stored, its tags, artifact names."""

    run_id: str
    run_name: str | None
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: tuple[str, ...]


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version with what ``wzcredit models list`` shows about it."""

    version: int
    run_id: str | None
    run_name: str | None
    aliases: tuple[str, ...]
    created: dt.datetime
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionResult:
    """The outcome of a promotion: who held ``alias`` before and after, and their metric.

    ``forced`` is true when ``force`` overrode a refusal (worse or missing metric).
    """

    alias: str
    metric: str
    old_version: int | None
    new_version: int
    old_value: float | None
    new_value: float | None
    forced: bool = False

    @property
    def changed(self) -> bool:
        """False when the version already held the alias."""
        return self.old_version != self.new_version


class ModelRegistry:
    """Training runs, registered versions and aliases of one model in one MLflow store.

    Nothing touches the store until the first call (the first use of a new sqlite store
    runs MLflow's migrations, a few seconds). `load` returns a plain in-memory object that
    needs the store no more: an API that keeps its last good model keeps serving when the
    registry becomes unreachable.

    Parameters
    ----------
    config
        Store location and names; see `RegistryConfig`.
    """

    def __init__(self, config: RegistryConfig | None = None) -> None:
        self.config = config or RegistryConfig()
        self.tracking_uri = _absolute_sqlite_uri(self.config.tracking_uri)
        self.artifact_location = _absolute_location(self.config.artifact_location)
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    def __repr__(self) -> str:
        uri = _redacted(self.tracking_uri)
        return f"ModelRegistry({uri!r}, model_name={self.config.model_name!r})"

    @property
    def model_name(self) -> str:
        return self.config.model_name

    def model_uri(self, ref: str | int = "champion") -> str:
        """The MLflow URI of an alias or version, e.g. ``models:/wzcredit@champion``."""
        version = _as_version(ref)
        if version is not None:
            return f"models:/{self.model_name}/{version}"
        return f"models:/{self.model_name}@{ref}"

    # ----------------------------------------------------------------------------------------
    # logging a training run
    # ----------------------------------------------------------------------------------------
    def log_training(
        self,
        *,
        run_name: str,
        model: Any,
        input_example: pd.DataFrame,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
        artifacts: Mapping[str, ArtifactValue] | None = None,
        tags: Mapping[str, str] | None = None,
        register: bool = True,
    ) -> LoggedModel:
        """Log one training run and (by default) register the model as a new version.

        Parameters
        ----------
        run_name
            The run's name in the MLflow UI, e.g. ``champion-2024-12-31``.
        model
            A fitted classifier with ``predict_proba``; exactly this object is served.
        input_example
            A few rows of the model's input; saved with the model, and with the model's
            probabilities it gives the signature (integer columns are declared as doubles,
            since credit features may be missing at scoring time).
        params
            Hyper-parameters and choices. Nested mappings are flattened with dots; values
            are written as text (lists and dicts as JSON), cut to MLflow's 6,000 characters.
        metrics
            Numbers, nested mappings flattened with dots: ``{"oot": {"roc_auc": 0.71}}``
            is logged as ``oot.roc_auc``. ``None`` values are skipped.
        artifacts
            Files next to the model, by relative name: dict/list → JSON, DataFrame → CSV,
            str → text, bytes → the bytes, Path → a copy of the file or folder. A name
            without a suffix gets ``.json``, ``.csv`` or ``.txt`` as fits.
        tags
            Run tags (``role``: ``champion`` / ``challenger``).
        register
            Register the model as a new version of ``model_name``.

        Returns
        -------
        LoggedModel
            The run id, the version (None when not registered) and the model URI
            (``models:/wzcredit/<version>`` when registered).
        """
        if not hasattr(model, "predict_proba"):
            raise ModelError("model", "predict_proba", "the model must have predict_proba")
        if not isinstance(input_example, pd.DataFrame) or input_example.empty:
            raise ModelError("input_example", "rows", "give a non-empty DataFrame of inputs")
        flat_params = _flatten_params(params)
        flat_metrics = _flatten_metrics(metrics)
        signature = _signature(model, input_example)
        serialization, trusted = _serialization(model)
        experiment_id = self._experiment()
        client = self._mlflow()
        run_tags = {**(tags or {}), "wzcredit.serialization": serialization}

        with tempfile.TemporaryDirectory(prefix="wzcredit-artifacts-") as tmp, self._fluent():
            written = _write_artifacts(artifacts or {}, Path(tmp))  # refused before the run
            run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags)
            run_id = run.info.run_id
            status = "FAILED"
            try:
                _log_batches(client, run_id, flat_params, flat_metrics)
                if artifacts:
                    client.log_artifacts(run_id, str(written))
                with warnings.catch_warnings():
                    # MLflow 3.17 compares columns with a range, which pandas 3 deprecates
                    warnings.filterwarnings("ignore", "Operation with range is deprecated")
                    info = mlflow.sklearn.log_model(
                        model,
                        name="model",
                        signature=signature,
                        input_example=input_example,
                        pyfunc_predict_fn="predict_proba",
                        serialization_format=serialization,
                        skops_trusted_types=trusted,
                        pip_requirements=self._requirements(serialization),
                    )
                status = "FINISHED"
            finally:
                _quietly(mlflow.end_run, status)
        _logger.info(
            "logged run %s (%s): %d params, %d metrics, %d artifacts, model %s",
            run_name, run_id, len(flat_params), len(flat_metrics), len(artifacts or {}),
            info.model_id,
        )  # fmt: skip
        if not register:
            return LoggedModel(run_id=run_id, version=None, model_uri=info.model_uri)
        with self._fluent():  # MLflow's sqlite registry looks the logged model up globally
            version = self._register(info.model_uri, run_id, info.model_id)
        return LoggedModel(run_id=run_id, version=version, model_uri=self.model_uri(version))

    def run(self, run_id: str) -> RunRecord:
        """A logged run's params, metrics, own tags and artifact names (to compare runs).

        Raises
        ------
        RegistryError
            No such run in the store.
        """
        client = self._mlflow()
        try:
            run = client.get_run(run_id)
        except MlflowException as error:
            if _not_found(error):
                raise RegistryError("run_id", "run_logged", f"no run {run_id!r}") from error
            raise
        names: list[str] = []
        folders = [""]
        while folders:
            for entry in client.list_artifacts(run_id, folders.pop() or None):
                (folders if entry.is_dir else names).append(entry.path)
        return RunRecord(
            run_id=run_id,
            run_name=run.info.run_name,
            status=run.info.status,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            artifacts=tuple(sorted(names)),
        )

    def version_artifact(self, ref: str | int, name: str) -> bytes:
        """An artifact of the run that logged a version (``ref``: alias or number).

        Raises
        ------
        RegistryError
            No such version or alias, the version has no run, or the run no such artifact.
        """
        mv = self._resolve(ref)
        if not mv.run_id:
            raise RegistryError(
                "version", "run_logged", f"version {mv.version} was not logged by a run"
            )
        return self.read_artifact(mv.run_id, name)

    def read_artifact(self, run_id: str, name: str) -> bytes:
        """The bytes of one artifact of a run, e.g. ``feature_metadata.json``.

        Raises
        ------
        RegistryError
            The run has no such artifact.
        """
        if name not in self.run(run_id).artifacts:
            raise RegistryError(
                "artifact", "artifact_logged", f"run {run_id} has no artifact {name!r}"
            )
        with tempfile.TemporaryDirectory(prefix="wzcredit-artifact-") as tmp:
            local = self._mlflow().download_artifacts(run_id, name, dst_path=tmp)
            return Path(local).read_bytes()

    # ----------------------------------------------------------------------------------------
    # aliases and versions
    # ----------------------------------------------------------------------------------------
    def set_alias(self, version: int, alias: str) -> None:
        """Point ``alias`` at ``version``, unchecked: `promote` is the checked way.

        Used for the first champion of a store and for ``challenger`` / ``candidate``.
        Aliases use letters, digits, ``_`` and ``-``; ``latest``, ``v3`` and ``3`` are
        refused, since they read as versions.
        """
        _check_alias(alias)
        self._version(version)
        self._mlflow().set_registered_model_alias(self.model_name, alias, str(version))
        _logger.info("alias %s of %s -> version %d", alias, self.model_name, version)

    def remove_alias(self, alias: str) -> None:
        """Remove ``alias`` from whichever version holds it (nothing if none does)."""
        if alias in self.aliases():
            self._mlflow().delete_registered_model_alias(self.model_name, alias)
            _logger.info("alias %s of %s removed", alias, self.model_name)

    def aliases(self) -> dict[str, int]:
        """Every alias of the model and the version it points at (empty if unregistered)."""
        try:
            registered = self._mlflow().get_registered_model(self.model_name)
        except MlflowException as error:
            if _not_found(error):
                return {}
            raise
        return {alias: int(version) for alias, version in sorted(registered.aliases.items())}

    def versions(self) -> list[VersionInfo]:
        """Every registered version, oldest first, with its run's metrics and tags."""
        client = self._mlflow()
        found = client.search_model_versions(f"name = '{_quote(self.model_name)}'")
        by_version: dict[int, list[str]] = {}
        for alias, version in self.aliases().items():
            by_version.setdefault(version, []).append(alias)
        listed = []
        for mv in sorted(found, key=lambda mv: int(mv.version)):
            number = int(mv.version)
            metrics, tags, run_name = self._run_summary(mv.run_id)
            listed.append(
                VersionInfo(
                    version=number,
                    run_id=mv.run_id or None,
                    run_name=run_name,
                    aliases=tuple(sorted(by_version.get(number, []))),
                    created=_timestamp(mv.creation_timestamp),
                    metrics=metrics,
                    tags=tags,
                )
            )
        return listed

    def promote(
        self,
        version: int,
        *,
        alias: str = "champion",
        metric: str = "oot.roc_auc",
        force: bool = False,
    ) -> PromotionResult:
        """Give ``alias`` to ``version`` if it is at least as good as the current holder.

        Higher is better on ``metric`` (an AUC). The promotion is refused with
        `PromotionRefused` when the version's value is below the holder's, or when the
        version has no value; ``force`` overrides both. On success the old holder gets
        ``previous_<alias>`` (``previous_champion``), so a rollback is one more promotion,
        and a promoted ``candidate`` loses that alias (it no longer waits).
        A holder without the metric (logged before it existed) does not block; a warning
        is logged. Promoting the current holder changes nothing.

        Raises
        ------
        RegistryError
            The version is not registered.
        PromotionRefused
            The version is worse than the current holder, or lacks the metric.
        """
        _check_alias(alias)
        candidate = self._version(version)
        new_value = self._metric(candidate.run_id, metric)
        old_version = self.aliases().get(alias)
        old_value = None
        if old_version is not None and old_version != version:
            old_value = self._metric(self._version(old_version).run_id, metric)
        if old_version == version:
            _logger.info("version %d already holds %s", version, alias)
            return PromotionResult(alias, metric, version, version, new_value, new_value)
        if new_value is None and not force:
            raise PromotionRefused(
                metric,
                "metric_present",
                f"version {version} has no {metric}; log it or use force to promote anyway",
            )
        overridden = new_value is None
        if new_value is not None and old_value is not None and new_value < old_value:
            if not force:
                new_text, old_text = _distinct(new_value, old_value)
                raise PromotionRefused(
                    metric,
                    "not_worse",
                    f"version {version} has {metric} {new_text}, below the current {alias} "
                    f"version {old_version}'s {old_text}; use force to promote anyway",
                )
            overridden = True
        if old_version is not None and old_value is None:
            _logger.warning("current %s version %d has no %s", alias, old_version, metric)
        client = self._mlflow()
        if old_version is not None:
            client.set_registered_model_alias(
                self.model_name, f"previous_{alias}", str(old_version)
            )
        client.set_registered_model_alias(self.model_name, alias, str(version))
        if self.aliases().get(CANDIDATE) == version:  # it no longer waits for promotion
            client.delete_registered_model_alias(self.model_name, CANDIDATE)
        _logger.info(
            "promoted %s version %d to %s (%s %s; previous version %s, %s)%s",
            self.model_name, version, alias, metric, new_value, old_version, old_value,
            " forced" if overridden else "",
        )  # fmt: skip
        return PromotionResult(
            alias, metric, old_version, version, old_value, new_value, forced=overridden
        )

    # ----------------------------------------------------------------------------------------
    # loading
    # ----------------------------------------------------------------------------------------
    def load(self, ref: str | int = "champion") -> Any:
        """The fitted model of an alias (``"champion"``) or a version (``3`` or ``"3"``).

        The model's files are copied to a temporary folder, deserialized and the folder
        removed: the returned object is the one logged at training time and needs neither
        the tracking store nor the artifact store any more, so a service can keep serving
        it while the registry is unreachable.

        Raises
        ------
        RegistryError
            No version holds the alias, the version does not exist, the store cannot
            be read (rule ``store_available``) or MLflow refuses to deserialize
            (rule ``loadable``).
        """
        with tempfile.TemporaryDirectory(prefix="wzcredit-model-") as tmp:
            try:
                mv = self._resolve(ref)
                # the storage URI (file://, s3://, mlflow-artifacts://): ``models:/`` URIs
                # would be resolved through MLflow's process-global registry URI
                location = self._mlflow().get_model_version_download_uri(
                    self.model_name, str(mv.version)
                )
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            except (MlflowException, OSError) as error:
                raise RegistryError(
                    "tracking_uri",
                    "store_available",
                    f"cannot read {self.model_uri(ref)} from {_redacted(self.tracking_uri)}: "
                    f"{error}",
                ) from error
            try:
                model = mlflow.sklearn.load_model(local)
            except MlflowException as error:  # e.g. MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false
                raise RegistryError(
                    "model", "loadable", f"{self.model_uri(ref)} cannot be loaded: {error}"
                ) from error
        _logger.info(
            "loaded %s version %s%s from run %s",
            self.model_name, mv.version, "" if _as_version(ref) else f" ({ref})", mv.run_id,
        )  # fmt: skip
        return model

    # ----------------------------------------------------------------------------------------
    # internals
    # ----------------------------------------------------------------------------------------
    def _mlflow(self) -> MlflowClient:
        if self._client is None:
            _quiet_mlflow_loggers()
            _make_sqlite_folder(self.tracking_uri)
            with warnings.catch_warnings():
                # MLflow's own SQLAlchemy mappings use a loader SQLAlchemy 2 deprecates
                warnings.filterwarnings("ignore", "The ``noload`` loader", DeprecationWarning)
                self._client = MlflowClient(
                    tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
                )
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is not None:
            return self._experiment_id
        client, name = self._mlflow(), self.config.experiment
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = client.create_experiment(
                    name, artifact_location=self.artifact_location
                )
                _logger.info("created experiment %s (artifacts %s)", name, self.artifact_location)
            except MlflowException:  # created meanwhile by another process
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        elif experiment.lifecycle_stage != "active":
            raise RegistryError(
                "experiment", "active", f"experiment {name!r} is deleted; restore or rename it"
            )
        else:
            experiment_id = experiment.experiment_id
            if experiment.artifact_location != self.artifact_location:
                _logger.debug(
                    "experiment %s keeps its artifact location %s",
                    name, experiment.artifact_location,
                )  # fmt: skip
        self._experiment_id = experiment_id
        return experiment_id

    @contextlib.contextmanager
    def _fluent(self) -> Iterator[None]:
        """Point MLflow's process-global tracking URI at this store for one call.

        ``mlflow.sklearn.log_model`` only works inside a fluent run, which reads the global
        URI. Both the global and the ``MLFLOW_TRACKING_URI`` variable that
        ``set_tracking_uri`` writes are put back afterwards (saved, never interpreted).
        """
        with _FLUENT_LOCK:
            previous_uri: str | None = tracking_utils._tracking_uri
            previous_env = os.environ.get(_TRACKING_URI_VARIABLE)
            mlflow.set_tracking_uri(self.tracking_uri)
            try:
                yield
            finally:
                # None unsets it again, as MLflow's own ``_use_tracking_uri`` does
                mlflow.set_tracking_uri(previous_uri)  # type: ignore[arg-type]
                if previous_env is not None:
                    os.environ[_TRACKING_URI_VARIABLE] = previous_env

    def _requirements(self, serialization: str) -> list[str] | None:
        if self.config.infer_requirements:
            return None
        defaults = mlflow.sklearn.get_default_pip_requirements(
            include_cloudpickle=serialization == "cloudpickle",
            include_skops=serialization == "skops",
        )
        return [str(requirement) for requirement in defaults]

    def _register(self, source: str, run_id: str, model_id: str | None) -> int:
        client = self._mlflow()
        try:
            client.create_registered_model(self.model_name)
            _logger.info("registered model %s", self.model_name)
        except MlflowException as error:
            if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        mv = client.create_model_version(
            self.model_name, source=source, run_id=run_id, model_id=model_id
        )
        version = int(mv.version)
        if model_id is not None:  # link the logged model to its version, as MLflow does
            client.set_logged_model_tags(
                model_id,
                {"mlflow.modelVersions": json.dumps([{"name": self.model_name,
                                                      "version": version}])},
            )  # fmt: skip
        _logger.info("registered %s version %d from run %s", self.model_name, version, run_id)
        return version

    def _version(self, version: int) -> ModelVersion:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ModelError("version", "positive_integer", f"got {version!r}")
        try:
            return self._mlflow().get_model_version(self.model_name, str(version))
        except MlflowException as error:
            if _not_found(error):
                raise RegistryError(
                    "version",
                    "version_registered",
                    f"model {self.model_name!r} has no version {version}",
                ) from error
            raise

    def _resolve(self, ref: str | int) -> ModelVersion:
        version = _as_version(ref)
        if version is not None:
            return self._version(version)
        alias = str(ref)
        _check_alias(alias)
        # read the alias table rather than get_model_version_by_alias: for an unassigned
        # alias the sqlite store answers INVALID_PARAMETER_VALUE, not RESOURCE_DOES_NOT_EXIST
        holder = self.aliases().get(alias)
        if holder is None:
            raise RegistryError(
                "alias",
                "alias_assigned",
                f"no version of model {self.model_name!r} has alias {alias!r}",
            )
        return self._version(holder)

    def _run_summary(
        self, run_id: str | None
    ) -> tuple[dict[str, float], dict[str, str], str | None]:
        if not run_id:
            return {}, {}, None
        try:
            run = self._mlflow().get_run(run_id)
        except MlflowException as error:
            if _not_found(error):
                _logger.warning("run %s of a registered version is gone", run_id)
                return {}, {}, None
            raise
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        return dict(run.data.metrics), tags, run.info.run_name

    def _metric(self, run_id: str | None, metric: str) -> float | None:
        value = self._run_summary(run_id)[0].get(metric)
        return None if value is None or math.isnan(value) else float(value)


# --------------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------------
def _absolute_sqlite_uri(uri: str) -> str:
    """``sqlite:///relative.db`` resolved against the working directory, now."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return uri
    path, _, query = uri[len(prefix) :].partition("?")
    if path in ("", ":memory:") or path.startswith("/"):
        return uri
    absolute = Path(path).resolve()
    return f"{prefix}{absolute}" + (f"?{query}" if query else "")


def _absolute_location(location: str) -> str:
    """A plain path as an absolute ``file://`` URI; URIs (``s3://``, ``file:``) unchanged."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", location):
        return location
    return Path(location).resolve().as_uri()


def _make_sqlite_folder(uri: str) -> None:
    if uri.startswith("sqlite:////"):
        Path(uri[len("sqlite:///") :].partition("?")[0]).parent.mkdir(parents=True, exist_ok=True)


def _quiet_mlflow_loggers() -> None:
    """Raise MLflow's chattiest INFO loggers to WARNING, unless the app configured them.

    MLflow logs each sqlite migration and each requirements export at INFO on its own
    stderr handler; warnings and errors still come through.
    """
    for name in (
        "mlflow.store.db.utils",  # "Creating initial MLflow database tables..."
        "mlflow.utils.uv_utils",  # "Detected uv project..."
        "mlflow.utils.environment",  # "Successfully exported 121 requirements..."
        "alembic",
    ):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def _quietly(call: Any, *args: Any) -> None:
    """Run an MLflow call that writes to stdout (a run's URL) and log the text instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        call(*args)
    for line in buffer.getvalue().splitlines():
        if line.strip():
            _logger.info("%s", line.strip())


def _redacted(uri: str) -> str:
    """A store URI without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", uri)


def _not_found(error: MlflowException) -> bool:
    return error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _timestamp(millis: int | None) -> dt.datetime:
    return dt.datetime.fromtimestamp((millis or 0) / 1000, tz=dt.UTC)


def _as_version(ref: str | int) -> int | None:
    if isinstance(ref, bool):
        raise ModelError("ref", "alias_or_version", f"got {ref!r}")
    if isinstance(ref, int):
        return ref
    if isinstance(ref, str) and ref.isdigit():
        return int(ref)
    return None


def _check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise ModelError("alias", "alias_name", f"{alias!r}: use letters, digits, '_' and '-' only")
    if _RESERVED_ALIAS.match(alias):
        raise ModelError("alias", "alias_name", f"{alias!r} is reserved for versions")


def _distinct(a: float, b: float) -> tuple[str, str]:
    """Two values with as few decimals (at least 3) as it takes to tell them apart."""
    for digits in range(3, 13):
        text_a, text_b = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if text_a != text_b:
            return text_a, text_b
    return repr(a), repr(b)


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _flatten_params(params: Mapping[str, Any]) -> dict[str, str]:
    flat = {}
    for name, value in _flatten(params):
        text = _param_text(value)
        if len(text) > MAX_PARAM_LENGTH:
            _logger.info("param %s cut from %d characters", name, len(text))
            text = text[: MAX_PARAM_LENGTH - len(_TRUNCATED)] + _TRUNCATED
        flat[name] = text
    return flat


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, np.generic):
        return str(value.item())
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return json.dumps(items, ensure_ascii=False, default=_json_default)
    return str(value)


def _flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    flat = {}
    for name, value in _flatten(metrics):
        if value is None:
            _logger.debug("metric %s is None: not logged", name)
            continue
        if not isinstance(value, numbers.Real):
            raise ModelError(f"metrics.{name}", "number", f"got {type(value).__name__}")
        flat[name] = float(value)
    return flat


def _log_batches(
    client: MlflowClient, run_id: str, params: Mapping[str, str], metrics: Mapping[str, float]
) -> None:
    now = int(time.time() * 1000)
    param_list = [Param(k, v) for k, v in params.items()]
    metric_list = [Metric(k, v, now, 0) for k, v in metrics.items()]
    for start in range(0, len(param_list), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=param_list[start : start + _PARAMS_PER_BATCH])
    for start in range(0, len(metric_list), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metric_list[start : start + _METRICS_PER_BATCH])


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _write_artifacts(artifacts: Mapping[str, ArtifactValue], root: Path) -> Path:
    """Write each artifact under ``root`` by its relative name; returns ``root``."""
    for name, given in artifacts.items():
        value: object = given  # checked at run time: callers may not be type-checked
        relative = PurePosixPath(name)
        if not name or relative.is_absolute() or ".." in relative.parts:
            raise ModelError(f"artifacts.{name}", "relative_name", "use a relative file name")
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, Path):
            if value.is_dir():
                shutil.copytree(value, target)
            elif value.is_file():
                shutil.copyfile(value, target)
            else:
                raise ModelError(f"artifacts.{name}", "file_exists", f"{value} does not exist")
        elif isinstance(value, bytes):
            target.write_bytes(value)
        elif isinstance(value, str):
            _suffixed(target, ".txt").write_text(value, encoding="utf-8")
        elif isinstance(value, pd.DataFrame):
            keep_index = not isinstance(value.index, pd.RangeIndex)
            value.to_csv(_suffixed(target, ".csv"), index=keep_index, encoding="utf-8")
        elif isinstance(value, dict | list):
            text = json.dumps(value, ensure_ascii=False, indent=2, default=_json_default)
            _suffixed(target, ".json").write_text(text + "\n", encoding="utf-8")
        else:
            raise ModelError(
                f"artifacts.{name}",
                "artifact_type",
                f"got {type(value).__name__}; give dict, list, DataFrame, str, bytes or Path",
            )
    return root


def _suffixed(path: Path, suffix: str) -> Path:
    return path if path.suffix else path.with_suffix(suffix)


def _signature(model: Any, input_example: pd.DataFrame) -> Any:
    """Signature from the example and its probabilities; integer columns declared double."""
    integers = input_example.select_dtypes(include="integer").columns
    schema_input = input_example.astype(dict.fromkeys(integers, "float64"))
    return infer_signature(schema_input, np.asarray(model.predict_proba(input_example)))


def _serialization(model: Any) -> tuple[str, list[str] | None]:
    """``skops`` with the model's own types trusted, or ``cloudpickle`` if skops cannot."""
    # MLflow's own dependency, untyped; imported late as it takes a second or two
    import skops.io  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dumped = skops.io.dumps(model)
            trusted: list[str] = skops.io.get_untrusted_types(data=dumped)
            skops.io.loads(dumped, trusted=trusted)
    except Exception as error:  # skops raises many types on objects it cannot represent
        _logger.info(
            "%s cannot be saved in the skops format (%s); using cloudpickle",
            type(model).__name__, error,
        )  # fmt: skip
        return "cloudpickle", None
    return "skops", trusted
