"""wzcredit models package."""
