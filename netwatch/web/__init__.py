"""The daemon's one HTTP server: /metrics, /healthz, and (later) the status page and reports."""

from netwatch.web.server import HealthProbe, WebServer, parse_listen

__all__ = ["HealthProbe", "WebServer", "parse_listen"]
