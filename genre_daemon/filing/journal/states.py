"""The life of a file as the journal records it: the states, the legal transitions between them,
and the poison-file limit. The states and their values are pinned by DESIGN.md (the life of a
file) and stored in every journal; never rename one.

The schema's CHECK constraints and every query that filters on a state are built from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

# A file the daemon was classifying when it died this many times is a poison file: on recovery
# it goes to quarantine instead of being tried again (no crash loop). See Journal.requeue().
MAX_INTERRUPTIONS = 3


class State(str, Enum):
    """Where a file is in its life (DESIGN.md: the life of a file)."""

    SEEN = "seen"
    SETTLING = "settling"
    QUEUED = "queued"
    CLASSIFYING = "classifying"
    MOVED = "moved"
    REVIEW = "review"
    QUARANTINED = "quarantined"
    GONE = "gone"


TERMINAL = frozenset({State.MOVED, State.REVIEW, State.QUARANTINED, State.GONE})
# The terminal states reached by a move; only Journal.finish() enters them (with a move row).
PLACED = frozenset({State.MOVED, State.REVIEW, State.QUARANTINED})
_KIND = {State.MOVED: "genre", State.REVIEW: "review", State.QUARANTINED: "quarantine"}
# Recorded, not yet being classified: the states a file waits in (settling, or queued for a worker).
WAITING = frozenset({State.SEEN, State.SETTLING, State.QUEUED})

# Legal next states. Any non-terminal state may go back to SEEN (the file changed while waiting)
# or to GONE (it vanished); CLASSIFYING -> QUEUED is "retry later" (e.g. the disk was full).
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.SEEN: frozenset({State.SEEN, State.SETTLING, State.GONE}),
    State.SETTLING: frozenset({State.SETTLING, State.QUEUED, State.SEEN, State.GONE}),
    State.QUEUED: frozenset({State.CLASSIFYING, State.SETTLING, State.SEEN, State.GONE}),
    State.CLASSIFYING: frozenset(
        {State.MOVED, State.REVIEW, State.QUARANTINED, State.GONE, State.QUEUED, State.SEEN}
    ),
    State.MOVED: frozenset(),
    State.REVIEW: frozenset(),
    State.QUARANTINED: frozenset(),
    State.GONE: frozenset(),
}


def can_transition(src: State, dst: State) -> bool:
    """True when the state machine allows ``src -> dst``."""
    return dst in TRANSITIONS[src]
