"""Variations (issue 16, feature 9): one Generate makes N images with consecutive seeds, one at
a time on the GPU, shown as a grid in the results, each PNG with its own recipe.

Real Chromium against the studio with the tiny engine; the engine is wrapped only to record the
seeds it was asked for and how many generations ever ran at once.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers.browser import open_editor

TIMEOUT_MS = 90_000


class RecordingEngine:
    """The tiny engine service, recording each request's seed and the most generations that
    ever ran at the same time."""

    def __init__(self, engine) -> None:
        self.engine, self.seeds, self.active, self.most = engine, [], 0, 0
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds added to each generation (a batch that cannot end before Stop)

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, request, **kwargs):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.seeds.append(request.seed)
        try:
            time.sleep(self.delay)
            return self.engine.generate(request, **kwargs)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture(scope="module")
def recorded(tiny_engine, small_retriever):
    from tests.helpers.launch import running_studio

    engine = RecordingEngine(tiny_engine)
    with running_studio(engine, small_retriever) as (demo, url):
        yield engine, demo, url


def set_up(page, prompt: str, seed: int, variations: int) -> None:
    page.fill("#prompt textarea", prompt)
    page.fill("#seed input", str(seed))
    page.locator("#seed input").blur()
    if page.is_checked("#randomise input"):
        page.click("#randomise input")
    page.fill("#variations input[type=number]", str(variations))
    page.locator("#variations input[type=number]").blur()
    page.wait_for_timeout(300)


def result_captions(page) -> list[str]:
    return page.locator("#results .caption-label").all_inner_texts()


def test_variations_make_n_images_with_consecutive_seeds(chromium, recorded, shots):
    engine, demo, url = recorded
    # Every GPU event, the page's Generate included, shares the one "gpu" slot.
    gpu = [fn for fn in demo.fns.values() if fn.concurrency_id == "gpu"]
    assert any(getattr(fn.fn, "__name__", "") == "generate" for fn in gpu)
    assert {fn.concurrency_limit for fn in gpu} == {1}

    first = open_editor(chromium, url, width=1440, height=900)
    second = open_editor(chromium, url, width=1440, height=900)
    try:
        assert first.input_value("#variations input[type=number]") == "1"
        set_up(first, "a person waving hello in a park", 41, 3)
        set_up(second, "a person reading on a bench", 500, 2)
        engine.seeds.clear()
        first.click("#generate")
        second.click("#generate")  # two sessions' batches, queued behind the one GPU slot
        first.wait_for_function("document.querySelectorAll('#results .thumbnail-item').length"
                                " === 3", timeout=TIMEOUT_MS)
        second.wait_for_function("document.querySelectorAll('#results .thumbnail-item').length"
                                 " === 2", timeout=TIMEOUT_MS)
        assert sorted(engine.seeds) == [41, 42, 43, 500, 501]
        assert engine.most == 1  # never two generations at once
        # The grid, newest first, each image captioned with its own seed.
        first.wait_for_timeout(300)
        assert [c.split(" ·")[0] for c in result_captions(first)] == ["seed 43", "seed 42",
                                                                       "seed 41"]
        assert first.input_value("#seed input") == "41"  # the batch's first seed, to repeat it
        first.locator("#results").screenshot(path=str(shots / "variations_grid.png"))

        # Each result carries its own recipe: the PNG it downloads says its seed.
        from ui.recipe import read_recipe

        seeds = []
        for k in range(3):
            first.locator("#results .thumbnail-item").nth(k).click()
            first.wait_for_function(f"document.querySelector('#result-caption').innerText"
                                    f".includes('seed {43 - k}')", timeout=TIMEOUT_MS)
            with first.expect_download() as download:
                first.click("#download")
            recipe = read_recipe(download.value.path())
            assert recipe.prompt == "a person waving hello in a park"
            seeds.append(recipe.seed)
        assert seeds == [43, 42, 41]
        assert not first.errors and not second.errors, (first.errors, second.errors)
    finally:
        first.context.close()
        second.context.close()



def test_stop_keeps_the_variations_already_made(chromium, recorded):
    """Stop during a batch ends it after the current image; the images made stay, and the
    toast says how many."""
    engine, _, url = recorded
    page = open_editor(chromium, url, width=1440, height=900)
    try:
        set_up(page, "a person waving hello in a park", 7, 8)
        engine.seeds.clear()
        engine.delay = 1.0  # 8 images take > 8 s: Stop always lands mid-batch, however fast the machine
        page.click("#generate")
        page.wait_for_selector("#results .thumbnail-item", timeout=TIMEOUT_MS)
        page.click("#stop")
        page.wait_for_function("document.body.innerText.includes('Stopped after')",
                               timeout=TIMEOUT_MS)
        page.wait_for_timeout(500)
        made = page.locator("#results .thumbnail-item").count()
        assert 1 <= made < 8, made
        assert f"Stopped after {made} of 8 images" in page.inner_text("body")
        assert engine.seeds == list(range(7, 7 + len(engine.seeds))) and len(engine.seeds) < 8
    finally:
        engine.delay = 0.0
        page.context.close()
