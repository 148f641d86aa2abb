"""UNO's dit_lora.safetensors (BFL processor names, fused qkv) -> ASTRA peft adapter.

The synthetic file has UNO's exact key names (``uno/flux/modules/layers.py``:
``double_blocks.{i}.processor.{qkv,proj}_lora{1,2}`` and ``single_blocks.{i}.processor.
{qkv,proj}_lora``, each ``LoRALinearLayer`` with ``down``/``up`` and no bias) at tiny shapes. A
LoRA on a linear layer is exactly a weight delta, so the check is: after loading and fusing, every
diffusers projection moved by the slice of UNO's ``up @ down`` that BFL adds to it.
"""

import pytest
import torch
from safetensors.torch import save_file

from engine.checkpoint import DSM_NAME, LORA_NAME, load_adapter
from engine.errors import EngineError
from engine.lora import LoraSettings, apply_lora_state, fuse_lora
from engine.uno_convert import UNO_SOURCE, convert_uno_file, convert_uno_state_dict, main
from tests.helpers.dit import DIM, tiny_transformer

RANK, DOUBLE, SINGLE = 4, 2, 2
LAYERS = dict(num_layers=DOUBLE, num_single_layers=SINGLE)


def uno_state_dict(rank=RANK, dim=DIM, seed=0, prefix=""):
    """UNO's LoRA keys and shapes (FLUX.1-dev: dim 3072, single-block proj in 15360 = 5 * dim)."""
    generator = torch.Generator().manual_seed(seed)

    def pair(name, fan_in, fan_out):
        return {f"{prefix}{name}.down.weight": torch.randn(rank, fan_in, generator=generator),
                f"{prefix}{name}.up.weight": torch.randn(fan_out, rank, generator=generator)}

    state = {}
    for i in range(DOUBLE):
        for stream in ("1", "2"):
            state |= pair(f"double_blocks.{i}.processor.qkv_lora{stream}", dim, 3 * dim)
            state |= pair(f"double_blocks.{i}.processor.proj_lora{stream}", dim, dim)
    for i in range(SINGLE):
        state |= pair(f"single_blocks.{i}.processor.qkv_lora", dim, 3 * dim)
        state |= pair(f"single_blocks.{i}.processor.proj_lora", 5 * dim, dim)
    return state


def _delta(uno, name):
    return uno[f"{name}.up.weight"] @ uno[f"{name}.down.weight"]


