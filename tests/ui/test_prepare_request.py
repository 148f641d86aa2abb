"""``prepare_request``: the one way studio values (the page's Generate, the /generate endpoint)
become the engine's ``GenerationRequest``."""

from __future__ import annotations

import json

import gradio as gr
import pytest
from PIL import Image

from engine.request import GenerationRequest
from pose_db.prompt import MAX_PROMPT_CHARS
from pose_db.scene import MAX_SUBJECTS
from pose_db.scene.model import Person, PoseScene
from pose_db.scene.openpose_io import write_openpose
from ui.config import Limits
from ui.generation import MAX_SEED, prepare_request

LIMITS = Limits.load()


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    path = tmp_path_factory.mktemp("subjects") / "subject.png"
    Image.new("RGBA", (24, 20), (0, 128, 255, 255)).save(path)
    return str(path)


def _pose(*subjects) -> dict:
    people = [Person.from_points({0: (40 + 50 * i, 40), 1: (40 + 50 * i, 80)}, subject=s)
              for i, s in enumerate(subjects)]
    return write_openpose(PoseScene(256, 256, people))


def _values(**changes) -> dict:
    values = dict(prompt="  Mia and Leo shaking hands  ", subject_images=[], subject_names=[],
                  pose=None, width=1000, height=530, steps=20, guidance=3.5, seed=7,
                  binding_strength=0.8, limits=LIMITS)
    values.update(changes)
    return values


def test_named_values_give_the_engine_request(picture):
    request = prepare_request(**_values(subject_images=[picture, picture],
                                        subject_names=["Mia", "Leo"], pose=_pose(1, 0)))
    assert isinstance(request, GenerationRequest)
    assert request.prompt == "Mia and Leo shaking hands"  # stripped
    assert request.subject_names == ["Mia", "Leo"]
    assert [im.mode for im in request.subjects] == ["RGB", "RGB"]
    assert [p["subject"] for p in request.pose["people"]] == [1, 0]
    assert (request.width, request.height) == (992, 528)  # snapped to 16 pixels
    assert (request.num_inference_steps, request.guidance_scale, request.seed,
            request.binding_strength) == (20, 3.5, 7, 0.8)


def test_only_keyword_arguments():
    with pytest.raises(TypeError):
        prepare_request("a prompt", [], [], None, 64, 64, 1, 3.5, 1, 1.0)  # type: ignore[misc]


def test_empty_card_is_left_out(picture):
    # The page's four cards: card 0 named but without an image, card 1 with one, 2-3 hidden.
    with pytest.warns(UserWarning, match="Ann has no image") as said:
        request = prepare_request(**_values(subject_images=[None, picture, None, None],
                                            subject_names=["Ann", "Leo", "", ""],
                                            pose=_pose(None, 1, None)))
    assert request.subject_names == ["Leo"]
    assert [p.get("subject") for p in request.pose["people"]] == [None, 0, None]
    assert not [w for w in said if "bound to" in str(w.message)]  # nobody was bound to Ann


@pytest.mark.parametrize("bound, words", [((0, 1), "Person 2 is bound to a subject card without an image"),
                                          ((3, 0, 2), "People 1 and 3 are bound to a subject card")])
def test_people_bound_to_an_empty_or_hidden_card_are_unbound_visibly(picture, bound, words):
    # Unbinding them is what lets "retrieve, then Generate without uploading" work; it is said.
    with pytest.warns(UserWarning, match=words):
        request = prepare_request(**_values(subject_images=[picture, None, None, None],
                                            subject_names=["Mia", "", "", ""], pose=_pose(*bound)))
    assert [p.get("subject") for p in request.pose["people"]] == [0 if b == 0 else None for b in bound]
    assert request.subject_names == ["Mia"]


def test_api_forms_names_text_pose_json_and_drawn_seeds(picture):
    request = prepare_request(**_values(subject_images=[picture, picture],
                                        subject_names="Mia, Leo",
                                        pose=json.dumps(_pose(0)), seed=-1))
    assert request.subject_names == ["Mia", "Leo"]
    assert request.pose["people"][0]["subject"] == 0
    assert 0 <= request.seed <= MAX_SEED
    seeds = {prepare_request(**_values(seed=42, randomise=True)).seed for _ in range(5)}
    assert len(seeds) > 1  # Randomise ignores the field
    default_names = prepare_request(**_values(subject_images=[picture])).subject_names
    assert default_names == ["Subject 1"]


