"""What the arrival log tells the controller: how many events are stored for a slot, and when."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ArrivalSpan:
    """The stored events of one slot: the time span they cover and how many there are."""

    first_event: datetime
    last_event: datetime
    events: int
