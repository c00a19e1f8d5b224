"""What the arrival log tells the controller: when events of a slot arrived, and how many."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ArrivalSpan:
    """Events of one slot that arrived in a set of files: their time span and newest file id."""

    first_event: datetime
    last_event: datetime
    events: int
    max_id: int
