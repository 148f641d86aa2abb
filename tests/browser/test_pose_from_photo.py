"""Pose from a photo in real Chromium, with the real built-in detector (BlazePose on LiteRT):
upload a photograph, press "Detect skeletons", and the canvas holds the person found."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.browser import EDITOR

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def photo_studio_url(tiny_engine, small_retriever):
    pytest.importorskip("ai_edge_litert")
    from pose_db.library.detector import PoseDetector
    from tests.helpers.launch import running_studio

    with running_studio(tiny_engine, small_retriever, detector=PoseDetector.load()) as (_, url):
        yield url


def test_detect_skeletons_from_a_photo(chromium, photo_studio_url, shots):
    skimage = pytest.importorskip("skimage")
    astronaut = Path(skimage.__file__).parent / "data" / "astronaut.png"
    page = chromium.new_context(viewport={"width": 1440, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(photo_studio_url)
    page.wait_for_selector("#pose-editor", timeout=TIMEOUT_MS)
    page.click("#photo-box button >> nth=0")  # open the accordion
    assert "BlazePose" in page.inner_text("#photo-note")
    page.set_input_files("#photo input[type=file]", str(astronaut))
    page.wait_for_selector("#photo img", timeout=TIMEOUT_MS)
    page.click("#detect")
    page.wait_for_function(f"(() => {{ const v = {EDITOR}.getValue(); return v && v.canvas_width === 512 "
                           f"&& v.people.length === 1; }})()", timeout=TIMEOUT_MS)
    value = page.evaluate(f"{EDITOR}.getValue()")
    x, y, c = value["people"][0]["pose_keypoints_2d"][:3]  # the nose, hand-annotated at (224, 128)
    assert c == 1 and abs(x - 224) < 25 and abs(y - 128) < 25
    page.screenshot(path=str(shots / "pose_from_photo.png"))
    assert not errors, errors
