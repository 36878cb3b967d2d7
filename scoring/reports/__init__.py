"""Reports for people: the model validation report and the annual platform report.

`render` holds what both share (templates, charts, HTML and PDF writing); `model` and
`annual` gather the numbers of one report each from plain inputs, so that a test can check
every figure against the data it came from.
"""

from scoring.reports.render import ReportFiles, chart, render, write_report

__all__ = ["ReportFiles", "chart", "render", "write_report"]
