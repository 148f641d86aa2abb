"""Every bad input a sentence (issue 15, items 8 and 9), through the launched studio.

Raw HTTP (``/gradio_api/call/<api_name>``, as any script can post) and gradio_client both get
the app's own ``gr.Error`` sentence, never a Python message or Gradio's "Could not preprocess
input component", and the studio keeps answering good calls afterwards.
"""

from __future__ import annotations

import json

import gradio as gr
import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, PngImagePlugin

from tests.helpers.gradio_http import BAD_INPUTS, GOOD_GENERATE, call, is_app_sentence
from tests.helpers.gradio_http import with_value as generate_with
from ui.recipe import MAX_SEED, RECIPE_KEY

GOOD = GOOD_GENERATE


def app_sentence(payload: dict) -> str:
    """The error text, checked to be one of the app's sentences."""
    assert is_app_sentence(payload), f"a raw error, not the app's sentence: {payload!r}"
    return payload["error"]


RAW = BAD_INPUTS


@pytest.mark.parametrize("api, data, words", RAW, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(RAW)])
def test_raw_http_bad_inputs_get_the_apps_sentence(studio_url, api, data, words):
    event, payload = call(studio_url, api, data)
    if words is None:  # harmless: the value is read as text
        assert event == "complete"
        return
    assert event == "error"
    assert words in app_sentence(payload)


def test_the_studio_still_answers_after_bad_inputs(studio_url):
    for api, data, _ in RAW[:3]:
        call(studio_url, api, data)
    event, payload = call(studio_url, "generate", GOOD)
    assert event == "complete" and payload[1]["seed"] == 1 and payload[1]["width"] == 64
    assert call(studio_url, "retrieve", ["two people shaking hands", 2])[0] == "complete"


@pytest.fixture(scope="module")
def client(studio_url):
    return Client(studio_url, verbose=False)


@pytest.mark.parametrize("index, value, words", [
    (4, "abc", "Width must be a number"),
    (8, "NaN", "Seed must be a finite number"),  # gradio_client itself cannot send a float NaN
    (6, "Infinity", "Steps must be a finite number"),
    (8, 2**64, f"Seed must be between 0 and {MAX_SEED}"),
    (2, 5, "Subject names must be text"),
])
def test_gradio_client_bad_numbers_and_names_get_the_apps_sentence(client, index, value, words):
    with pytest.raises(AppError) as info:
        client.predict(*generate_with(index, value)[:10], api_name="/generate")
    assert words in str(info.value) and "Could not preprocess" not in str(info.value)


def _png(recipe_text: str, tmp_path, name: str) -> str:
    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, recipe_text, zip=True)
    path = tmp_path / name
    Image.new("RGB", (8, 8)).save(path, format="PNG", pnginfo=info)
    return str(path)


def _recipe_text(**changes) -> str:
    recipe = dict(prompt="a man waves", seed=7, width=64, height=64, num_inference_steps=2,
                  guidance_scale=3.5, binding_strength=1.0, subject_names=[], pose=None, engine="tiny")
    return json.dumps(recipe | changes)


@pytest.mark.parametrize("text, words", [
    (_recipe_text(seed=2**64), "impossible seed"),  # was HTTP 500: orjson cannot send 2**64
    ('{"prompt": "x", "seed": 1, "width": 64, "height": 64, "pose": '
     + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),  # was a RecursionError
])
def test_read_recipe_refuses_edited_recipes_with_a_sentence(client, tmp_path, text, words):
    with pytest.raises(AppError, match=words):
        client.predict(handle_file(_png(text, tmp_path, "edited.png")), api_name="/read_recipe")
    assert client.predict(handle_file(_png(_recipe_text(), tmp_path, "good.png")),
                          api_name="/read_recipe")["seed"] == 7


def _page_restore(demo):
    """The page's Restore handler and the values its inputs hold (the form as it stands)."""
    fn = next(f for f in demo.fns.values() if f.name == "restore")
    restore_file = next(c for c in fn.inputs if getattr(c, "elem_id", None) == "restore")
    return fn.fn, {c: c.value for c in fn.inputs}, restore_file


@pytest.mark.parametrize("changes, words", [
    (dict(width=10**9), "Width must be between"),
    (dict(num_inference_steps=10**6), "Steps must be between"),
    (dict(seed=2**64), "impossible seed"),
])
def test_page_restore_applies_generates_limits(studio, tmp_path, changes, words):
    restore, values, restore_file = _page_restore(studio[0])
    values[restore_file] = _png(_recipe_text(**changes), tmp_path, "edited.png")
    # gr.Error: Gradio leaves every output as it was, so the form does not change.
    with pytest.raises(gr.Error) as info:
        restore(values)
    assert words in info.value.message
    values[restore_file] = _png(_recipe_text(), tmp_path, "good.png")
    restored = restore(values)  # the same form takes a studio recipe
    assert restored[0] == "a man waves" and 7 in restored


def test_request_bodies_are_still_json(studio_url):
    # A body nested too deeply for the JSON parser is Gradio's own 400, before any handler.
    body = '{"data": ["a man", ' + "[" * 100_000 + "]" * 100_000 + "]}"
    answer = httpx.post(f"{studio_url}gradio_api/call/retrieve", content=body, timeout=60,
                        headers={"content-type": "application/json"})
    assert answer.status_code == 400 and "error parsing the body" in answer.text


@pytest.mark.parametrize("width, words", [("abc", "Width must be a number, not the text 'abc'."),
                                          (99_999, "Width must be between"), (None, "Width needs a number.")])
def test_the_pages_own_generate_reads_its_sliders_itself(studio_url, width, words):
    """A client posting to the page's (private) Generate event, not the API, gets the sentence too:
    its sliders read what they are sent instead of failing in Gradio's preprocessing."""
    from tests.helpers.gradio_http import is_sentence, page_event, page_generate

    ok, output = page_event(studio_url, page_generate(studio_url), {"prompt": "a man waves", "width": width,
                                                                     "steps": 1})
    assert not ok
    message = output["error"]
    assert is_sentence(message) and message.startswith(words), output


def test_checked_components_print_their_sentence_unquoted():
    from ui.inputs import InputError, Number, Slider

    slider = Slider(1, 10, label="Steps")
    assert slider.preprocess(3) == 3 and slider.get_block_name() == "slider"
    with pytest.raises(InputError) as refused:
        slider.preprocess("NaN")
    assert str(refused.value) == "Steps must be a finite number, not nan."  # no repr quotes
    seed = Number(label="Seed", precision=0, minimum=0, maximum=100)
    assert seed.preprocess(None) is None and seed.preprocess(7) == 7 and seed.get_block_name() == "number"
    with pytest.raises(InputError, match="whole number"):
        seed.preprocess(2.5)
    with pytest.raises(InputError, match="between 0 and 100, not 101"):
        seed.preprocess(101)
