"""Addresses of the service's pages."""

from datetime import UTC, datetime

from mm_dagster.core.links import UiLinks, window_path


def test_window_pages_of_a_batch_are_the_window_links_one_by_one() -> None:
    links = UiLinks("https://mm.example.com/base/")
    pages = links.windows_of("histogram-data-drift")
    first, second = datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 10, 10, tzinfo=UTC)
    for name in ("fraud", "a b/c?d&e", "ünï"):
        for start in (first, second):
            for segment in ("", "region=eu", "k=a&b"):
                expected = links.window(name, start, "histogram-data-drift", segment)
                assert pages(name, start, segment) == expected
                assert expected == "https://mm.example.com/base" + window_path(
                    name, start, "histogram-data-drift", segment
                )
    assert pages("a b", first, "") == (
        "https://mm.example.com/base/endpoints/a%20b/windows/2026-11-20-10%3A00?app=histogram-data-drift"
    )