def test_no_subjects_and_empty_canvas_mean_text_only():
    request = prepare_request(**_values(pose=write_openpose(PoseScene(256, 256, []))))
    assert request.subjects == [] and request.subject_names == [] and request.pose is None
    assert prepare_request(**_values(pose="")).pose is None


@pytest.mark.parametrize("changes, words", [
    (dict(prompt="   "), "Type a prompt first"),
    (dict(prompt="x" * (MAX_PROMPT_CHARS + 1)), f"shorten it to {MAX_PROMPT_CHARS} or fewer"),
    (dict(width=8), f"Width must be between {LIMITS.min_side} and {LIMITS.max_side} pixels"),
    (dict(height=None), "Height must be between"),
    (dict(steps=0), f"Steps must be between 1 and {LIMITS.max_steps}"),
    (dict(guidance=99), "Guidance must be between"),
    (dict(binding_strength=-1), "Binding strength must be between"),
    (dict(subject_names=["Mia"], n_images=2), "one name per subject image: 2 images but 1"),
    (dict(n_images=MAX_SUBJECTS + 1), f"at most {MAX_SUBJECTS} subject images"),
    (dict(subject_names=["Mia", "mia"], n_images=2), "Give each a different name"),
    (dict(pose="{not json"), "not valid JSON"),
    (dict(pose=[1, 2]), "must be an OpenPose JSON object"),
    (dict(pose={"people": "nope"}), "canvas is invalid"),
    (dict(pose=_pose(2), n_images=1), "Person 1 is bound to subject 3, which has no image"),
    # Numbers as raw HTTP can send them (issue 15, item 8).
    (dict(width="abc"), "Width must be a number, not the text 'abc'"),
    (dict(steps=float("nan")), "Steps must be a finite number"),
    (dict(height=float("inf")), "Height must be a finite number"),
    (dict(steps=2.5), "Steps must be a whole number"),
    (dict(guidance=[3]), "Guidance must be a number, not a list"),
    (dict(binding_strength=True), "Binding strength must be a number, not true/false"),
    (dict(seed=float("nan")), "Seed must be a finite number"),
    (dict(seed=2**64), f"Seed must be between 0 and {MAX_SEED}"),
    (dict(width=2**70), "Width must be between"),
    (dict(controlnet_conditioning_scale=float("nan")), "Controlnet conditioning scale must be a finite"),
    (dict(control_guidance_end=10**400), "Control guidance end must be a finite number, not one with 401 digits"),
    (dict(guidance=10**400), "Guidance must be a finite number"),
    (dict(prompt=5), "The prompt must be text"),
    (dict(prompt={"a": 1}), "The prompt must be text"),
    (dict(subject_names=5), "Subject names must be text"),
    (dict(subject_names={"a": "Mia"}, n_images=1), "Subject names must be text"),
    (dict(subject_names=[7], n_images=1), "Subject names must be text"),
    (dict(pose="[" * 100_000 + "]" * 100_000), "nested too deeply"),
])
def test_bad_values_give_a_sentence(picture, changes, words):
    n_images = changes.pop("n_images", 0)
    with pytest.raises(gr.Error) as info:
        prepare_request(**_values(subject_images=[picture] * n_images, **changes))
    message = info.value.message
    assert words in message
    assert message[0].isupper() and message.rstrip().endswith((".", "”")), "a whole sentence"


def test_numeric_text_is_read_as_its_number():
    request = prepare_request(**_values(width="1000", steps=" 20 ", guidance="3.5", seed=7.0))
    assert (request.width, request.num_inference_steps, request.guidance_scale, request.seed) == (992, 20, 3.5, 7)


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(gr.Error, match="image of Mia"):
        prepare_request(**_values(subject_images=[str(bad)], subject_names=["Mia"]))


def test_page_generate_reads_its_inputs_by_name(studio):
    """The page's Generate takes a set of components (one dict keyed by component), the API's
    /generate plain named parameters; both end in ``prepare_request``."""
    demo, _ = studio
    page = [fn for fn in demo.fns.values()
            if fn.name == "generate" and fn.api_name != "generate"]
    assert len(page) == 1 and page[0].inputs_as_dict
    api = [fn for fn in demo.fns.values() if fn.api_name == "generate"]
    assert len(api) == 1 and not api[0].inputs_as_dict
