"""Who may call what: the role→route matrix of the REST API, the only place that says so.

Every route of the app has one entry here, keyed by method and path below ``/api/v1``;
``web.api.app.create_app`` refuses to start when a route has none (or an entry names no
route), and ``web.api.security.guard`` checks each request against it. ``OPEN`` routes
answer without credentials. docs/api.md shows this table; a test keeps the two in step.
"""

from __future__ import annotations

from ecap.credentials import Role
from ecap.workers import API_PREFIX

PREFIX = API_PREFIX

OPEN: frozenset[Role] | None = None
"""No credentials needed."""
EVERYONE = frozenset(Role)
ANALYSTS = frozenset(Role)
"""Analytics reads: analyst and every role above."""
CASE_WORKERS = frozenset({Role.INVESTIGATOR, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})

MATRIX: dict[tuple[str, str], frozenset[Role] | None] = {
    ("GET", "/health"): OPEN,
    ("POST", "/auth/token"): OPEN,
    ("POST", "/auth/refresh"): OPEN,
    ("GET", "/auth/me"): EVERYONE,
    ("GET", "/metrics"): ADMINS,
    ("GET", "/cases"): CASE_WORKERS,
    ("POST", "/cases/next"): CASE_WORKERS,
    ("GET", "/cases/{case_id}"): CASE_WORKERS,
    ("POST", "/cases/{case_id}/assign"): CASE_WORKERS,
    ("POST", "/cases/{case_id}/status"): CASE_WORKERS,
    ("POST", "/cases/{case_id}/notes"): CASE_WORKERS,
    ("POST", "/cases/{case_id}/verdict"): CASE_WORKERS,
    ("GET", "/audit"): ADMINS,
    ("GET", "/customers"): ANALYSTS,
    ("GET", "/customers/{customer_id}"): ANALYSTS,
    ("GET", "/segments"): ANALYSTS,
    ("GET", "/clv/distribution"): ANALYSTS,
    ("GET", "/clv/top"): ANALYSTS,
    ("GET", "/churn/at-risk"): ANALYSTS,
    ("GET", "/churn/model"): ANALYSTS,
    ("GET", "/cohorts"): ANALYSTS,
    ("GET", "/revenue"): ANALYSTS,
    ("GET", "/kpis/current"): ANALYSTS,
    ("GET", "/kpis/timeseries"): ANALYSTS,
    ("GET", "/kpis/funnel"): ANALYSTS,
}

SCRAPE_TOKEN_ROUTES = frozenset({("GET", "/metrics"), ("GET", "/health")})
"""Routes that also take the workers' scrape token (``Authorization: Bearer`` with the
content of ``ECAP_API_TOKEN``), so one Prometheus ``credentials_file`` reads every ECAP
process."""

SEES_PERSONAL_DATA = frozenset({Role.INVESTIGATOR})
"""Roles shown card numbers, IP addresses and e-mail addresses in clear; every other role
gets them masked (``web.api.masking``): an admin manages users, keys and rules and
reassigns cases, and needs no customer's personal data for it."""


def roles_for(method: str, path: str) -> frozenset[Role] | None:
    """The roles allowed on a route (``OPEN``: no credentials); KeyError when the matrix
    has no entry for it."""
    return MATRIX[(method, path.removeprefix(PREFIX))]  # a route's path, with or without it
