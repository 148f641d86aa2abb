"""User-facing engine errors (torch-free: the UI imports this module).

Every message is one sentence that tells the user what to do next.
"""

from __future__ import annotations


class EngineError(Exception):
    """A problem the user can fix (bad input, missing weights, out of memory...)."""


class GenerationCancelled(EngineError):
    """The user stopped a generation; nothing was produced."""

    def __init__(self, message: str = "Generation was stopped before it finished.") -> None:
        super().__init__(message)
