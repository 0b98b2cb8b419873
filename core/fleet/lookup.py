"""Find a speaker by what an operator types: its address (any case, `-` or `:`), its name or
the alias the config gives it. A name that fits several speakers is refused, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from core.fleet.model import Speaker

#: AA:BB:CC:DD:EE:FF, also written with dashes or in lower case.
_ADDRESS: Final = re.compile(r"^[0-9A-F]{2}([:-][0-9A-F]{2}){5}$", re.IGNORECASE)


#: What an attempt at an address looks like (three or more pairs, or twelve hex digits):
#: a malformed one is refused as such, not searched for as a name.
_ADDRESS_ATTEMPT: Final = re.compile(
    r"^([0-9A-Z]{1,3}([:-][0-9A-Z]{1,3}){2,}|[0-9A-F]{12})$", re.IGNORECASE
)


def looks_like_address(text: str) -> bool:
    return bool(_ADDRESS.match(text.strip()))


def malformed_address(text: str) -> bool:
    """True for 'AA:BB:CC:DD:EE' or '100000000001': meant as an address, not a valid one."""
    cleaned = text.strip()
    return bool(_ADDRESS_ATTEMPT.match(cleaned)) and not looks_like_address(cleaned)


def normal_address(text: str) -> str:
    """'aa-bb-cc-dd-ee-ff' -> 'AA:BB:CC:DD:EE:FF'."""
    return text.strip().upper().replace("-", ":")


def find_speaker(query: str, speakers: Iterable[Speaker]) -> tuple[Speaker | None, str]:
    """(the speaker, '') or (None, what is wrong in one line, naming the candidates)."""
    known = [s for s in speakers if s.paired]
    if looks_like_address(query):
        address = normal_address(query)
        found = next((s for s in known if s.address.upper() == address), None)
        return (found, "") if found else (None, f"no paired speaker {address}")
    wanted = " ".join(query.split()).casefold()
    if not wanted:
        return None, "no speaker given: write its address (AA:BB:CC:DD:EE:FF) or its name"
    exact = [s for s in known if s.name.casefold() == wanted]
    matches = exact or [s for s in known if wanted in s.name.casefold()]
    if len(matches) == 1:
        return matches[0], ""
    if not matches:
        names = ", ".join(sorted(s.name for s in known if s.in_fleet)) or "none"
        return None, f"no paired speaker named {query!r} (speakers: {names})"
    listed = ", ".join(f"{s.name} ({s.address})" for s in sorted(matches, key=lambda s: s.name))
    return None, f"{query!r} fits {len(matches)} speakers: {listed}; give the address"
