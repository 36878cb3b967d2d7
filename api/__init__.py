"""wzcredit api package."""
