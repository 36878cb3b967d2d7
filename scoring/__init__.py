"""wzcredit scoring package."""
