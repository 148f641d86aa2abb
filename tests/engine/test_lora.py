"""LoRA on the DiT through real peft layers: targets, save/load round trip, fusing, bad files."""

import pytest
import torch
from safetensors.torch import save_file

from engine.errors import EngineError
from engine.lora import (
    DEFAULT_RANK,
    LoraSettings,
    add_lora,
    apply_lora_state,
    count_lora_parameters,
    fuse_lora,
    has_lora,
    load_lora,
    lora_settings,
    lora_state_dict,
    remove_lora,
    save_lora,
)
from tests.helpers.dit import DIM, dit_inputs, randomise_lora, run, tiny_transformer

RANK = 4
LAYERS = dict(num_layers=2, num_single_layers=2)


@pytest.fixture
def inputs():
    return dit_inputs()


@pytest.fixture
def adapted():
    """A tiny DiT with a random (non-identity) rank-4 LoRA."""
    model = tiny_transformer(**LAYERS)
    add_lora(model, rank=RANK)
    randomise_lora(model)
    return model


def _adapted_modules(model):
    return sorted(name for name, module in model.named_modules() if hasattr(module, "lora_A"))


def test_default_rank_is_the_papers_and_rank_is_configurable():
    assert DEFAULT_RANK == 512 and LoraSettings().rank == 512
    model = tiny_transformer()
    assert add_lora(model, rank=8).rank == 8
    assert {m.lora_A["astra"].out_features for _, m in model.named_modules() if hasattr(m, "lora_A")} == {8}
    with pytest.raises(EngineError, match="rank"):
        LoraSettings(rank=0)


def test_every_block_is_adapted_on_its_attention_projections():
    model = tiny_transformer(**LAYERS)
    add_lora(model, rank=RANK)
    double = ["attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj", "attn.to_add_out", "attn.to_k",
              "attn.to_out.0", "attn.to_q", "attn.to_v"]
    single = ["attn.to_k", "attn.to_q", "attn.to_v", "proj_out"]
    expected = sorted([f"transformer_blocks.{i}.{m}" for i in range(2) for m in double]
                      + [f"single_transformer_blocks.{i}.{m}" for i in range(2) for m in single])
    assert _adapted_modules(model) == expected  # the model's final proj_out is not adapted
    # Each adapted d->d projection carries r*(d+d) parameters; a single block's proj_out reads 5d.
    assert count_lora_parameters(model) == RANK * DIM * (2 * (8 * 2) + 2 * (3 * 2 + 6))


def test_a_fresh_lora_is_the_identity(inputs):
    model = tiny_transformer(**LAYERS)
    before = run(model, inputs)
    add_lora(model, rank=RANK)
    assert torch.equal(run(model, inputs), before)


def test_save_load_round_trip_reproduces_outputs(adapted, inputs, tmp_path):
    base = run(tiny_transformer(**LAYERS), inputs)
    expected = run(adapted, inputs)
    assert (expected - base).abs().max() > 1e-2  # the LoRA does change the output
    path = save_lora(adapted, tmp_path / "lora.safetensors")

    fresh = tiny_transformer(**LAYERS)
    settings = load_lora(fresh, path)
    assert settings.rank == RANK and settings == lora_settings(adapted)
    assert torch.equal(run(fresh, inputs), expected)
    state, reloaded = lora_state_dict(adapted), lora_state_dict(fresh)
    assert state.keys() == reloaded.keys() and all(torch.equal(state[k], reloaded[k]) for k in state)
    assert all(key.endswith((".lora_A.weight", ".lora_B.weight")) for key in state)  # peft layout


def test_fused_equals_unfused(adapted, inputs):
    unfused = run(adapted, inputs)
    fuse_lora(adapted)
    assert not has_lora(adapted)
    assert (run(adapted, inputs) - unfused).abs().max() <= 1e-4
    with pytest.raises(EngineError, match="no \\(unfused\\)"):
        lora_state_dict(adapted)


def test_alpha_scales_the_update(inputs):
    base = run(tiny_transformer(**LAYERS), inputs)
    deltas = []
    for alpha in (RANK, 2 * RANK):
        model = tiny_transformer(**LAYERS)
        add_lora(model, rank=RANK, alpha=alpha)
        randomise_lora(model, std=0.01)  # small: the output stays close to linear in the update
        deltas.append(run(model, inputs) - base)
    ratio = deltas[1].norm() / deltas[0].norm()
    assert 1.8 < ratio < 2.2


def test_files_without_settings_and_with_diffusers_prefixes_load(adapted, inputs, tmp_path):
    expected = run(adapted, inputs)
    state = lora_state_dict(adapted)
    plain = tmp_path / "plain.safetensors"
    save_file({f"transformer.{k}": v for k, v in state.items()}, str(plain))  # diffusers pipeline layout
    fresh = tiny_transformer(**LAYERS)
    assert load_lora(fresh, plain).rank == RANK  # rank read from the tensors
    assert torch.equal(run(fresh, inputs), expected)


def test_remove_lora_restores_the_stock_model(adapted, inputs):
    remove_lora(adapted)
    assert not has_lora(adapted)
    assert torch.equal(run(adapted, inputs), run(tiny_transformer(**LAYERS), inputs))


def test_mismatched_or_broken_files_raise_engine_errors(adapted, tmp_path):
    state = lora_state_dict(adapted)
    settings = lora_settings(adapted)
    # Another model size: the shapes do not fit; the model is left without a LoRA.
    wider = tiny_transformer(num_layers=2, num_single_layers=2, seed=0)
    wider_state = {k: torch.cat([v, v], dim=1) if k.endswith("lora_A.weight") else v for k, v in state.items()}
    with pytest.raises(EngineError, match="does not fit"):
        apply_lora_state(wider, settings, wider_state)
    assert not has_lora(wider)
    # Keys of another model (a UNO file not converted): refused, not silently ignored.
    with pytest.raises(EngineError, match="uno_convert"):
        apply_lora_state(tiny_transformer(**LAYERS), settings,
                         {"double_blocks.0.processor.qkv_lora1.down.weight": torch.zeros(RANK, DIM)})
    # A partial file: layers without weights are refused too.
    partial = {k: v for k, v in state.items() if not k.startswith("single_")}
    with pytest.raises(EngineError, match="without weights"):
        apply_lora_state(tiny_transformer(**LAYERS), settings, partial)
    with pytest.raises(EngineError, match="empty"):
        apply_lora_state(tiny_transformer(**LAYERS), settings, {})
    with pytest.raises(EngineError, match="already has a LoRA"):
        add_lora(adapted, rank=RANK)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with pytest.raises(EngineError, match="not a readable safetensors"):
        load_lora(tiny_transformer(**LAYERS), corrupt)
    with pytest.raises(EngineError, match="does not exist"):
        load_lora(tiny_transformer(**LAYERS), tmp_path / "missing.safetensors")
