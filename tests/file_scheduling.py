"""How `make test` spreads the test files over its two xdist workers (`--dist loadfile`, with this
scheduler in its place).

A file stays on one worker (the database-server tests of a file share a database). The files that
start a Dagster daemon with its run, step and worker processes form one unit, so they run one after
the other: two at once starve each other of the two cores and miss their deadlines. The longest
work goes first (conftest.py orders the collection; `--no-loadscope-reorder` keeps that order), so
no worker is left with a long file at the end while the other idles."""

import pytest
from xdist.scheduler import LoadFileScheduling

CLUSTER_FILES = frozenset({"tests/test_distributed.py", "tests/test_run_retries.py"})
CLUSTER_UNIT = "dagster daemon clusters"


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class ClusterFilesTogether(LoadFileScheduling):
    def _split_scope(self, nodeid: str) -> str:
        file = file_of(nodeid)
        return CLUSTER_UNIT if file in CLUSTER_FILES else file


def longest_first(items: list[pytest.Item]) -> None:
    """Order the collection: the cluster files, then the files with a slow test, then the rest;
    each file's tests keep their order."""
    slow_files = {file_of(item.nodeid) for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        file = file_of(item.nodeid)
        return 0 if file in CLUSTER_FILES else 1 if file in slow_files else 2

    items.sort(key=rank)
