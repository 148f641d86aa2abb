"""EURoPE position ids against the formula of DESIGN section 5, token by token."""

import pytest
import torch

from engine.europe import StreamLayout, position_ids


def _formula(latent_hw, ref_hws, pose_hw, s):
    """The ids written out with plain loops."""
    h, w = latent_hw
    ids = [(0, i, j) for i in range(h) for j in range(w)]
    for k, (rh, rw) in enumerate(ref_hws):
        dh = h + sum(m[0] for m in ref_hws[:k])
        dw = w + sum(m[1] for m in ref_hws[:k])
        ids += [(0, i + dh, j + dw) for i in range(rh) for j in range(rw)]
    if pose_hw is not None:
        c = (s - 1) / 2
        ids += [(0, s * i + c, s * j + c) for i in range(pose_hw[0]) for j in range(pose_hw[1])]
    return torch.tensor(ids, dtype=torch.float32)


CASES = [
    ((4, 4), [], None, 1),                      # text-to-image: FLUX's own ids
    ((3, 5), [(2, 4)], None, 1),                # one non-square reference
    ((3, 5), [(2, 4), (5, 3), (1, 1)], (3, 5), 1),  # several references + full pose
    ((4, 6), [(4, 4)], (2, 3), 2),              # compact half-resolution pose
    ((6, 9), [(2, 7), (3, 2)], (2, 3), 3),      # odd scale
    ((2, 2), [], (2, 2), 1),                    # pose only
]


@pytest.mark.parametrize("latent_hw, ref_hws, pose_hw, s", CASES)
def test_position_ids_equal_formula(latent_hw, ref_hws, pose_hw, s):
    ids = position_ids(latent_hw, ref_hws, pose_hw, pose_scale=s)
    assert ids.dtype == torch.float32
    torch.testing.assert_close(ids, _formula(latent_hw, ref_hws, pose_hw, s), rtol=0, atol=0)


def test_latent_ids_equal_diffusers_flux():
    from diffusers import FluxPipeline

    stock = FluxPipeline._prepare_latent_image_ids(1, 5, 7, "cpu", torch.float32)
    torch.testing.assert_close(position_ids((5, 7)), stock, rtol=0, atol=0)


def test_full_resolution_pose_shares_latent_ids():
    ids = position_ids((4, 6), [(3, 3)], (4, 6))
    torch.testing.assert_close(ids[-24:], ids[:24], rtol=0, atol=0)


def test_compact_pose_token_sits_on_centre_of_its_latent_patch():
    ids = position_ids((4, 4), [], (2, 2), pose_scale=2)
    pose = ids[16:]
    # pose token (1, 0) covers latent rows 2-3, cols 0-1: centre (2.5, 0.5)
    assert pose[2].tolist() == [0.0, 2.5, 0.5]


def test_references_share_no_position_with_the_canvas_or_each_other():
    layout = StreamLayout((4, 4), ((4, 4), (2, 6)), (4, 4))
    ids = layout.position_ids()
    latent = {tuple(r) for r in ids[:16].tolist()}
    refs = [{tuple(r) for r in ids[sl].tolist()} for sl in layout.ref_slices]
    assert not (refs[0] & latent) and not (refs[1] & latent) and not (refs[0] & refs[1])


def test_stream_layout_counts_and_slices():
    layout = StreamLayout((3, 5), ((2, 4), (1, 3)), (3, 5))
    assert layout.num_latent == 15
    assert layout.ref_slices == [slice(15, 23), slice(23, 26)]
    assert layout.num_tokens == 15 + 8 + 3 + 15
    assert layout.position_ids().shape == (layout.num_tokens, 3)


def test_engine_package_and_request_types_import_without_torch():
    """The torch-free UI imports ``engine`` and ``engine.request``; torch must load only on demand."""
    import subprocess
    import sys

    code = ("import sys, engine, engine.request; from engine import EngineError, GenerationRequest; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    import engine

    assert engine.AstraPipeline.__name__ == "AstraPipeline"  # the lazy export resolves
