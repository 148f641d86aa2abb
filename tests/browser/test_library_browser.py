"""The pose library browser in the studio, in real Chromium: open it, filter to 2-person entries,
read their full prompts, page, and pick one onto the canvas (no prompt typed at all)."""

from __future__ import annotations

import pytest

from tests.browser.test_studio import TIMEOUT_MS, canvas_value, choose, open_studio
from tests.helpers.retrieval import ENTRIES

PAGER = "#library-pager [data-testid=markdown]"
browser = pytest.mark.browser


def pager_text(page) -> str:
    return page.inner_text(PAGER)


def wait_pager(page, text: str) -> None:
    page.wait_for_function(f"t => document.querySelector('{PAGER}').innerText.includes(t)", arg=text,
                           timeout=TIMEOUT_MS)


@browser
def test_filter_to_two_people_read_prompts_and_pick_one_onto_the_canvas(chromium, studio_url, shots):
    page, _ = open_studio(chromium, studio_url)
    page.click("#library-box button:has-text('Browse the pose library')")
    wait_pager(page, f"Page 1 of 2 · {len(ENTRIES)} entries")          # 12 a page
    assert page.locator("#library-gallery img").count() == 12
    page.click("#library-next")
    wait_pager(page, "Page 2 of 2")
    assert page.locator("#library-gallery img").count() == len(ENTRIES) - 12
    assert page.is_disabled("#library-next") and page.is_enabled("#library-prev")

    choose(page, "#library-people", "2 people")
    two = [e for e in ENTRIES if e[4] == 2]
    wait_pager(page, f"Page 1 of 1 · {len(two)} entries")
    page.wait_for_function(f"document.querySelectorAll('#library-gallery img').length === {len(two)}",
                           timeout=TIMEOUT_MS)
    listing = page.inner_text("#library-prompts")
    for _, prompt, *_ in two:                         # every full source prompt is readable
        assert prompt in listing
    assert "three friends" not in listing and "a man running" not in listing
    page.locator("#library-box").screenshot(path=str(shots / "library_browser_two_people.png"))

    choose(page, "#library-view", "side")
    wait_pager(page, "Page 1 of 1 · 1 entry ")
    assert "two businessmen shaking hands, side view" in page.inner_text("#library-prompts")
    choose(page, "#library-view", "Any")
    wait_pager(page, f"Page 1 of 1 · {len(two)} entries")

    # Pick the second 2-person entry: it goes onto the canvas as the retrieval gallery's do.
    assert not canvas_value(page)["people"]
    page.locator("#library-gallery img").nth(1).click()
    page.wait_for_function("document.querySelector('#pose-editor .pe-root').parentElement.poseEditor"
                           ".getValue().people.length === 2", timeout=TIMEOUT_MS)
    page.locator("#pose-editor").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "library_browser_picked.png"), full_page=False)

    page.fill("#library-text input", "juggling")
    page.press("#library-text input", "Enter")
    wait_pager(page, "No library entry matches")
    assert page.locator("#library-gallery img").count() == 0
    assert len(canvas_value(page)["people"]) == 2   # an empty page changes nothing else
    assert not page.page_errors, page.page_errors


@browser
def test_the_browser_fits_a_phone(chromium, studio_url, shots):
    page, _ = open_studio(chromium, studio_url, width=390)
    page.click("#library-box button:has-text('Browse the pose library')")
    wait_pager(page, f"Page 1 of 2 · {len(ENTRIES)} entries")
    box = page.locator("#library-box")
    box.scroll_into_view_if_needed()
    box.screenshot(path=str(shots / "library_browser_phone.png"))
    overflow = box.evaluate("b => [b.scrollWidth, b.clientWidth]")
    assert overflow[0] <= overflow[1] + 1, f"the library box overflows: {overflow}"
    right = page.evaluate("Math.max(...[...document.querySelectorAll('#library-box img, #library-prompts li')]"
                          ".map(e => e.getBoundingClientRect().right))")
    assert right <= 390, f"library content reaches x={right} on a 390 px screen"
    assert not page.page_errors, page.page_errors
