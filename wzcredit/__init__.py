"""wzcredit command line and entry points."""

__version__ = "0.1.0"
