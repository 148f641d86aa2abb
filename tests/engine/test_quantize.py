"""fp8 weight-only quantisation of the DiT (``engine.quantize``; torchao on the CPU)."""

from __future__ import annotations

import sys

import pytest
import torch

from engine.errors import EngineError
from engine.lora import add_lora, fuse_lora
from engine.quantize import fp8_config, is_quantized, quantize_transformer
from tests.helpers.dit import dit_inputs, randomise_lora, run, tiny_transformer

pytest.importorskip("torchao", reason="torchao is pinned in requirements.txt")


def _bf16(inputs: dict) -> dict:
    return {k: v.to(torch.bfloat16) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in inputs.items()}


def _weight_bytes(model: torch.nn.Module) -> int:
    total = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight
            total += w.qdata.numel() * w.qdata.element_size() if hasattr(w, "qdata") else w.numel() * w.element_size()
    return total


def test_fp8_transformer_runs_close_to_bf16_with_half_the_weight_bytes():
    reference = tiny_transformer(num_layers=2, num_single_layers=2).to(torch.bfloat16)
    quantized = tiny_transformer(num_layers=2, num_single_layers=2).to(torch.bfloat16)
    before = _weight_bytes(quantized)
    count = quantize_transformer(quantized, "fp8")
    linears = sum(isinstance(m, torch.nn.Linear) for m in quantized.modules())
    assert count == linears and is_quantized(quantized) and not is_quantized(reference)
    assert _weight_bytes(quantized) <= 0.55 * before
    inputs = _bf16(dit_inputs())
    expected, got = run(reference, inputs).float(), run(quantized, inputs).float()
    error = (got - expected).norm() / expected.norm()
    assert 0 < error < 0.1, error  # fp8 changes the output a little, not wholesale


def test_modules_to_not_convert_stay_in_bf16():
    model = tiny_transformer().to(torch.bfloat16)
    quantize_transformer(model, "fp8", modules_to_not_convert=["proj_out", "x_embedder"])
    assert not is_quantized(torch.nn.ModuleList([model.proj_out, model.x_embedder]))
    assert is_quantized(model.transformer_blocks)


def test_an_unfused_lora_is_refused_and_a_fused_one_quantises():
    model = tiny_transformer().to(torch.bfloat16)
    add_lora(model, rank=4)
    randomise_lora(model)
    with pytest.raises(EngineError, match="fused"):
        quantize_transformer(model, "fp8")
    fuse_lora(model)
    assert quantize_transformer(model, "fp8") > 0


def test_unknown_mode_and_none():
    model = tiny_transformer()
    assert quantize_transformer(model, "none") == 0 and not is_quantized(model)
    with pytest.raises(EngineError, match="quantize must be one of"):
        quantize_transformer(model, "int3")


def test_missing_torchao_names_the_backend(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)  # import fails as if not installed
    with pytest.raises(EngineError, match="torchao backend.*pip install torchao=="):
        fp8_config()
    with pytest.raises(EngineError, match="torchao"):
        quantize_transformer(tiny_transformer(), "fp8")


def test_the_config_is_diffusers_torchao_config():
    from diffusers import TorchAoConfig
    from torchao.quantization import Float8WeightOnlyConfig

    config = fp8_config()
    assert isinstance(config, TorchAoConfig) and isinstance(config.quant_type, Float8WeightOnlyConfig)
