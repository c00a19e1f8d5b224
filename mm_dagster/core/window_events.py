"""A window's events per endpoint, with each frame's float columns also as one array.

The event store reads a window's float64 columns into one column-major array per scan and builds
the endpoints' frames on it (their float columns are views of it, no copy). `NumberBlock` keeps an
endpoint's rows of that array, so the built-in apps take every numeric feature of an endpoint at
once instead of going through pandas column by column (~0.5 ms an endpoint at 20 features).

A block belongs to one frame object: code that makes a new frame (a filter, a join, a segment's
rows) gets no block for it (`NumberBlock.of`), and the apps read that frame through pandas.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class NumberBlock:
    """`values[:, j]` holds column `columns[j]` of `frame`: float64, read-only, the frame's rows."""

    frame: pd.DataFrame
    columns: tuple[str, ...]
    values: np.ndarray

    def of(self, frame: pd.DataFrame) -> "NumberBlock | None":
        """This block if it belongs to `frame` (the very object), else None."""
        return self if self.frame is frame else None

    def select(self, wanted: Sequence[str]) -> np.ndarray | None:
        """The (rows x wanted) float64 array, column-major, or None when a wanted column is not
        in the block (then the caller reads the frame)."""
        if tuple(wanted) == self.columns:
            return self.values
        position = {c: j for j, c in enumerate(self.columns)}
        if not all(c in position for c in wanted):
            return None
        return np.asfortranarray(self.values[:, [position[c] for c in wanted]])


class WindowEvents(dict[str, pd.DataFrame]):
    """The window's frames by endpoint id (a dict, as before), with `numbers`: the float columns
    of the frames the event store read, by endpoint id."""

    def __init__(self, frames: Mapping[str, pd.DataFrame], numbers: Mapping[str, NumberBlock]) -> None:
        super().__init__(frames)
        self.numbers = dict(numbers)

    def numbers_of(self, endpoint_id: str) -> NumberBlock | None:
        """The endpoint's block, if its frame is still the one the block was read with."""
        block = self.numbers.get(endpoint_id)
        frame = self.get(endpoint_id)
        return None if block is None or frame is None else block.of(frame)

    def derived(self, frames: Mapping[str, pd.DataFrame], same_rows: Collection[str] = ()) -> "WindowEvents":
        """Other frames for these events (some endpoints left out, some frames replaced), keeping
        the blocks; `same_rows`: endpoints whose new frame has the old one's rows in its order
        and float columns (a column added), whose block moves to the new frame."""
        numbers = dict(self.numbers)
        for endpoint_id in same_rows:
            block = self.numbers_of(endpoint_id)
            if block is not None and endpoint_id in frames:
                numbers[endpoint_id] = replace(block, frame=frames[endpoint_id])
        return WindowEvents(frames, {e: b for e, b in numbers.items() if e in frames})


def numbers_of(events: Mapping[str, pd.DataFrame], endpoint_id: str) -> NumberBlock | None:
    """`events.numbers_of(endpoint_id)` for `WindowEvents`, None for any other mapping."""
    return events.numbers_of(endpoint_id) if isinstance(events, WindowEvents) else None
