"""Driving the skeleton canvas editor in Chromium (playwright pages), for ``tests/browser``.

`EDITOR` is the JavaScript expression of the editor object on a page (``getValue()``,
``toScreen(x, y)``, ``actions``, ...); `kp` reads a keypoint from an OpenPose value, `screen`
says where a keypoint is drawn, `drag` drags the mouse, `open_editor` opens a page on a URL
whose ``#pose-editor`` is ready.
"""

from __future__ import annotations

TIMEOUT_MS = 20_000
EDITOR = "document.querySelector('#pose-editor .pe-root').parentElement.poseEditor"


def open_editor(chromium, url, width=1200, height=900, touch=False):
    """A fresh browser context on `url`, once its pose editor is ready; ``page.errors`` collects page errors."""
    context = chromium.new_context(viewport={"width": width, "height": height}, has_touch=touch,
                                   is_mobile=touch, accept_downloads=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    page.goto(url)
    page.wait_for_selector("#pose-editor .pe-root[data-ready='1']", timeout=TIMEOUT_MS)
    return page


def kp(value, person, joint):
    """``[x, y, confidence]`` of `joint` of `person` in an OpenPose value."""
    flat = value["people"][person]["pose_keypoints_2d"]
    return flat[3 * joint: 3 * joint + 3]


def screen(page, person, joint):
    """Page coordinates of a keypoint (as currently drawn)."""
    return page.evaluate(f"(() => {{ const v = {EDITOR}.getValue().people[{person}]"
                         f".pose_keypoints_2d; return {EDITOR}.toScreen(v[{3 * joint}], "
                         f"v[{3 * joint + 1}]); }})()")


def drag(page, start, end, steps=12, modifier=None):
    """Press at `start`, move to `end` in `steps` steps, release (holding `modifier` if given)."""
    if modifier:
        page.keyboard.down(modifier)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()
    if modifier:
        page.keyboard.up(modifier)


def add_subject(page, k: int, image, name: str, timeout_ms: int = 30_000) -> None:
    """Fill subject card `k` of a studio page (opening it with "+ Subject" when hidden)."""
    card = page.locator(f"#subject-card-{k}").first  # a gr.Group repeats its id inside
    if not card.is_visible():
        page.click("#add-subject")
        card.wait_for(state="visible")
    page.set_input_files(f"#subject-image-{k} input[type=file]", str(image))
    page.wait_for_selector(f"#subject-image-{k} img", timeout=timeout_ms)
    page.fill(f"#subject-name-{k} textarea", name)
    page.locator(f"#subject-name-{k} textarea").blur()
