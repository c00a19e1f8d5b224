"""Links from Dagster metadata to the monitoring service's pages (`core.links`, `MM_UI_URL`)."""

import heapq

from dagster import MetadataValue, TableColumn, TableMetadataValue, TableRecord, TableSchema

from mm_dagster.core.links import UiLinks
from mm_dagster.core.report import AppWindowReport
from mm_dagster.core.schemas import ResultStatusApp
from mm_dagster.core.segments import ENDPOINT_WIDE, segment_label

MAX_PAGE_LINKS = 20


def flagged_window_pages(
    report: AppWindowReport, links: UiLinks, limit: int = MAX_PAGE_LINKS
) -> dict[str, MetadataValue]:
    """`page_<endpoint>` (`page_<endpoint> [<segment>]`): the window page of each endpoint (and
    segment) with a potential or detected result, worst first, at most `limit`."""
    flagged = [
        (status, endpoint_id, ENDPOINT_WIDE)
        for endpoint_id, status in report.statuses().items()
        if status >= ResultStatusApp.potential_detection
    ]
    flagged += [
        (status, endpoint_id, key)
        for (endpoint_id, key), status in report.segment_statuses().items()
        if status >= ResultStatusApp.potential_detection
    ]
    names = report.endpoint_names
    ranked = [
        (-int(status), names.get(endpoint_id, endpoint_id), key) for status, endpoint_id, key in flagged
    ]
    pages: dict[str, MetadataValue] = {}
    for _, name, segment in heapq.nsmallest(limit, ranked):
        label = f"page_{name}" + (f" [{segment_label(segment)}]" if segment else "")
        pages[label] = MetadataValue.url(links.window(name, report.window.start, report.app, segment))
    return pages


FLAGGED_SCHEMA = TableSchema(
    columns=[
        TableColumn("endpoint", "string", description="endpoint name [segment]"),
        TableColumn("result", "string"),
        TableColumn("status", "string"),
        TableColumn("value", "float"),
        TableColumn("drifting_features", "string", description="worst first (drift results)"),
    ]
)


def flagged_table(report: AppWindowReport, limit: int = MAX_PAGE_LINKS) -> TableMetadataValue:
    """The window's potential and detected results, worst first (their window pages are the
    clickable `page_<endpoint>` entries beside it: a table cell cannot be a link)."""
    records = [
        TableRecord(
            {
                "endpoint": f.label,
                "result": f.result,
                "status": f.status.name,
                "value": round(f.value, 4),
                "drifting_features": ", ".join(f.features),
            }
        )
        for f in report.flagged(limit)
    ]
    return MetadataValue.table(records, FLAGGED_SCHEMA)