def _expected_deltas(uno):
    """diffusers module -> the weight delta UNO's processors add to it (fused qkv split q, k, v)."""
    expected = {}
    for i in range(DOUBLE):
        for stream, names in (("1", ("attn.to_q", "attn.to_k", "attn.to_v")),
                              ("2", ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"))):
            qkv = _delta(uno, f"double_blocks.{i}.processor.qkv_lora{stream}")
            for part, name in enumerate(names):
                expected[f"transformer_blocks.{i}.{name}"] = qkv[part * DIM:(part + 1) * DIM]
        expected[f"transformer_blocks.{i}.attn.to_out.0"] = _delta(uno, f"double_blocks.{i}.processor.proj_lora1")
        expected[f"transformer_blocks.{i}.attn.to_add_out"] = _delta(uno, f"double_blocks.{i}.processor.proj_lora2")
    for i in range(SINGLE):
        qkv = _delta(uno, f"single_blocks.{i}.processor.qkv_lora")
        for part, name in enumerate(("attn.to_q", "attn.to_k", "attn.to_v")):
            expected[f"single_transformer_blocks.{i}.{name}"] = qkv[part * DIM:(part + 1) * DIM]
        # linear2 of BFL's single block is diffusers' proj_out over cat(attention, mlp).
        expected[f"single_transformer_blocks.{i}.proj_out"] = _delta(uno, f"single_blocks.{i}.processor.proj_lora")
    return expected


def _weights(model):
    return {name: module.weight.detach().clone() for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)}


def test_converted_lora_adds_exactly_unos_weight_deltas():
    uno = uno_state_dict()
    peft_state, rank = convert_uno_state_dict(uno)
    assert rank == RANK
    assert len(peft_state) == 2 * (DOUBLE * 8 + SINGLE * 4)
    model = tiny_transformer(**LAYERS)
    before = _weights(model)
    apply_lora_state(model, LoraSettings(rank=rank), peft_state)  # every LoRA layer gets weights
    fuse_lora(model)
    after = _weights(model)
    expected = _expected_deltas(uno)
    for name in before:
        delta = after[name] - before[name]
        if name in expected:
            torch.testing.assert_close(delta, expected[name], atol=1e-4, rtol=1e-4, msg=name)
        else:
            assert torch.equal(delta, torch.zeros_like(delta)), name  # nothing else moved


def test_cli_writes_an_adapter_folder(tmp_path, capsys):
    source = tmp_path / "dit_lora.safetensors"
    save_file(uno_state_dict(prefix="diffusion_model."), str(source))  # ComfyUI-style prefix is accepted
    assert main([str(source), str(tmp_path / "uno-identity")]) == 0
    assert "wrote ASTRA adapter" in capsys.readouterr().out
    config, lora_state, dsm_state = load_adapter(tmp_path / "uno-identity")
    assert config.lora.rank == RANK and config.dsm is None and dsm_state == {}
    assert config.source == UNO_SOURCE and not (tmp_path / "uno-identity" / DSM_NAME).exists()
    assert (tmp_path / "uno-identity" / LORA_NAME).is_file()
    assert lora_state.keys() == convert_uno_state_dict(uno_state_dict())[0].keys()
    # The folder exists now: a second run refuses unless told to overwrite.
    assert main([str(source), str(tmp_path / "uno-identity")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([str(source), str(tmp_path / "uno-identity"), "--overwrite"]) == 0


def test_bad_uno_files_raise_engine_errors(tmp_path):
    uno = uno_state_dict()
    with pytest.raises(EngineError, match="not UNO LoRA keys"):
        convert_uno_state_dict({**uno, "double_blocks.0.img_attn.qkv.weight": torch.zeros(3, 3)})
    half = {k: v for k, v in uno.items() if k != "single_blocks.1.processor.proj_lora.up.weight"}
    with pytest.raises(EngineError, match="has only its down matrix"):
        convert_uno_state_dict(half)
    rank_two = uno_state_dict(rank=2)
    mixed = {k: rank_two[k] if k.startswith("single_blocks.0") else v for k, v in uno.items()}
    with pytest.raises(EngineError, match="different ranks"):
        convert_uno_state_dict(mixed)
    odd = {**uno, "double_blocks.0.processor.qkv_lora1.up.weight": torch.zeros(3 * DIM + 1, RANK)}
    with pytest.raises(EngineError, match="do not form a LoRA"):
        convert_uno_state_dict(odd)
    with pytest.raises(EngineError, match="no UNO LoRA weights"):
        convert_uno_state_dict({})
    with pytest.raises(EngineError, match="download dit_lora.safetensors"):
        convert_uno_file(tmp_path / "missing.safetensors", tmp_path / "out")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00")
    with pytest.raises(EngineError, match="not a readable safetensors"):
        convert_uno_file(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- twice checked (issue 11)

def test_our_conversion_equals_diffusers_xlabs_conversion():
    """diffusers' ``_convert_xlabs_flux_lora_to_diffusers`` (what ``load_lora_weights`` runs on
    UNO's file) and ours give the same keys and the same tensors, bit for bit."""
    from diffusers.loaders.lora_conversion_utils import _convert_xlabs_flux_lora_to_diffusers

    uno = uno_state_dict(prefix="diffusion_model.")
    theirs = _convert_xlabs_flux_lora_to_diffusers(dict(uno))
    theirs = {key.removeprefix("transformer."): value for key, value in theirs.items()}
    ours, rank = convert_uno_state_dict(uno)
    assert rank == RANK and sorted(ours) == sorted(theirs) and len(ours) == 16 * DOUBLE + 8 * SINGLE
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def test_diffusers_load_lora_weights_and_ours_give_the_same_model():
    """Both loading paths on the same base model: same fused weights, same forward."""
    from diffusers import FluxPipeline

    from engine import AstraPipeline
    from tests.helpers.dit import dit_inputs, run

    uno = uno_state_dict()
    ours = tiny_transformer(**LAYERS)
    apply_lora_state(ours, LoraSettings(rank=RANK), convert_uno_state_dict(uno)[0])
    fuse_lora(ours)
    tiny = AstraPipeline.tiny(seed=0)
    parts = {name: getattr(tiny, name) for name in ("scheduler", "vae", "text_encoder", "tokenizer",
                                                    "text_encoder_2", "tokenizer_2")}
    flux = FluxPipeline(**parts, transformer=tiny_transformer(**LAYERS))
    flux.load_lora_weights(dict(uno))  # diffusers detects the XLabs/UNO keys and converts them itself
    flux.fuse_lora(lora_scale=1.0)
    flux.unload_lora_weights()
    theirs = flux.transformer
    plain = tiny_transformer(**LAYERS)
    inputs = dit_inputs()
    assert (run(ours, inputs) - run(plain, inputs)).abs().max() > 1e-3  # the LoRA does something
    assert (run(ours, inputs) - run(theirs, inputs)).abs().max() <= 1e-5
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_read_uno_lora_takes_a_file_or_its_folder(tmp_path):
    from engine.uno_convert import read_uno_lora

    uno = uno_state_dict()
    save_file(uno, str(tmp_path / "dit_lora.safetensors"))
    from_file, rank = read_uno_lora(tmp_path / "dit_lora.safetensors")
    from_folder, _ = read_uno_lora(str(tmp_path))
    assert rank == RANK and from_file.keys() == from_folder.keys() == convert_uno_state_dict(uno)[0].keys()
    with pytest.raises(EngineError, match="dit_lora.safetensors"):
        read_uno_lora(tmp_path / "nowhere")
