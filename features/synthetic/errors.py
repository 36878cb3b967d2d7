"""Errors of the synthetic data generator."""

from __future__ import annotations

from features.errors import FeatureError


class GeneratorConfigError(FeatureError):
    """A generator parameter is outside what the generator supports.

    ``field`` names the parameter (``entities``, ``start``, …) and ``rule`` the broken rule.
    """
