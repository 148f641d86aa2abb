"""Convert UNO's public LoRA (``dit_lora.safetensors``) into an ASTRA adapter folder.

UNO (bytedance/UNO) trains a rank-512 LoRA on FLUX.1-dev as attention processors with BFL key
names. Checked against UNO's ``uno/flux/modules/layers.py`` and ``train.py`` (which saves every
trainable parameter of the DiT, i.e. only the processors):

* ``LoRALinearLayer`` has ``down`` (in -> r) and ``up`` (r -> out), no bias, and scales by
  ``network_alpha / rank`` only when ``network_alpha`` is set; UNO leaves it None, so scale 1;
* ``double_blocks.{i}.processor.qkv_lora1`` adds to the image stream's fused qkv (out 3*dim,
  split ``(K H D)`` into q, k, v), ``qkv_lora2`` to the text stream's; ``proj_lora1`` /
  ``proj_lora2`` add to the image / text attention output projections;
* ``single_blocks.{i}.processor.qkv_lora`` adds to the qkv part of ``linear1`` and
  ``proj_lora`` (in 15360 = dim + 4*dim) to ``linear2``, diffusers' ``proj_out``.

diffusers splits BFL's fused qkv into ``to_q/to_k/to_v``. A fused update ``up @ down`` splits
exactly into three LoRAs that share ``down`` (replicated) and take one third of ``up`` each:
``up[q] @ down``, ``up[k] @ down``, ``up[v] @ down``. diffusers' private
``_convert_xlabs_flux_lora_to_diffusers`` maps XLabs files (same processor names) the same way.

    python -m engine.uno_convert dit_lora.safetensors adapters/uno-identity
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from engine.checkpoint import AstraConfig, write_adapter
from engine.errors import EngineError
from engine.hub import hub_error, is_hub_id, resolve_token
from engine.lora import LoraSettings
from engine.settings import UNO_LORA_FILE, UNO_REPO

UNO_SOURCE = "bytedance/UNO dit_lora.safetensors (converted by engine.uno_convert)"
# UNO processor LoRA -> diffusers modules it adds to (several = a fused qkv split in order).
_DOUBLE = {
    "qkv_lora1": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "qkv_lora2": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "proj_lora1": ("attn.to_out.0",),
    "proj_lora2": ("attn.to_add_out",),
}
_SINGLE = {
    "qkv_lora": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "proj_lora": ("proj_out",),
}
_BLOCKS = {"double_blocks": ("transformer_blocks", _DOUBLE), "single_blocks": ("single_transformer_blocks", _SINGLE)}
_UNO_KEY = re.compile(
    r"(?:diffusion_model\.)?(double_blocks|single_blocks)\.(\d+)\.processor\.(\w+)\.(down|up)\.weight")


def convert_uno_state_dict(uno_state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """UNO/BFL processor LoRA keys -> ASTRA peft keys; returns ``(peft_state, rank)``.

    Raises :class:`EngineError` on keys it does not know, a missing half of a pair, a fused
    ``up`` not divisible into q/k/v, or mixed ranks.
    """
    pairs: dict[tuple[str, str, str], dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in uno_state.items():
        match = _UNO_KEY.fullmatch(key)
        if match is None or match[3] not in _BLOCKS[match[1]][1]:
            unknown.append(key)
            continue
        pairs.setdefault((match[1], match[2], match[3]), {})[match[4]] = tensor
    if unknown:
        raise EngineError(f"{len(unknown)} keys are not UNO LoRA keys (e.g. {unknown[:3]}); is this UNO's "
                          "dit_lora.safetensors?")
    if not pairs:
        raise EngineError("The file holds no UNO LoRA weights.")

    peft_state: dict[str, torch.Tensor] = {}
    ranks = set()
    for (kind, index, name), halves in sorted(pairs.items()):
        if set(halves) != {"down", "up"}:
            raise EngineError(f"{kind}.{index}.processor.{name} has only its {'/'.join(halves)} matrix.")
        down, up = halves["down"], halves["up"]
        ranks.add(down.shape[0])
        prefix, table = _BLOCKS[kind]
        targets = table[name]
        if up.shape[1] != down.shape[0] or up.shape[0] % len(targets):
            raise EngineError(f"{kind}.{index}.processor.{name}: up {tuple(up.shape)} and down {tuple(down.shape)} "
                              f"do not form a LoRA over {len(targets)} projections.")
        for target, up_part in zip(targets, up.chunk(len(targets), dim=0)):
            module = f"{prefix}.{index}.{target}"
            # The shared down is replicated (exact); cloned, since safetensors refuses aliased tensors.
            peft_state[f"{module}.lora_A.weight"] = down.clone().contiguous()
            peft_state[f"{module}.lora_B.weight"] = up_part.contiguous()
    if len(ranks) != 1:
        raise EngineError(f"UNO LoRA layers have different ranks {sorted(ranks)}; expected one.")
    return peft_state, ranks.pop()


def read_uno_lora(source: str | Path, *, token: str | None = None, local_files_only: bool = False,
                  ) -> tuple[dict[str, torch.Tensor], int]:
    """UNO's LoRA from a file, a folder holding ``dit_lora.safetensors`` or a hub repo, converted to
    ASTRA peft keys: ``(peft_state, rank)``. Hub and file problems raise :class:`EngineError`."""
    path = Path(str(source)).expanduser()
    if path.is_dir():
        path = path / UNO_LORA_FILE
    elif not path.exists() and is_hub_id(str(source)):
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(str(source), UNO_LORA_FILE, token=resolve_token(token),
                                        local_files_only=local_files_only))
        except Exception as error:  # gated, offline, not found...: engine.hub says which
            raise hub_error(error, "UNO LoRA", str(source), token=token) from error
    if not path.is_file():
        raise EngineError(f"{path} does not exist; download {UNO_LORA_FILE} from {UNO_REPO}, or pass its folder or the hub id.")
    try:
        uno_state = load_file(str(path))
    except Exception as error:  # safetensors' header errors have no common base class
        raise EngineError(f"{path} is not a readable safetensors file ({error}); download it again.") from error
    return convert_uno_state_dict(uno_state)


def convert_uno_file(source: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Convert UNO's ``dit_lora.safetensors`` (a file, its folder or the hub id) into an ASTRA adapter
    folder (LoRA only, no DSM)."""
    peft_state, rank = read_uno_lora(source)
    config = AstraConfig(lora=LoraSettings(rank=rank), dsm=None, source=UNO_SOURCE, resolutions=[512])
    return write_adapter(out_dir, config, peft_state, None, overwrite=overwrite)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.uno_convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="UNO's dit_lora.safetensors")
    parser.add_argument("out_dir", help="the ASTRA adapter folder to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    try:
        folder = convert_uno_file(args.source, args.out_dir, overwrite=args.overwrite)
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote ASTRA adapter {folder} (UNO LoRA, no DSM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
