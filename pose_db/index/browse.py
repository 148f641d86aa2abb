"""Browsing the pose library: filter the indexed entries by category, people count, view and
words of their prompt, and page through them in a stable order, with no query to guess.

It reads what the index stores (`PoseIndex.records`: each prompt and its metadata, the pose as
compact OpenPose JSON parsed only when an entry is shown), once per index generation: a build
that publishes a new generation is picked up on the next browse after the index has seen it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from pose_db.scene.entry import LibraryEntry
from pose_db.scene.model import PoseError

from .store import entry_from_record

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class BrowseQuery:
    """Which entries to show. None (or "") for a filter means "any".

    Args:
        category: the action's category, e.g. ``"interaction"``.
        people: exactly this many people.
        view: camera view, e.g. ``"front"``.
        text: words that must all appear in the prompt or the action's name (any case).
        page: 1-based page number; past the last page gives the last page.
        page_size: entries per page, 1 to ``MAX_PAGE_SIZE``.
    """

    category: str | None = None
    people: int | None = None
    view: str | None = None
    text: str = ""
    page: int = 1
    page_size: int = 12


@dataclass(frozen=True)
class Facets:
    """What the library holds: each filter's values (sorted) and the number of entries."""

    categories: tuple[str, ...]
    people: tuple[int, ...]
    views: tuple[str, ...]
    total: int


@dataclass
class BrowsePage:
    """One page of matching entries, sorted by category, action and id.

    Args:
        entries: this page's entries (poses parsed on first use of ``entry.scene``).
        total: how many entries match the query in all.
        page: the page shown (1-based; 1 when nothing matches).
        pages: how many pages the matches fill (at least 1).
    """

    entries: list[LibraryEntry] = field(default_factory=list)
    total: int = 0
    page: int = 1
    pages: int = 1


class LibraryBrowser:
    """Filters and pages over one `PoseIndex` (or anything with ``records()`` and ``generation``).

    Safe to share between threads: the entries are loaded once per generation under a lock and
    never changed afterwards.
    """

    def __init__(self, index) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._generation: str | None = None
        self._entries: list[LibraryEntry] = []
        self._facets = Facets((), (), (), 0)
        self._by_id: dict[str, LibraryEntry] = {}

    def facets(self) -> Facets:
        self._load()
        return self._facets

    def browse(self, query: BrowseQuery) -> BrowsePage:
        """The page of entries matching ``query``; a bad filter raises `PoseError` saying which
        values exist."""
        self._load()
        size = _whole(query.page_size, "Page size")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise PoseError(f"Page size must be 1 to {MAX_PAGE_SIZE}, got {size}.")
        page = _whole(query.page, "Page")
        facets, category, view = self._facets, query.category or None, query.view or None
        people = None if query.people in (None, "", 0) else _whole(query.people, "People")
        for name, value, known in (("category", category, facets.categories), ("view", view, facets.views),
                                   ("people count", people, facets.people)):
            if value is not None and value not in known:
                choices = ", ".join(str(k) for k in known) or "none: the library is empty"
                raise PoseError(f"The library has no {name} {value!r}; choose one of {choices}.")
        words = (query.text or "").lower().split()
        matches = [e for e in self._entries
                   if (category is None or e.category == category) and (people is None or e.people == people)
                   and (view is None or e.view == view)
                   and all(w in f"{e.prompt} {e.action_name}".lower() for w in words)]
        pages = max(1, -(-len(matches) // size))
        page = min(max(1, page), pages)
        return BrowsePage(matches[(page - 1) * size: page * size], len(matches), page, pages)

    def entry(self, entry_id: str) -> LibraryEntry:
        """The entry with this id, or `PoseError`."""
        self._load()
        if entry_id not in self._by_id:
            raise PoseError(f"No library entry {entry_id!r}; browse again, the library may have been rebuilt.")
        return self._by_id[entry_id]

    def _load(self) -> None:
        with self._lock:
            if self._generation is not None and self._generation == self.index.generation:
                return
            entries = sorted((entry_from_record(r) for r in self.index.records()),
                             key=lambda e: (e.category, e.action_name, e.id))
            self._entries, self._by_id = entries, {e.id: e for e in entries}
            self._facets = Facets(tuple(sorted({e.category for e in entries})),
                                  tuple(sorted({e.people for e in entries})),
                                  tuple(sorted({e.view for e in entries})), len(entries))
            self._generation = self.index.generation


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value):
        raise PoseError(f"{name} must be a whole number, got {value!r}.")
    return int(value)
