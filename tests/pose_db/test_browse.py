"""The library browser's filters and pages over small real indexes (Chroma + MiniLM)."""

import math

import pytest

from pose_db.index.browse import BrowseQuery, LibraryBrowser
from pose_db.scene.entry import LibraryEntry
from pose_db.scene.model import PoseError
from tests.helpers.retrieval import ENTRIES, standing_scene


@pytest.fixture(scope="module")
def browser(retrieval_index):
    return LibraryBrowser(retrieval_index)


def test_facets_list_what_the_library_holds(browser):
    facets = browser.facets()
    assert facets.total == len(ENTRIES)
    assert facets.people == (1, 2, 3) and facets.categories == ("test",)
    assert facets.views == tuple(sorted({e[3] for e in ENTRIES}))


def test_people_view_and_text_filters(browser):
    two = browser.browse(BrowseQuery(people=2, page_size=50))
    assert two.total == sum(1 for e in ENTRIES if e[4] == 2) == len(two.entries)
    assert all(e.people == 2 and len(e.scene.people) == 2 for e in two.entries)
    side = browser.browse(BrowseQuery(view="side", page_size=50))
    assert {e.id for e in side.entries} == {e[0] for e in ENTRIES if e[3] == "side"}
    both = browser.browse(BrowseQuery(people=2, view="side"))
    assert [e.id for e in both.entries] == ["handshake-001"]
    words = browser.browse(BrowseQuery(text="Waving HELLO together"))
    assert {e.id for e in words.entries} == {"wave-pair-000", "group-001"}
    assert browser.browse(BrowseQuery(text="wave_pair")).entries[0].id == "wave-pair-000"  # the action's name
    nothing = browser.browse(BrowseQuery(text="juggling"))
    assert (nothing.entries, nothing.total, nothing.page, nothing.pages) == ([], 0, 1, 1)


def test_pages_are_stable_and_cover_every_entry_once(browser):
    first = browser.browse(BrowseQuery(page_size=5))
    assert (first.total, first.pages, first.page) == (len(ENTRIES), math.ceil(len(ENTRIES) / 5), 1)
    seen = []
    for page in range(1, first.pages + 1):
        seen += [e.id for e in browser.browse(BrowseQuery(page=page, page_size=5)).entries]
    assert sorted(seen) == sorted(e[0] for e in ENTRIES) and len(seen) == len(set(seen))
    assert seen == [e.id for e in browser.browse(BrowseQuery(page_size=100)).entries]
    last = browser.browse(BrowseQuery(page=99, page_size=5))                  # past the end: the last page
    assert last.page == first.pages and [e.id for e in last.entries] == seen[-len(last.entries):]
    assert browser.browse(BrowseQuery(page=0, page_size=5)).page == 1


@pytest.mark.parametrize("query, words", [
    (BrowseQuery(category="dance"), "no category 'dance'; choose one of test"),
    (BrowseQuery(view="aerial"), "no view 'aerial'"),
    (BrowseQuery(people=7), "no people count 7; choose one of 1, 2, 3"),
    (BrowseQuery(people=1.5), "People must be a whole number"),
    (BrowseQuery(page=float("nan")), "Page must be a whole number"),
    (BrowseQuery(page_size=0), "Page size must be 1 to 100"),
])
def test_bad_filters_say_what_exists(browser, query, words):
    with pytest.raises(PoseError) as err:
        browser.browse(query)
    assert words in str(err.value)


def test_full_prompts_and_poses_come_back_unchanged(browser, retrieval_index):
    entry = browser.entry("handshake-001")
    assert entry.prompt == "two businessmen shaking hands, side view"
    assert entry.scene == standing_scene(2)
    with pytest.raises(PoseError, match="No library entry 'nope'"):
        browser.entry("nope")


def test_category_filter_and_a_new_generation(tmp_path, minilm_embedder):
    from pose_db.index.build import build_index

    def entries(extra=()):
        rows = [("hug-000", "a couple hugging", "hug", "interaction", 2),
                ("hug-001", "two friends hugging tightly", "hug", "interaction", 2),
                ("run-000", "a man sprinting", "run", "sports", 1),
                ("leap-000", "a dancer leaping", "leap", "dance", 1), *extra]
        return [LibraryEntry(id=i, prompt=p, action=a, action_name=a.title(), category=c, people=n, view="front",
                             pose=standing_scene(n), profiles=["adult"] * n) for i, p, a, c, n in rows]

    index = build_index(tmp_path / "index", url="", entries=entries(), embedder=minilm_embedder, progress=False)
    try:
        browser = LibraryBrowser(index)
        assert browser.facets().categories == ("dance", "interaction", "sports")
        page = browser.browse(BrowseQuery(category="interaction"))
        assert [e.id for e in page.entries] == ["hug-000", "hug-001"]
        assert browser.browse(BrowseQuery(category="sports", people=2)).total == 0
        generation = index.generation
        index.close()
        index = build_index(tmp_path / "index", url="", embedder=minilm_embedder, progress=False,
                            entries=entries([("spin-000", "a dancer spinning", "spin", "dance", 1)]))
        browser.index = index
        assert index.generation != generation
        assert [e.id for e in browser.browse(BrowseQuery(category="dance")).entries] == ["leap-000", "spin-000"]
    finally:
        index.close()
