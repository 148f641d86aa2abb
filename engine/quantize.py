"""fp8 weight-only quantisation of the FLUX transformer (24 GB cards), through torchao.

The configuration is diffusers' own, ``TorchAoConfig(Float8WeightOnlyConfig())``, and it is
applied the way diffusers' torchao quantizer applies it while loading
(``TorchAoHfQuantizer.create_quantized_param``: ``quantize_`` on every ``nn.Linear`` not in
``modules_to_not_convert``). We deviate in *when*: after the adapter's LoRA is fused into the
bf16 weights, not at ``from_pretrained``, because peft cannot merge a LoRA into fp8 weights and
an unfused LoRA on fp8 layers would run the 1.2 B LoRA parameters in bf16 beside them.

Weights take 1 byte instead of 2 (FLUX.1-dev's transformer: ~24 GB -> ~12 GB); activations stay
bf16 and each matmul dequantises its weight, so it saves memory, not time, unless compiled.
"""

from __future__ import annotations

import torch

from engine.errors import EngineError

QUANTIZE_MODES = ("none", "fp8")
TORCHAO_PIN = "torchao==0.18.0"


def fp8_config(modules_to_not_convert: list[str] | None = None):
    """diffusers' ``TorchAoConfig`` for fp8 weight-only quantisation.

    Raises :class:`EngineError` naming the missing backend when torchao is not installed.
    """
    try:
        from torchao.quantization import Float8WeightOnlyConfig
    except ImportError as error:
        raise EngineError(f"--quantize fp8 needs the torchao backend, which is not installed; run "
                          f"`pip install {TORCHAO_PIN}` (requirements.txt pins it) or start without "
                          "--quantize.") from error
    from diffusers import TorchAoConfig

    return TorchAoConfig(Float8WeightOnlyConfig(), modules_to_not_convert=modules_to_not_convert)


def quantize_transformer(transformer: torch.nn.Module, mode: str = "fp8",
                         modules_to_not_convert: list[str] | None = None) -> int:
    """Quantise ``transformer``'s linear weights in place; returns how many layers changed.

    Args:
        transformer: the FLUX DiT, LoRA already fused (an unfused peft LoRA is refused).
        mode: ``"fp8"`` (weight-only float8 e4m3, per-row scales) or ``"none"``.
        modules_to_not_convert: module-name prefixes to keep in their dtype.
    """
    if mode not in QUANTIZE_MODES:
        raise EngineError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, not {mode!r}.")
    if mode == "none":
        return 0
    from engine.lora import has_lora

    if has_lora(transformer):
        raise EngineError("fp8 quantisation needs the LoRA fused into the base weights first; keep fuse_lora on "
                          "(the default) when using --quantize fp8.")
    config = fp8_config(modules_to_not_convert)
    from torchao.quantization import quantize_

    skip = list(config.modules_to_not_convert or [])
    count = 0
    for name, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear) or any(name == s or name.startswith(s + ".") for s in skip):
            continue
        quantize_(module, config.get_apply_tensor_subclass())
        count += 1
    if count == 0:
        raise EngineError("fp8 quantisation found no linear layer to quantise in this transformer.")
    return count


def is_quantized(transformer: torch.nn.Module) -> bool:
    """Whether any linear weight is a torchao tensor subclass (quantised)."""
    return any(isinstance(m, torch.nn.Linear) and type(m.weight).__module__.startswith("torchao")
               for m in transformer.modules())
