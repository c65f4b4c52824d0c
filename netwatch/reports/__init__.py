"""Reports read from storage: monthly availability (and bandwidth), rendered as CSV, XLSX or HTML.

- ``availability``: ``load_month`` (the SQL) and ``compute`` (pure) for "Availability, defined once".
- ``render``: the availability report as CSV (UTF-8 with BOM), XLSX or self-contained HTML.
- ``strings``: every user-facing report string, Vietnamese and English.
"""

from __future__ import annotations

from netwatch.reports.availability import AvailabilityReport, MonthData, compute, load_month
from netwatch.reports.render import FORMATS, render_availability
from netwatch.reports.strings import Lang, month_title

__all__ = [
    "FORMATS",
    "AvailabilityReport",
    "Lang",
    "MonthData",
    "compute",
    "load_month",
    "month_title",
    "render_availability",
]
