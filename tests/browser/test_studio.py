"""The studio in real Chromium: the creator's whole journey, timed and photographed.

Run: pytest tests/browser/test_studio.py -s  (prints page-load and retrieve round-trip times;
screenshots go to tests/browser/screenshots/ or $STUDIO_SCREENSHOTS).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from pose_db.scene.skeleton import KEYPOINT_INDEX, MIRROR_INDEX
from tests.helpers.browser import EDITOR, add_subject, drag, kp, screen

EXAMPLES = Path("assets/examples")
TIMEOUT_MS = 30_000
STATUS = "#retrieval-status [data-testid=markdown]"  # the text, not the progress timer over it


def open_studio(chromium, url: str, width: int = 1440):
    """A fresh browser context (its own Gradio session) on the studio; returns (page, seconds)."""
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("#retrieve", timeout=TIMEOUT_MS)
    page.wait_for_selector("#pose-editor", timeout=TIMEOUT_MS)
    page.page_errors = errors
    return page, time.perf_counter() - start


def retrieve(page, prompt: str) -> float:
    """Type ``prompt``, press Retrieve; seconds until the status line shows the answer."""
    page.fill("#prompt textarea", prompt)
    before = page.inner_text(STATUS)
    start = time.perf_counter()
    page.click("#retrieve")
    page.wait_for_function(f"before => document.querySelector('{STATUS}').innerText !== before",
                           arg=before, timeout=TIMEOUT_MS)
    return time.perf_counter() - start


def canvas_value(page) -> dict:
    return page.evaluate(f"{EDITOR}.getValue()")


def choose(page, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.locator("[data-testid=dropdown-option]", has_text=option).first.click()


@pytest.mark.slow
def test_creator_journey(chromium, studio_url, shots):
    page, first_load = open_studio(chromium, studio_url)
    loads = [first_load] + [open_studio(chromium, studio_url)[1] for _ in range(2)]

    add_subject(page, 0, EXAMPLES / "mia.png", "Mia")
    add_subject(page, 1, EXAMPLES / "leo.png", "Leo")
    assert page.locator("#subject-card-1").first.is_visible()

    prompts = ["two people shaking hands at a train station, golden hour",
               "two friends waving hello together in a park", "a couple hugging each other",
               "two people shaking hands at a train station, golden hour"]
    trips = [retrieve(page, p) for p in prompts]
    assert "skeletons" in page.inner_text(STATUS)
    page.wait_for_function("document.querySelectorAll('#retrieved img').length >= 2",
                           timeout=TIMEOUT_MS)
    thumbs = page.locator("#retrieved img")
    assert "0." in page.inner_text("#retrieved")  # scores in the captions

    # Pick the second skeleton: the canvas and the assignment control follow.
    thumbs.nth(1).click()
    page.wait_for_selector("#assign-1", state="visible")
    assert not page.locator("#assign-2").is_visible()
    # The canvas takes the output's shape (the size lock is on): wait for the refit.
    page.wait_for_function(f"{EDITOR}.getValue().canvas_width === "
                           "Number(document.querySelector('#width input').value) && "
                           f"{EDITOR}.getValue().canvas_height === "
                           "Number(document.querySelector('#height input').value)",
                           timeout=TIMEOUT_MS)
    picked = canvas_value(page)

    # Edit on the canvas: drag a wrist, undo it, mirror person 1, hide person 2's nose.
    wrist, nose = KEYPOINT_INDEX["r_wrist"], KEYPOINT_INDEX["nose"]
    assert kp(picked, 0, wrist)[2] and kp(picked, 1, nose)[2]
    page.locator("#pose-editor canvas").first.scroll_into_view_if_needed()
    start = screen(page, 0, wrist)
    drag(page, start, (start[0] + 30, start[1] - 25))
    page.wait_for_function(f"{EDITOR}.getValue().people[0].pose_keypoints_2d[{3 * wrist}] "
                           f"!== {kp(picked, 0, wrist)[0]}", timeout=TIMEOUT_MS)
    assert kp(canvas_value(page), 0, wrist)[1] < kp(picked, 0, wrist)[1] - 5
    page.keyboard.press("Control+z")
    assert canvas_value(page)["people"] == picked["people"]
    page.mouse.click(*screen(page, 0, wrist))
    page.click("#pose-editor [data-action=mirror]")
    page.mouse.click(*screen(page, 1, nose))
    page.click("#pose-editor [data-action=toggleJoint]")
    edited = canvas_value(page)
    assert kp(edited, 1, nose) == [0, 0, 0]
    xs = [kp(picked, 0, j)[0] for j in range(18) if kp(picked, 0, j)[2]]
    axis = (min(xs) + max(xs)) / 2
    for j in range(18):
        if kp(picked, 0, MIRROR_INDEX[j])[2]:
            assert kp(edited, 0, j)[0] == pytest.approx(2 * axis - kp(picked, 0, MIRROR_INDEX[j])[0],
                                                        abs=0.05)

    # Bind person 1 → Leo and person 2 → Mia (the reverse of the automatic order).
    choose(page, "#assign-0", "Leo")
    choose(page, "#assign-1", "Mia")
    page.wait_for_function("document.querySelector('#assign-hint').innerText"
                           ".includes('all bound')", timeout=TIMEOUT_MS)
    page.screenshot(path=str(shots / "desktop_assigned.png"), full_page=True)

    page.click("#generate")
    page.wait_for_selector("#results img", timeout=TIMEOUT_MS)
    page.wait_for_selector("#download", state="visible", timeout=TIMEOUT_MS)
    caption = page.inner_text("#result-caption")
    assert "shaking hands" in caption and "Mia, Leo" in caption and "tiny" in caption
    page.click("#recipe-box button")
    page.wait_for_selector("#recipe", state="visible")
    page.screenshot(path=str(shots / "desktop_generated.png"), full_page=True)

    # The recipe binds the people the way we assigned them.
    with page.expect_download() as download:
        page.click("#download")
    from ui.recipe import read_recipe

    recipe = read_recipe(download.value.path())
    assert [p.get("subject") for p in recipe.pose["people"]] == [1, 0]
    # ... and carries the canvas edits: the mirror and the hidden nose reached the engine.
    assert kp(recipe.pose, 1, nose) == [0, 0, 0]
    assert recipe.pose["people"][0]["pose_keypoints_2d"] == pytest.approx(
        edited["people"][0]["pose_keypoints_2d"], abs=0.05)
    assert recipe.subject_names == ["Mia", "Leo"]

    # Another visitor sees neither these subjects nor these results.
    other, _ = open_studio(chromium, studio_url)
    assert other.locator("#results img").count() == 0
    assert other.locator("#subject-image-0 img").count() == 0
    assert not page.page_errors, page.page_errors

    # A phone: everything stacks, nothing scrolls sideways.
    phone, _ = open_studio(chromium, studio_url, width=390)
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    phone.screenshot(path=str(shots / "phone.png"), full_page=True)
    assert overflow <= 0, f"the page is {overflow}px wider than a 390px phone"

    print(f"\npage load (to interactive): median {statistics.median(loads):.2f}s "
          f"over {len(loads)} loads {[round(t, 2) for t in loads]}")
    print(f"retrieve round trip: first {trips[0]:.3f}s, median "
          f"{statistics.median(trips):.3f}s {[round(t, 3) for t in trips]} "
          f"(last prompt repeats the first: cached embedding)")


def test_empty_prompt_is_flagged_on_the_box(chromium, studio_url):
    page, _ = open_studio(chromium, studio_url)
    page.click("#retrieve")
    page.wait_for_function("document.body.innerText.includes('Type a prompt first')",
                           timeout=TIMEOUT_MS)


def test_no_confident_match_says_text_only(chromium, studio_url):
    page, _ = open_studio(chromium, studio_url)
    retrieve(page, "a bowl of ramen on a wooden table")
    assert "text-only" in page.inner_text(STATUS)
    assert not page.locator("#retrieved").is_visible()
