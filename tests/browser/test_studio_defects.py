"""The defects of issue 16, each reproduced in real Chromium against the launched studio.

1. a damaged upload is refused at upload, with a sentence, and nothing else changes;
3. bindings follow the subject when a card above is removed; stripe, swatch and halo agree;
   a new card never reuses a live colour;
4. Generate is disabled without an engine; a refused Generate keeps the session gallery;
5. risky set-ups are flagged; the assign dropdowns show each subject's colour.

Screenshots go to tests/browser/screenshots/ (or $STUDIO_SCREENSHOTS) as ``defect_*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.browser import EDITOR, add_subject, open_editor

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
