"""The three-in-one view (三位一体): one row per market entity as of a date.

Government public-credit data, PBOC credit reference and registered private lending, merged
point in time, defined once as Ibis expressions and run on DuckDB or Spark.
"""

from features.view.build import ViewResult, build_view, feature_specs, view_expression
from features.view.context import ViewContext, load_policy
from features.view.metadata import FeatureSpec

__all__ = [
    "FeatureSpec",
    "ViewContext",
    "ViewResult",
    "build_view",
    "feature_specs",
    "load_policy",
    "view_expression",
]
