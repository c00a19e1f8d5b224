"""Deep read-only views of the reference stats and endpoint fields an app receives.

`FrozenDict` and `FrozenList` are `dict` and `list` subclasses (so `json.dumps`, equality with
plain values and `isinstance` checks keep working) whose mutating methods raise `TypeError`.
`copy.copy` / `copy.deepcopy` return plain, mutable copies for apps that want to edit one.
"""

import copy
from typing import Any, NoReturn, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def _refuse(obj: object, *_: object, **__: object) -> NoReturn:
    raise TypeError(
        f"{type(obj).__name__} is read-only: the reference stats and the endpoint are shared by "
        "every app; copy.deepcopy() it to change a copy"
    )


class FrozenDict(dict[K, V]):
    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __copy__(self) -> dict[K, V]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[K, V]:
        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list[V]):
    __setitem__ = _refuse
    __delitem__ = _refuse
    __iadd__ = _refuse
    __imul__ = _refuse
    append = _refuse
    extend = _refuse
    insert = _refuse
    pop = _refuse
    remove = _refuse
    clear = _refuse
    sort = _refuse
    reverse = _refuse

    def __copy__(self) -> list[V]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[V]:
        return [copy.deepcopy(v, memo) for v in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """A deep read-only view of JSON-like `value` (dicts, lists and tuples of scalars)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, FrozenDict | FrozenList):
        return value
    if isinstance(value, dict):  # scalars (most stats values) kept without a call each
        return FrozenDict({k: v if type(v) in _SCALARS else freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        if set(map(type, value)) <= _SCALARS:  # histograms: no element to freeze
            return FrozenList(value)
        return FrozenList(freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(freeze(v) for v in value)
    return value
