"""LoRA on the FLUX DiT (paper section 4: rank 512 on every block), through peft.

The adapted projections are the ones UNO trains, so UNO's public weights convert onto them
one-to-one (``engine.uno_convert``):

* double blocks: q/k/v and output of the image stream (``attn.to_q/to_k/to_v/to_out.0``) and
  of the text stream (``attn.add_q_proj/add_k_proj/add_v_proj/to_add_out``);
* single blocks: q/k/v (``attn.to_q/to_k/to_v``) and the joint output ``proj_out``.

The adapter lives in the transformer as peft layers (``transformer.add_adapter``), is stored as
a safetensors file of peft keys (``transformer_blocks.0.attn.to_q.lora_A.weight`` ...) and,
because it applies to every token, can be merged into the base weights for inference
(:func:`fuse_lora`): the forward is then a stock FLUX forward again.

Loading goes through peft's ``set_peft_model_state_dict`` and is checked key by key: a state
dict that matches no LoRA layer raises instead of silently loading nothing (diffusers'
``load_lora_adapter`` does exactly that when ``prefix``/``weight_name`` are off).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import LoraConfig
from peft.tuners.tuners_utils import BaseTunerLayer
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import save_file

from engine.errors import EngineError

ADAPTER_NAME = "astra"
DEFAULT_RANK = 512  # the paper's and UNO's
# Module-name regex (peft full-matches it). Anchored on the block lists so that the
# transformer's final ``proj_out`` (a single block's namesake) is never adapted.
ASTRA_TARGETS = (
    r"transformer_blocks\.\d+\.attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)"
    r"|single_transformer_blocks\.\d+\.(attn\.to_q|attn\.to_k|attn\.to_v|proj_out)"
)
_KEY_PREFIXES = ("transformer.", "base_model.model.")
_METADATA_KEY = "astra_lora"  # safetensors metadata: the LoraSettings the file was saved with


@dataclass(frozen=True)
class LoraSettings:
    """How the DiT is adapted.

    Args:
        rank: LoRA rank r of every adapted projection.
        alpha: peft ``lora_alpha``; the update is scaled by alpha / r. None means alpha = r
            (scale 1), which is how UNO applies its LoRA (``network_alpha=None``).
        target_modules: peft ``target_modules`` (regex over module names, or a list of suffixes).
    """

    rank: int = DEFAULT_RANK
    alpha: float | None = None
    target_modules: str | tuple[str, ...] = ASTRA_TARGETS

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise EngineError(f"LoRA rank must be at least 1, got {self.rank}.")
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))

    @property
    def scale(self) -> float:
        return (self.alpha if self.alpha is not None else self.rank) / self.rank

    def peft_config(self) -> LoraConfig:
        targets = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
        return LoraConfig(r=self.rank, lora_alpha=self.alpha if self.alpha is not None else self.rank,
                          target_modules=targets, init_lora_weights=True)

    def to_dict(self) -> dict:
        data = asdict(self)
        if isinstance(self.target_modules, tuple):
            data["target_modules"] = list(self.target_modules)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> LoraSettings:
        targets = data.get("target_modules", ASTRA_TARGETS)
        return cls(rank=int(data.get("rank", DEFAULT_RANK)), alpha=data.get("alpha"),
                   target_modules=targets if isinstance(targets, str) else tuple(targets))


def add_lora(transformer: torch.nn.Module, rank: int = DEFAULT_RANK, alpha: float | None = None,
             target_modules: str | tuple[str, ...] | list[str] | None = None) -> LoraSettings:
    """Insert fresh (identity: ``lora_B = 0``) LoRA layers into ``transformer`` and activate them.

    Args:
        transformer: a diffusers ``FluxTransformer2DModel``.
        rank: LoRA rank (512 by default, the paper's).
        alpha: peft ``lora_alpha``; None means alpha = rank (scale 1).
        target_modules: which projections to adapt; None means :data:`ASTRA_TARGETS`.

    Returns:
        The :class:`LoraSettings` used (store them with the adapter).
    """
    settings = LoraSettings(rank=rank, alpha=alpha,
                            target_modules=ASTRA_TARGETS if target_modules is None else target_modules)
    return _add_adapter(transformer, settings)


def lora_state_dict(transformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's weights with peft keys (``...to_q.lora_A.weight``), contiguous, on CPU."""
    _require_adapter(transformer)
    state = get_peft_model_state_dict(transformer, adapter_name=ADAPTER_NAME)
    return {key: value.detach().to("cpu").contiguous() for key, value in state.items()}


def save_lora(transformer: torch.nn.Module, path: str | Path) -> Path:
    """Write the adapter to ``path`` (a ``.safetensors`` file; its settings go in the metadata)."""
    settings = lora_settings(transformer)
    path = Path(path)
    save_file(lora_state_dict(transformer), str(path),
              metadata={"format": "pt", _METADATA_KEY: json.dumps(settings.to_dict())})
    return path


def read_lora_file(path: str | Path) -> tuple[dict[str, torch.Tensor], LoraSettings | None]:
    """Read a LoRA safetensors file: its tensors and, if it was written by :func:`save_lora`, its settings."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"LoRA file {path} does not exist; check the adapter path.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for a corrupt header
        raise EngineError(f"{path} is not a readable safetensors file ({error}); download it again.") from error
    settings = LoraSettings.from_dict(json.loads(metadata[_METADATA_KEY])) if _METADATA_KEY in metadata else None
    return state, settings


def load_lora(transformer: torch.nn.Module, path: str | Path) -> LoraSettings:
    """Add the LoRA stored at ``path`` (written by :func:`save_lora`) to ``transformer``.

    The rank and targets come from the file; a file without them gets its rank from the
    tensors' shapes and the default targets.
    """
    state, settings = read_lora_file(path)
    if settings is None:
        settings = LoraSettings(rank=infer_rank(state))
    apply_lora_state(transformer, settings, state)
    return settings


def apply_lora_state(transformer: torch.nn.Module, settings: LoraSettings,
                     state: dict[str, torch.Tensor]) -> None:
    """Add a LoRA with ``settings`` to ``transformer`` and load ``state`` (peft keys) into it.

    Raises :class:`EngineError` if any key has no matching LoRA layer or any LoRA layer gets
    no weights, so a wrong-format file can never load as a silent no-op.
    """
    if not state:
        raise EngineError("The LoRA state dict is empty; the adapter file holds no LoRA weights.")
    state = strip_key_prefix(state)
    _add_adapter(transformer, settings)
    try:
        result = set_peft_model_state_dict(transformer, state, adapter_name=ADAPTER_NAME)
    except RuntimeError as error:  # shape mismatch: an adapter for another model size
        remove_lora(transformer)
        raise EngineError(f"The LoRA does not fit this base model ({error}); use the base it was trained on.") \
            from error
    unexpected = list(result.unexpected_keys)
    missing = [key for key in result.missing_keys if f".{ADAPTER_NAME}." in key and "lora_" in key]
    if unexpected or missing:
        remove_lora(transformer)
        detail = f"unknown keys such as {unexpected[:3]}" if unexpected else f"no weights for {missing[:3]}"
        raise EngineError(f"The LoRA does not match this transformer ({len(unexpected)} unknown keys, "
                          f"{len(missing)} layers without weights: {detail}); convert it to ASTRA's peft "
                          "layout first (UNO weights: python -m engine.uno_convert).")


def fuse_lora(transformer: torch.nn.Module) -> None:
    """Merge the LoRA into the base weights and drop the peft layers (stock FLUX forward, faster).

    Irreversible: the adapter can no longer be removed or saved afterwards.
    """
    _require_adapter(transformer)
    transformer.fuse_lora(lora_scale=1.0, adapter_names=[ADAPTER_NAME])
    transformer.unload_lora()  # keeps each merged base layer, removes the LoRA wrappers


def remove_lora(transformer: torch.nn.Module) -> None:
    """Take the (unfused) LoRA out again; the transformer is stock afterwards."""
    if has_lora(transformer):
        transformer.unload_lora()


def has_lora(transformer: torch.nn.Module) -> bool:
    return any(isinstance(module, BaseTunerLayer) for module in transformer.modules())


def lora_settings(transformer: torch.nn.Module) -> LoraSettings:
    """The settings of the LoRA inside ``transformer``."""
    _require_adapter(transformer)
    config = transformer.peft_config[ADAPTER_NAME]
    targets = config.target_modules if isinstance(config.target_modules, str) else tuple(sorted(config.target_modules))
    return LoraSettings(rank=config.r, alpha=float(config.lora_alpha), target_modules=targets)


def count_lora_parameters(transformer: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in transformer.named_parameters() if "lora_" in name)


def strip_key_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Peft keys relative to the transformer: drops the prefix diffusers' pipeline LoRA files
    (``transformer.``) or a saved ``PeftModel`` (``base_model.model.``) put on every key."""
    for prefix in _KEY_PREFIXES:
        if all(key.startswith(prefix) for key in state):
            return {key[len(prefix):]: value for key, value in state.items()}
    return state


def infer_rank(state: dict[str, torch.Tensor]) -> int:
    """The rank of a peft LoRA state dict (all layers must share it)."""
    ranks = {tensor.shape[0] for key, tensor in state.items() if key.endswith("lora_A.weight")}
    if len(ranks) != 1:
        raise EngineError(f"Expected one LoRA rank in the state dict, found {sorted(ranks) or 'none'}; "
                          "is this a peft LoRA file?")
    return ranks.pop()


def _add_adapter(transformer: torch.nn.Module, settings: LoraSettings) -> LoraSettings:
    if has_lora(transformer):
        raise EngineError("This transformer already has a LoRA; load the base model again to change adapters.")
    transformer.add_adapter(settings.peft_config(), adapter_name=ADAPTER_NAME)
    if not has_lora(transformer):
        raise EngineError(f"LoRA targets {settings.target_modules!r} match no module of this transformer.")
    return settings


def _require_adapter(transformer: torch.nn.Module) -> None:
    if ADAPTER_NAME not in getattr(transformer, "peft_config", {}) or not has_lora(transformer):
        raise EngineError("This transformer has no (unfused) ASTRA LoRA.")
