"""Every speaker's dropouts (DESIGN §4.3): in order, marked when they come together with other
speakers', merged when two records are one interruption, taken out when cancelled.

A dropout is identified by (address, kind, start) (§4.2: `start_t`). The live detector adds,
ends and retracts dropouts here; recorded `dropout` records (the log, a JSON Lines file, either
schema) are merged in, in any order and as often as they are read.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from core.fleet.events import dropout_start_t

#: Dropouts of different speakers this close together are reported as simultaneous.
TOGETHER_WITHIN_S: Final = 5.0
#: Recorded dropouts of one speaker are one interruption when the later starts before the
#: earlier ended or, the earlier without an end, this soon after it began (versions before
#: issue 11 logged a probe miss and the stall it caused as two dropouts, < 1 s apart).
SAME_INTERRUPTION_S: Final = 5.0

#: (address, kind, start): how readers identify a dropout.
Key = tuple[str, str, float]


@dataclass(frozen=True, slots=True)
class Dropout:
    """One dropout of one speaker."""

    address: str
    kind: str
    start: float
    end: float | None = None
    together_with: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else round(self.end - self.start, 3)


class DropoutHistory:
    """The dropouts of every speaker, each list sorted by (start, kind); pure. Lookups by key
    are binary searches: a month of a 282 s dropper (≈ 9,000 dropouts) loads in well under a
    second."""

    def __init__(self) -> None:
        self._by: dict[str, list[Dropout]] = {}
        #: (start, kind) of each entry of `_by`, for bisect.
        self._keys: dict[str, list[tuple[float, str]]] = {}
        #: Retracted dropouts: a log read again does not revive them.
        self._cancelled: set[Key] = set()
        #: Their starts per speaker, sorted (is a together_with naming it stale?).
        self._cancelled_starts: dict[str, list[float]] = {}
        #: Speakers whose dropouts changed since the caller last cleared it (periods to redo).
        self.changed: set[str] = set()

    # -- reading ---------------------------------------------------------------------------
    def of(self, address: str) -> list[Dropout]:
        return list(self._by.get(address, ()))

    def last(self, address: str) -> Dropout | None:
        dropouts = self._by.get(address)
        return dropouts[-1] if dropouts else None

    def find(self, address: str, kind: str, start: float) -> Dropout | None:
        index = self._index(address, kind, start)
        return None if index is None else self._by[address][index]

    # -- live ------------------------------------------------------------------------------
    def add(self, address: str, kind: str, start: float) -> Dropout:
        """A new dropout, marked together with other speakers' latest within
        TOGETHER_WITHIN_S (both ways)."""
        together = tuple(
            sorted(
                other
                for other, dropouts in self._by.items()
                if other != address
                and dropouts
                and abs(dropouts[-1].start - start) <= TOGETHER_WITHIN_S
            )
        )
        for other in together:
            last = self._by[other][-1]
            if address not in last.together_with:
                marked = tuple(sorted({*last.together_with, address}))
                self._replace(last, replace(last, together_with=marked))
        dropout = Dropout(address, kind, start, together_with=together)
        self._insert(dropout)
        return dropout

    def end(self, address: str, kind: str, start: float, t: float) -> Dropout | None:
        """The dropout ended at `t` (None if it is not, or no longer, in the history)."""
        known = self.find(address, kind, start)
        if known is None:
            return None
        ended = replace(known, end=t)
        self._replace(known, ended)
        return ended

    def retract(self, dropout: Dropout) -> None:
        """Take a dropout out, and its speaker out of the others' together_with."""
        self._remove(dropout)
        self._cancel(dropout.address, dropout.kind, dropout.start)
        for other, dropouts in self._by.items():
            low = bisect_left(self._keys[other], (dropout.start - TOGETHER_WITHIN_S, ""))
            for known in dropouts[low:]:
                if known.start > dropout.start + TOGETHER_WITHIN_S:
                    break
                if dropout.address in known.together_with and self._retracted_near(
                    dropout.address, known.start
                ):
                    kept = tuple(a for a in known.together_with if a != dropout.address)
                    self._replace(known, replace(known, together_with=kept))

    # -- recorded --------------------------------------------------------------------------
    def record(self, address: str, record: Mapping[str, Any]) -> None:
        """A recorded `dropout` record (start, end or cancelled line, either schema)."""
        kind = str(record.get("kind", "link"))
        start = dropout_start_t(record)
        if record.get("phase") == "cancelled":
            known = self.find(address, kind, start)
            if known is not None:
                self.retract(known)
            self._cancel(address, kind, start)
            return
        end = record.get("end_t")
        together = record.get("together_with")
        self.remember(
            address,
            kind,
            start,
            float(end) if isinstance(end, int | float) else None,
            tuple(str(a) for a in together) if isinstance(together, list | tuple) else (),
        )

    def remember(
        self,
        address: str,
        kind: str,
        start: float,
        end: float | None,
        together: tuple[str, ...] = (),
    ) -> None:
        """Merge a recorded dropout with what is known: the same key, or one interruption."""
        if (address, kind, start) in self._cancelled:
            return
        if together:
            together = tuple(sorted(a for a in {*together} if not self._retracted_near(a, start)))
        known = self.find(address, kind, start) or self._overlapping(address, start, end)
        if known is None:
            self._insert(Dropout(address, kind, start, end, together))
            return
        # A dropout's end line knows more than its start line (end, together_with); of two
        # records of one interruption the earlier start and kind stand.
        first = known if known.start <= start else Dropout(address, kind, start)
        ends = [e for e in (known.end, end) if e is not None]
        named = {*known.together_with, *together}
        merged = Dropout(
            address,
            first.kind,
            first.start,
            max(ends) if ends else None,
            tuple(sorted(a for a in named if not self._retracted_near(a, first.start))),
        )
        if merged != known:
            self._replace(known, merged)

    # -- internals -------------------------------------------------------------------------
    def _index(self, address: str, kind: str, start: float) -> int | None:
        keys = self._keys.get(address)
        if not keys:
            return None
        index = bisect_left(keys, (start, kind))
        return index if index < len(keys) and keys[index] == (start, kind) else None

    def _overlapping(self, address: str, start: float, end: float | None) -> Dropout | None:
        """A known dropout of this speaker that is one interruption with start..end."""
        keys = self._keys.get(address)
        if not keys:
            return None
        dropouts = self._by[address]
        index = bisect_left(keys, (start, ""))
        # The one before (histories hold no overlaps, so it is the only earlier candidate),
        # then those that start inside this one.
        for known in dropouts[max(0, index - 1) : index + 2]:
            if _one_interruption(known, start, end):
                return known
        return None

    def _insert(self, dropout: Dropout) -> None:
        keys = self._keys.setdefault(dropout.address, [])
        key = (dropout.start, dropout.kind)
        index = bisect_left(keys, key)
        keys.insert(index, key)
        self._by.setdefault(dropout.address, []).insert(index, dropout)
        self.changed.add(dropout.address)

    def _remove(self, dropout: Dropout) -> None:
        index = self._index(dropout.address, dropout.kind, dropout.start)
        if index is not None:
            del self._keys[dropout.address][index]
            del self._by[dropout.address][index]
            self.changed.add(dropout.address)

    def _replace(self, old: Dropout, new: Dropout) -> None:
        if (old.start, old.kind) == (new.start, new.kind):
            index = self._index(old.address, old.kind, old.start)
            if index is not None:
                self._by[old.address][index] = new
                self.changed.add(old.address)
                return
        self._remove(old)
        self._insert(new)

    def _cancel(self, address: str, kind: str, start: float) -> None:
        if (address, kind, start) not in self._cancelled:
            self._cancelled.add((address, kind, start))
            insort(self._cancelled_starts.setdefault(address, []), start)
        self.changed.add(address)

    @staticmethod
    def _near(starts: list[float], start: float) -> bool:
        index = bisect_left(starts, start - TOGETHER_WITHIN_S)
        return index < len(starts) and starts[index] <= start + TOGETHER_WITHIN_S

    def _retracted_near(self, address: str, start: float) -> bool:
        """Whether `address` had a dropout near `start` that was cancelled and none that
        stands: a together_with naming it is stale."""
        if not self._near(self._cancelled_starts.get(address, []), start):
            return False
        keys = self._keys.get(address, [])
        index = bisect_left(keys, (start - TOGETHER_WITHIN_S, ""))
        return not (index < len(keys) and keys[index][0] <= start + TOGETHER_WITHIN_S)


def _one_interruption(known: Dropout, start: float, end: float | None) -> bool:
    """Whether a recorded dropout from `start` to `end` and a known one overlap."""
    if known.start <= start:
        first_start, first_end, later = known.start, known.end, start
    else:
        first_start, first_end, later = start, end, known.start
    if first_end is not None:
        return later < first_end
    return later <= first_start + SAME_INTERRUPTION_S
