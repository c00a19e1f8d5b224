"""Reference feature stats per segment (see `core.segments`), computed once per reference."""

from collections.abc import Sequence

import pandas as pd

from mm_dagster.core.segments import SegmentReference, largest_segments, segment_key, split_by_segment
from mm_dagster.stats.feature_stats import compute_feature_stats


def segment_references(
    reference: pd.DataFrame, columns: Sequence[str], segment_columns: Sequence[str], max_segments: int
) -> list[SegmentReference]:
    """The reference's `max_segments` largest segments, then `__other__` (the rest pooled, when
    there is a rest), each with the stats of `columns` on its own rows."""
    kept = largest_segments(reference, segment_columns, max_segments)
    present = [c for c in columns if c in reference.columns]
    return [
        SegmentReference(segment_key(segment), segment, len(rows), compute_feature_stats(rows, present))
        for segment, rows in split_by_segment(reference, segment_columns, kept)
    ]
