"""The defects of issue 16, each reproduced in real Chromium against the launched studio.

1. a damaged upload is refused at upload, with a sentence, and nothing else changes;
2. the canvas follows the output size behind a visible lock;
3. bindings follow the subject when a card above is removed; stripe, swatch and halo agree;
   a new card never reuses a live colour;
4. Generate is disabled without an engine; a refused Generate keeps the session gallery;
5. risky set-ups are flagged; the assign dropdowns show each subject's colour;
6. the retrieval gallery is readable; a retrieve over an edit says Undo brings it back; one ×
   per card; "+ Person" finds room; an empty-prompt retrieve updates the status; a restore
   says Randomise is off;
7. layout at 1280×800 and on a 390×844 touch phone, measured by element boxes.

Screenshots go to tests/browser/screenshots/ (or $STUDIO_SCREENSHOTS) as ``defect_*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.browser import EDITOR, add_subject, drag, open_editor, screen

EXAMPLES = Path("assets/examples")
TIMEOUT_MS = 30_000
STATUS = "#retrieval-status [data-testid=markdown]"


def retrieve(page, prompt: str) -> None:
    page.fill("#prompt textarea", prompt)
    before = page.inner_text(STATUS)
    page.click("#retrieve")
    page.wait_for_function(f"before => document.querySelector('{STATUS}').innerText !== before",
                           arg=before, timeout=TIMEOUT_MS)


def choose(page, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.locator("[data-testid=dropdown-option]", has_text=option).first.click()


def bindings(page) -> list:
    return page.evaluate(f"{EDITOR}.getValue().people.map(p => p.subject ?? null)")


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); "
                           "return e && e.innerText.includes(t); }", arg=[selector, text],
                           timeout=TIMEOUT_MS)


def stripe(page, k: int) -> str:
    return page.evaluate(f"getComputedStyle(document.querySelector('#subject-card-{k}'))"
                         ".borderLeftColor")


def swatch(page, k: int) -> str:
    """The colour picker's swatch of card k, as computed ``rgb(...)``."""
    return page.evaluate(f"getComputedStyle(document.querySelector('#subject-card-{k} "
                         f".subject-colour button.dialog-button')).backgroundColor")


def hex_rgb(colour: str) -> str:
    colour = colour.lstrip("#")
    r, g, b = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def toasts(page) -> str:
    return page.evaluate("Array.from(document.querySelectorAll('.toast-body'))"
                         ".map(t => t.innerText).join(' | ')")


@pytest.fixture()
def page(chromium, studio_url):
    page = open_editor(chromium, studio_url, width=1440, height=900)
    page.wait_for_selector("#retrieve", timeout=TIMEOUT_MS)
    yield page
    page.context.close()


