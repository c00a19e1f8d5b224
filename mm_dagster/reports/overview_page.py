"""The endpoints overview: one row per endpoint with traffic against the previous period and the
latest status of each app as a colour chip; sorted, filtered and paginated before rendering."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from mm_dagster.core.errors import MonitoringError
from mm_dagster.core.links import endpoint_path
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.reports.html import STATUS_COLOURS, page
from mm_dagster.storage.dashboard_queries import Traffic

SORT_KEYS = ("name", "status", "last_request", "model")
STATUS_FILTERS = ("all", "detected", "potential_detection", "no_detection", "irrelevant", "no_results")
NO_RESULTS = "no_results"
NO_RESULTS_COLOUR = "#bdbdbd"
DASHBOARD_STYLE = """<style>
.muted { color: #777; font-size: 12px; } .filters a { margin-right: 10px; }
.filters a.active { font-weight: 700; text-decoration: none; color: #222; }
form.search { margin: 8px 0; } th a { color: #222; text-decoration: none; }
td.app { text-align: center; } .chip { white-space: nowrap; }
td.name, td.text { text-align: left; }
</style>"""
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class OverviewRow:
    endpoint_id: str
    name: str
    model: str
    version: str
    last_request: datetime | None
    statuses: Mapping[str, ResultStatusApp]

    @property
    def worst(self) -> ResultStatusApp | None:
        return max(self.statuses.values()) if self.statuses else None

    @property
    def worst_name(self) -> str:
        worst = self.worst
        return NO_RESULTS if worst is None else worst.name


@dataclass(frozen=True)
class OverviewQuery:
    """What the user asked for: `status` one of STATUS_FILTERS, `sort` one of SORT_KEYS."""

    status: str = "all"
    sort: str = "status"
    descending: bool = True
    search: str = ""
    page: int = 1
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.status not in STATUS_FILTERS:
            raise MonitoringError(f"status filter {self.status!r} is not one of {', '.join(STATUS_FILTERS)}")
        if self.sort not in SORT_KEYS:
            raise MonitoringError(f"sort key {self.sort!r} is not one of {', '.join(SORT_KEYS)}")
        if self.page < 1:
            raise MonitoringError(f"page must be >= 1, got {self.page}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise MonitoringError(f"page_size must be within 1..{MAX_PAGE_SIZE}, got {self.page_size}")

    def url(self, **changes: object) -> str:
        values: dict[str, object] = {
            "status": self.status,
            "sort": self.sort,
            "order": "desc" if self.descending else "asc",
            "q": self.search,
            "page": self.page,
            "page_size": self.page_size,
        }
        values.update(changes)
        return "/?" + urlencode({k: v for k, v in values.items() if v != ""})


def _sort_value(row: OverviewRow, key: str) -> tuple[object, ...]:
    if key == "status":
        return (-2 if row.worst is None else int(row.worst),)
    if key == "last_request":
        return (row.last_request.timestamp() if row.last_request else float("-inf"),)
    if key == "model":
        return (row.model, row.version)
    return (row.name,)


def select_rows(rows: Sequence[OverviewRow], query: OverviewQuery) -> tuple[list[OverviewRow], int]:
    """The rows of the requested page, and how many rows matched in all."""
    needle = query.search.lower()
    matched = [
        r
        for r in rows
        if (query.status == "all" or r.worst_name == query.status)
        and (not needle or needle in r.name.lower() or needle in r.model.lower())
    ]
    matched.sort(key=lambda r: r.name)  # ties stay in name order (sorts are stable, reversed too)
    matched.sort(key=lambda r: _sort_value(r, query.sort), reverse=query.descending)
    first = (query.page - 1) * query.page_size
    return matched[first : first + query.page_size], len(matched)


def status_counts(rows: Sequence[OverviewRow]) -> dict[str, int]:
    counts = dict.fromkeys(STATUS_FILTERS[1:], 0)
    for row in rows:
        counts[row.worst_name] += 1
    return counts


def chip(status: ResultStatusApp | None, label: str | None = None) -> str:
    name = NO_RESULTS if status is None else status.name
    colour = NO_RESULTS_COLOUR if status is None else STATUS_COLOURS[status]
    text = escape(label if label is not None else name.replace("_", " "))
    return f"<span class='chip status-{name}' style='background:{colour}' title='{name}'>{text}</span>"


def _change(now: int, before: int) -> str:
    if before == 0:
        return "new" if now else "-"
    return f"{(now - before) / before:+.0%}"


def _rate(errors: int, events: int) -> float | None:
    return errors / events if events else None


def _rate_text(errors: int, events: int, previous_errors: int, previous_events: int) -> str:
    now, before = _rate(errors, events), _rate(previous_errors, previous_events)
    text = "-" if now is None else f"{now:.2%}"
    if before is not None:
        text += f" <span class='muted'>(was {before:.2%})</span>"
    return text


def render_overview(
    rows: Sequence[OverviewRow],
    total: int,
    counts: Mapping[str, int],
    traffic: Mapping[str, Traffic],
    apps: Sequence[str],
    query: OverviewQuery,
    period_hours: float,
    now: datetime,
    *,
    plotly_src: str,
    nav: str,
) -> str:
    filters = " ".join(
        f"<a class='filter{' active' if query.status == f else ''}' "
        f"href='{escape(query.url(status=f, page=1))}'>{escape(f.replace('_', ' '))}"
        f"{'' if f == 'all' else f' ({counts.get(f, 0)})'}</a>"
        for f in STATUS_FILTERS
    )
    search = (
        "<form method='get' action='/' class='search'>"
        f"<input type='hidden' name='status' value='{escape(query.status)}'>"
        f"<input type='hidden' name='sort' value='{escape(query.sort)}'>"
        f"<input name='q' placeholder='endpoint or model' value='{escape(query.search)}'>"
        "<button type='submit'>filter</button></form>"
    )

    def header(label: str, key: str | None) -> str:
        if key is None:
            return f"<th>{escape(label)}</th>"
        descending = not query.descending if query.sort == key else key in ("status", "last_request")
        arrow = (" ▼" if query.descending else " ▲") if query.sort == key else ""
        link = query.url(sort=key, order="desc" if descending else "asc", page=1)
        return f"<th><a href='{escape(link)}'>{escape(label)}{arrow}</a></th>"

    hours = f"{period_hours:g} h"
    head = (
        "<tr>"
        + header("endpoint", "name")
        + header("model", "model")
        + header("last request", "last_request")
        + header(f"events ({hours} vs previous)", None)
        + header(f"error rate ({hours})", None)
        + "".join(f"<th>{escape(app)}</th>" for app in apps)
        + header("status", "status")
        + "</tr>"
    )
    body = []
    for row in rows:
        t = traffic.get(row.endpoint_id, Traffic())
        last = row.last_request.strftime("%Y-%m-%d %H:%M UTC") if row.last_request else "never"
        body.append(
            f"<tr class='endpoint' data-endpoint='{escape(row.name)}' data-status='{row.worst_name}'>"
            f"<td class='name'><a href='{escape(endpoint_path(row.name))}'>{escape(row.name)}</a></td>"
            f"<td>{escape(row.model)} {escape(row.version)}</td><td>{last}</td>"
            f"<td>{t.events:,} <span class='muted'>({_change(t.events, t.previous_events)})</span></td>"
            f"<td>{_rate_text(t.errors, t.events, t.previous_errors, t.previous_events)}</td>"
            + "".join(
                f"<td class='app' data-app='{escape(app)}'>{chip(row.statuses.get(app))}</td>" for app in apps
            )
            + f"<td>{chip(row.worst)}</td></tr>"
        )
    pages = max(1, -(-total // query.page_size))
    pager = [f"page {query.page} of {pages} · {total:,} endpoints"]
    if query.page > 1:
        pager.insert(0, f"<a rel='prev' href='{escape(query.url(page=query.page - 1))}'>« previous</a>")
    if query.page < pages:
        pager.append(f"<a rel='next' href='{escape(query.url(page=query.page + 1))}'>next »</a>")
    summary = (
        f"<p>{sum(counts.values()):,} endpoints · status of each app's latest window · "
        f"as of {now:%Y-%m-%d %H:%M} UTC</p>"
    )
    empty = "" if rows else "<p>No endpoint matches.</p>"
    return page(
        "Model endpoints",
        DASHBOARD_STYLE
        + summary
        + f"<div class='filters'>{filters}</div>{search}"
        + f"<table id='endpoints'>{head}{''.join(body)}</table>{empty}"
        + f"<p class='pager'>{' · '.join(pager)}</p>",
        plotly_src=plotly_src,
        nav=nav,
    )