def test_damaged_upload_is_refused_at_upload(page, shots, tmp_path):
    """Defect 1: random bytes named .png are refused with a sentence; the session goes on."""
    add_subject(page, 0, EXAMPLES / "mia.png", "Mia")
    add_subject(page, 1, EXAMPLES / "leo.png", "Leo")
    bad = tmp_path / "holiday.png"
    bad.write_bytes(bytes(range(256)) * 40)
    page.set_input_files("#subject-image-1 input[type=file]", str(bad))
    page.wait_for_function("document.body.innerText.includes('not an image')",
                           timeout=TIMEOUT_MS)
    # The card is empty again (no broken-image icon), the others keep their pictures and names.
    page.wait_for_function("!document.querySelector('#subject-image-1 img')", timeout=TIMEOUT_MS)
    assert page.locator("#subject-image-0 img").count() == 1
    assert page.input_value("#subject-name-1 textarea") == "Leo"
    message = toasts(page)
    assert "Upload a PNG, JPEG or WebP" in message and "/tmp/" not in message
    page.screenshot(path=str(shots / "defect1_bad_upload.png"), full_page=False)

    # A truncated PNG is refused at upload too, not only at Generate.
    data = (EXAMPLES / "leo.png").read_bytes()
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data[: len(data) // 2])
    page.set_input_files("#subject-image-1 input[type=file]", str(truncated))
    page.wait_for_function("document.body.innerText.includes('damaged or truncated')"
                           " || document.body.innerText.includes('could not be decoded')",
                           timeout=TIMEOUT_MS)
    page.wait_for_function("!document.querySelector('#subject-image-1 img')", timeout=TIMEOUT_MS)

    # Nothing else broke: the card's × works, Generate works, no Error badge anywhere.
    page.click("#subject-remove-1")
    page.locator("#subject-card-1").first.wait_for(state="hidden")
    page.fill("#prompt textarea", "Mia waving hello in a park")
    page.click("#generate")
    page.wait_for_selector("#results img", timeout=TIMEOUT_MS)
    assert "Could not preprocess" not in page.inner_text("body")
    assert page.locator(".error").filter(has_text="Error").count() == 0
    assert not page.errors, page.errors


def test_bindings_and_colours_follow_the_subject(page, shots):
    """Defect 3: removing the card above keeps P2 bound to Mia; colours agree; no reuse."""
    add_subject(page, 0, EXAMPLES / "leo.png", "Leo")
    add_subject(page, 1, EXAMPLES / "mia.png", "Mia")
    retrieve(page, "Leo and Mia shaking hands at a train station")
    page.wait_for_selector("#assign-1", state="visible")
    choose(page, "#assign-0", "Leo")
    choose(page, "#assign-1", "Mia")
    page.wait_for_function(f"{EDITOR}.getValue().people[1].subject === 1", timeout=TIMEOUT_MS)
    mia_colour = swatch(page, 1)

    page.click("#subject-remove-0")  # Leo's card, above Mia's
    page.wait_for_function("document.querySelector('#subject-name-0 textarea').value === 'Mia'",
                           timeout=TIMEOUT_MS)
    page.wait_for_function(f"{EDITOR}.getValue().people[1].subject === 0", timeout=TIMEOUT_MS)
    assert bindings(page) == [None, 0]
    page.wait_for_function("document.querySelector('#assign-1 input').value.endsWith('Mia')",
                           timeout=TIMEOUT_MS)
    assert page.input_value("#assign-0 input") == "Unassigned"
    # Mia keeps her colour: on her swatch, her card's stripe and her people's halo.
    page.wait_for_function(f"() => getComputedStyle(document.querySelector('#subject-card-0'))"
                           f".borderLeftColor === {mia_colour!r}", timeout=TIMEOUT_MS)
    assert swatch(page, 0) == mia_colour
    halo = page.evaluate(f"{EDITOR}.subjects().colors[0]")
    assert hex_rgb(halo) == mia_colour

    # A new card takes a colour no live card wears.
    page.click("#add-subject")
    page.locator("#subject-card-1").first.wait_for(state="visible")
    page.wait_for_timeout(300)
    assert swatch(page, 1) != mia_colour
    assert stripe(page, 1) == swatch(page, 1)
    page.screenshot(path=str(shots / "defect3_after_remove.png"), full_page=True)
    assert not page.errors, page.errors


def test_refused_generate_keeps_the_gallery(page, shots):
    """Defect 4 (second half): a Generate error is a sentence; earlier results stay visible."""
    add_subject(page, 0, EXAMPLES / "mia.png", "Mia")
    page.fill("#prompt textarea", "Mia waving hello in a park")
    page.click("#generate")
    page.wait_for_selector("#results img", timeout=TIMEOUT_MS)
    # Now a request the engine refuses: two subjects with the same name.
    add_subject(page, 1, EXAMPLES / "leo.png", "Mia")
    page.click("#generate")
    page.wait_for_function("document.body.innerText.includes('Two subjects are named')",
                           timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert page.locator("#results img").count() >= 1
    assert page.locator("#results .error").count() == 0
    assert "Error" not in page.inner_text("#results")
    page.screenshot(path=str(shots / "defect4_refused_generate.png"), full_page=False)


def test_risky_setups_are_flagged(page, shots):
    """Defect 5: one subject on two people while another has none; names the prompt never
    mentions; each subject's colour in the dropdowns."""
    add_subject(page, 0, EXAMPLES / "mia.png", "Mia")
    add_subject(page, 1, EXAMPLES / "leo.png", "Leo")
    retrieve(page, "two people shaking hands at a train station")
    page.wait_for_selector("#assign-1", state="visible")
    wait_text(page, "#assign-hint", "never mentions Mia, Leo")
    choose(page, "#assign-0", "Mia")
    choose(page, "#assign-1", "Mia")
    wait_text(page, "#assign-hint", "bound to more than one person while Leo has none")
    # Colours: the default red and blue subjects show red and blue discs.
    page.click("#assign-0 input")
    options = page.locator("[data-testid=dropdown-option]").all_inner_texts()
    assert any("🔴" in o and "Mia" in o for o in options), options
    assert any("🔵" in o and "Leo" in o for o in options), options
    # ... and as a bar in the subject's own colour (for screens without colour emoji).
    bar = page.evaluate("getComputedStyle(Array.from(document.querySelectorAll("
                        "'[data-testid=dropdown-option]')).find(o => o.innerText.includes('Leo')))"
                        ".boxShadow")
    assert "77, 171, 247" in bar, bar
    page.screenshot(path=str(shots / "defect5_warnings.png"), full_page=False)
    page.keyboard.press("Escape")
    # Mentioning both names in the prompt clears that warning.
    page.fill("#prompt textarea", "Mia and Leo shaking hands at a train station")
    page.locator("#prompt textarea").blur()
    page.wait_for_function("!document.querySelector('#assign-hint').innerText"
                           ".includes('never mentions')", timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def no_engine_url(small_retriever):
    from engine.service import EngineService
    from tests.helpers.launch import running_studio

    with running_studio(EngineService.unavailable("no weights here"), small_retriever) as (_, url):
        yield url


def test_generate_is_off_without_an_engine(chromium, no_engine_url, shots):
    """Defect 4 (first half): the banner says Generate is off, and the button agrees."""
    page = open_editor(chromium, no_engine_url, width=1440, height=900)
    page.wait_for_selector("#generate", timeout=TIMEOUT_MS)
    assert page.is_disabled("#generate")
    assert "no engine" in page.inner_text("#generate").lower()
    assert "Generate is off" in page.inner_text("#engine-status")
    page.screenshot(path=str(shots / "defect4_no_engine.png"), full_page=False)
    page.context.close()


def canvas_shape(page) -> list:
    return page.evaluate(f"(() => {{ const v = {EDITOR}.getValue(); "
                         "return v ? [v.canvas_width, v.canvas_height] : null; })()")


def test_canvas_follows_the_output_size(page, shots):
    """Defect 2: one shape for canvas and output, behind a visible lock; the recipe says how."""
    page.wait_for_selector("#lock-aspect input", state="visible", timeout=TIMEOUT_MS)
    assert page.is_checked("#lock-aspect input")
    retrieve(page, "two people shaking hands at a train station")
    page.wait_for_function(f"{EDITOR}.getValue() && {EDITOR}.getValue().canvas_width === 256 "
                           f"&& {EDITOR}.getValue().canvas_height === 256", timeout=TIMEOUT_MS)
    # A new preset reshapes the canvas, the skeletons scaled evenly and centred.
    choose(page, "#size-preset", "Wide 16:9")
    page.wait_for_function(f"{EDITOR}.getValue().canvas_width === 1344", timeout=TIMEOUT_MS)
    assert canvas_shape(page) == [1344, 768]
    page.screenshot(path=str(shots / "defect2_locked_wide.png"), full_page=True)

    # Unlocked, the canvas keeps its shape; Generate fits the pose and says so, and the recipe
    # carries the output's shape.
    page.click("#lock-aspect input")
    choose(page, "#size-preset", "Thumbnail 256")
    page.wait_for_timeout(500)
    assert canvas_shape(page) == [1344, 768]
    page.click("#generate")
    page.wait_for_function("document.body.innerText.includes('was fitted inside the 256×256')",
                           timeout=TIMEOUT_MS)
    page.wait_for_selector("#download", state="visible", timeout=TIMEOUT_MS)
    with page.expect_download() as download:
        page.click("#download")
    from ui.recipe import read_recipe

    recipe = read_recipe(download.value.path())
    assert (recipe.pose["canvas_width"], recipe.pose["canvas_height"]) == (recipe.width,
                                                                            recipe.height)


def test_restoring_a_recipe_says_randomise_is_off(page, tmp_path):
    """Defect 6 (one item): a restore that turns "Randomise" off says so."""
    page.fill("#prompt textarea", "a person waving hello in a park")
    page.click("#generate")
    page.wait_for_selector("#download", state="visible", timeout=TIMEOUT_MS)
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "recipe.png"
    download.value.save_as(saved)
    page.click("#restore-box button")
    page.set_input_files("#restore input[type=file]", str(saved))
    page.wait_for_function("document.body.innerText.includes('Randomise is now off')",
                           timeout=TIMEOUT_MS)
    assert not page.is_checked("#randomise input")


# ---- Defect 6: the retrieval gallery, a retrieve over an edit, one ×, "+ Person", status ----

GALLERY_GEOMETRY = """(() => {
  const box = r => { const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const g = document.querySelector('#retrieved'), wrap = g.querySelector('.grid-wrap');
  const label = g.querySelector('[data-testid=block-label]');
  return {
    wrap: box(wrap),
    label: label && label.offsetParent ? box(label) : null,
    thumbs: Array.from(g.querySelectorAll('.thumbnail-item')).map(box),
    captions: Array.from(g.querySelectorAll('.caption-label')).map(c => ({
      text: c.innerText, cut: c.scrollWidth > c.clientWidth + 1 || c.scrollHeight > c.clientHeight + 1,
      box: box(c) })),
  };
})()"""


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(inner, outer, slack=1.0) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack
            and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack)


def check_gallery(page, rows: int = 1) -> dict:
    """The gallery's captions are whole, the label covers nothing, no column is clipped and the
    first two rows are fully in view (at least ``rows`` rows expected); returns the geometry."""
    page.wait_for_selector("#retrieved .thumbnail-item img", timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)
    g = page.evaluate(GALLERY_GEOMETRY)
    assert len(g["thumbs"]) >= 3, g
    for caption, thumb in zip(g["captions"], g["thumbs"]):
        assert not caption["cut"], caption
        assert caption["text"].endswith("”") and " — “" in caption["text"], caption
        assert inside(caption["box"], thumb), (caption, thumb)
    assert g["label"] is None or not overlaps(g["label"], g["thumbs"][0]), g
    wrap = g["wrap"]
    for thumb in g["thumbs"]:  # no clipped column
        assert thumb[0] >= wrap[0] - 1 and thumb[2] <= wrap[2] + 1, (thumb, wrap)
    tops = sorted({round(t[1]) for t in g["thumbs"]})
    assert len(tops) >= rows, (tops, g["thumbs"])
    for thumb in g["thumbs"]:  # the first two rows whole, in view, without scrolling the box
        if round(thumb[1]) in tops[:2]:
            assert inside(thumb, wrap), (thumb, wrap)
    return g


def test_retrieval_gallery_is_readable(page, shots):
    """Defect 6: whole captions, no label over the first row, two full rows in view."""
    retrieve(page, "a person waving hello")
    g = check_gallery(page)
    # The captions carry the full library prompts, not "0.89 · wave — “a man wav…".
    assert any(len(c["text"]) > 40 for c in g["captions"]), g["captions"]
    page.locator("#retrieved").screenshot(path=str(shots / "defect6_gallery.png"))


def keypoints(page) -> list:
    return page.evaluate(f"{EDITOR}.getValue().people.map(p => p.pose_keypoints_2d)")


def test_a_retrieve_over_an_edit_says_undo_brings_it_back(page, shots):
    """Defect 6: a new Retrieve that replaces an edited canvas says so, and Undo restores it; a
    retrieve over an unedited one says nothing."""
    retrieve(page, "a person waving hello")
    page.wait_for_function(f"{EDITOR}.getValue() && {EDITOR}.getValue().people.length === 1",
                           timeout=TIMEOUT_MS)
    retrieve(page, "two people shaking hands at a train station")
    page.wait_for_function(f"{EDITOR}.getValue().people.length === 2", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    assert "Replaced your edited pose" not in toasts(page)

    # Drag P1's right wrist 30 px, then retrieve another prompt.
    retrieved = keypoints(page)
    page.locator("#pose-editor canvas").first.scroll_into_view_if_needed()
    x, y = screen(page, 0, 4)
    drag(page, (x, y), (x + 30, y - 20))
    page.wait_for_timeout(300)
    edited = keypoints(page)
    assert edited != retrieved
    retrieve(page, "a person waving hello")
    page.wait_for_function(f"{EDITOR}.getValue().people.length === 1", timeout=TIMEOUT_MS)
    wait_text(page, "body", "Replaced your edited pose")
    assert "Undo" in toasts(page)
    page.wait_for_timeout(600)  # the toast fades in
    page.screenshot(path=str(shots / "defect6_replaced_notice.png"), full_page=False)
    # One Undo brings the edit back (the refit to the output size is not a second step).
    page.evaluate(f"{EDITOR}.undo()")
    page.wait_for_timeout(500)
    assert keypoints(page) == edited
    # Picking a thumbnail over the (restored) edit says so on the status line.
    page.locator("#retrieved .thumbnail-item").nth(1).click()
    wait_text(page, STATUS, "Replaced your edited pose")
    page.evaluate(f"{EDITOR}.undo()")
    page.wait_for_timeout(300)
    assert keypoints(page) == edited
    assert not page.errors, page.errors


def test_each_card_has_one_remove_button(page):
    """Defect 6: one × per card (the card's), not the picture's own × beside it."""
    add_subject(page, 0, EXAMPLES / "mia.png", "Mia")
    visible = page.evaluate("Array.from(document.querySelectorAll('#subject-card-0 button'))"
                            ".filter(b => b.offsetParent && (b.innerText.trim() === '×' || "
                            "/remove|clear/i.test(b.getAttribute('aria-label') || '')))"
                            ".map(b => b.id || b.getAttribute('aria-label'))")
    assert visible == ["subject-remove-0"], visible
    page.click("#subject-remove-0")
    page.locator("#subject-card-0").first.wait_for(state="hidden")


def person_boxes(page) -> list:
    return page.evaluate(f"""{EDITOR}.getValue().people.map(p => {{
      const k = p.pose_keypoints_2d, xs = [], ys = [];
      for (let i = 0; i < k.length; i += 3) if (k[i + 2]) {{ xs.push(k[i]); ys.push(k[i + 1]); }}
      return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]; }})""")


@pytest.mark.parametrize("prompt", ["a person waving hello",
                                    "two people shaking hands at a train station",
                                    "three friends posing side by side for a group photo"])
def test_add_person_does_not_overlap(page, shots, prompt):
    """Defect 6: "+ Person" puts the new skeleton where nobody stands (smaller, on a crowded
    canvas), and a second one too."""
    retrieve(page, prompt)
    page.wait_for_function(f"{EDITOR}.getValue() && {EDITOR}.getValue().people.length > 0",
                           timeout=TIMEOUT_MS)
    before = person_boxes(page)
    for added in (1, 2):
        page.click("#pose-editor button[aria-label='Add person']")
        page.wait_for_function(f"{EDITOR}.getValue().people.length === {len(before) + added}",
                               timeout=TIMEOUT_MS)
        *old, new = person_boxes(page)
        assert old[:len(before)] == before
        assert not any(overlaps(new, box) for box in old), (added, new, old)
    page.locator("#pose-editor canvas").first.screenshot(
        path=str(shots / f"defect6_add_person_{len(before)}.png"))


def test_empty_prompt_retrieve_updates_the_status(page):
    """Defect 6: Retrieve with an empty prompt no longer leaves the old prompt's status."""
    retrieve(page, "a person waving hello")
    assert "waving" in page.inner_text(STATUS)
    page.fill("#prompt textarea", "")
    page.click("#retrieve")
    wait_text(page, STATUS, "Type a prompt first")
    assert "waving" not in page.inner_text(STATUS)


# ---- Defect 7: layout at 1280×800 and on a phone -------------------------------------------

def box_of(page, selector: str) -> list:
    return page.evaluate(f"(() => {{ const b = document.querySelector({selector!r})"
                         ".getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; })()")


SLIDER_MAXIMUMS = {"#width": "2048", "#height": "2048", "#steps": "60", "#guidance": "10",
                   "#binding": "2"}


def test_layout_at_1280x800(chromium, studio_url, shots):
    """Defect 7: at 1280×800 the card's ×, the sliders' maximums and the Examples fit."""
    page = open_editor(chromium, studio_url, width=1280, height=800)
    try:
        add_subject(page, 0, EXAMPLES / "mia.png", "Mia")
        card = box_of(page, "#subject-card-0")
        remove = box_of(page, "#subject-remove-0")
        assert inside(remove, card) and remove[2] <= 1280, (remove, card)
        for slider, maximum in SLIDER_MAXIMUMS.items():
            block = box_of(page, slider)
            shown = box_of(page, f"{slider} [data-testid=max-value]")
            assert page.inner_text(f"{slider} [data-testid=max-value]") == maximum
            assert inside(shown, block), (slider, shown, block)
        page.click("#examples-box button")
        page.wait_for_selector("#examples", state="visible")
        examples = page.evaluate("(() => { const e = document.querySelector('#examples'); "
                                 "return [e.scrollWidth, e.clientWidth]; })()")
        assert examples[0] <= examples[1] + 1, examples
        assert inside(box_of(page, "#examples"), box_of(page, ".pose-panel"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        retrieve(page, "a person waving hello")
        check_gallery(page, rows=2)
        # A mouse must be within 11 px of a joint (a finger gets twice that, below).
        page.locator("#pose-editor canvas").first.scroll_into_view_if_needed()
        x, y = screen(page, 0, 10)
        page.mouse.click(x, y + 16)
        assert "ankle" not in page.inner_text("#pose-editor .pe-status")
        page.screenshot(path=str(shots / "defect7_1280x800.png"), full_page=True)
        assert not page.errors, page.errors
    finally:
        page.context.close()


def test_layout_on_a_phone(chromium, studio_url, shots):
    """Defect 7: on a 390×844 touch phone Generate is on screen without scrolling, the gallery
    has no clipped column, nothing scrolls sideways, and joints are finger-sized targets."""
    page = open_editor(chromium, studio_url, width=390, height=844, touch=True)
    try:
        page.evaluate("window.scrollTo(0, 0)")
        generate = box_of(page, "#generate")
        assert generate[1] >= 0 and generate[3] <= 844, generate
        page.screenshot(path=str(shots / "defect7_phone_top.png"), full_page=False)
        retrieve(page, "a person waving hello")
        g = check_gallery(page, rows=2)
        assert all(t[2] <= 390 for t in g["thumbs"]), g["thumbs"]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.locator("#retrieved").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "defect7_phone_gallery.png"), full_page=False)
        # Generate stays reachable half-way down the page too.
        page.locator("#pose-editor").scroll_into_view_if_needed()
        generate = box_of(page, "#generate")
        assert generate[1] >= 0 and generate[3] <= 844, generate
        # A tap 16 px from the right ankle picks the ankle (the touch radius is 22 px).
        page.locator("#pose-editor canvas").first.scroll_into_view_if_needed()
        x, y = screen(page, 0, 10)
        assert 0 <= y + 16 <= 844 - 80, y  # on screen, above the Generate bar
        page.touchscreen.tap(x, y + 16)
        wait_text(page, "#pose-editor .pe-status", "ankle")
        page.screenshot(path=str(shots / "defect7_phone_editor.png"), full_page=False)
        # At the very bottom the bar covers nothing: the page scrolls past it.
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_timeout(300)
        last = page.evaluate("Math.max(...Array.from(document.querySelectorAll("
                             "'footer, #variations, #randomise')).map(e => "
                             "e.getBoundingClientRect().bottom))")
        assert last <= box_of(page, ".generate-row")[1] + 1, last
        page.screenshot(path=str(shots / "defect7_phone_bottom.png"), full_page=False)
        assert not page.errors, page.errors
    finally:
        page.context.close()
