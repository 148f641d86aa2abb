"""ASTRA adapter checkpoints: one folder, three files.

    astra_config.json            AstraConfig: format and library versions, LoRA rank/targets,
                                 DSM sizes, reference/pose resolutions, training resolutions
    transformer_lora.safetensors the DiT LoRA in diffusers' convention: peft keys prefixed with
                                 ``transformer.`` and the LoraConfig (rank, alpha, targets) in the
                                 ``lora_adapter_metadata`` header, so stock diffusers loads it:
                                 ``FluxPipeline.load_lora_weights(folder, weight_name=LORA_NAME)``
    dsm.safetensors              the DSM adapter's state dict (``engine.dsm``)

Either weights file may be absent (a converted UNO LoRA has no DSM). The base model is not part
of the adapter; it comes from a hub id or a local folder. A folder is written to a temporary
sibling and renamed into place, so a crash or a full disk never leaves half an adapter.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from engine.conditioning import ReferenceSizes
from engine.dsm import DisentangledSemanticModulation, DSMConfig, check_dsm_fits
from engine.errors import EngineError
from engine.hub import hub_error, is_hub_id, resolve_token
from engine.lora import LoraSettings, has_lora, lora_settings, lora_state_dict, read_lora_file, strip_key_prefix
from engine.settings import FLUX_DEV, AstraSettings

CONFIG_NAME = "astra_config.json"
LORA_NAME = "transformer_lora.safetensors"
DSM_NAME = "dsm.safetensors"
ADAPTER_FILES = (CONFIG_NAME, LORA_NAME, DSM_NAME)
FORMAT_VERSION = 1
TRANSFORMER_PREFIX = "transformer."  # diffusers' FluxLoraLoaderMixin.transformer_name + "."
LORA_ADAPTER_METADATA_KEY = "lora_adapter_metadata"  # diffusers.loaders.lora_base's name for it


@dataclass
class AstraConfig:
    """Everything needed to rebuild an adapter around its base model.

    Args:
        lora: LoRA rank, alpha and targets, or None if the adapter has no LoRA.
        dsm: DSM sizes, or None if the adapter has no DSM.
        settings: reference sizes, pose-map scale, T5 length, region dilation.
        base: the base model the adapter was trained on (hub id).
        resolutions: output sizes (long side, px) it was trained at; others work but may be weaker.
        source: where the weights come from (a training run, a conversion...).
        format_version: this file layout's version; newer files are refused with a clear message.
        versions: library versions that wrote it, for bug reports.
    """

    lora: LoraSettings | None = field(default_factory=LoraSettings)
    dsm: DSMConfig | None = field(default_factory=DSMConfig)
    settings: AstraSettings = field(default_factory=AstraSettings)
    base: str = FLUX_DEV
    resolutions: list[int] = field(default_factory=lambda: [1024])
    source: str = ""
    format_version: int = FORMAT_VERSION
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format_version": self.format_version,
            "base": self.base,
            "source": self.source,
            "resolutions": list(self.resolutions),
            "lora": self.lora.to_dict() if self.lora is not None else None,
            "dsm": self.dsm.to_dict() if self.dsm is not None else None,
            "settings": asdict(self.settings),
            "versions": dict(self.versions),
        }

    @classmethod
    def from_dict(cls, data: dict) -> AstraConfig:
        version = int(data.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise EngineError(f"This adapter uses format {version}, newer than this ASTRA Studio reads "
                              f"({FORMAT_VERSION}); update ASTRA Studio.")
        settings = _known_fields(AstraSettings, data.get("settings") or {})
        if "references" in settings:
            settings["references"] = ReferenceSizes(**_known_fields(ReferenceSizes, settings["references"]))
        return cls(
            lora=LoraSettings.from_dict(data["lora"]) if data.get("lora") else None,
            dsm=DSMConfig(**_known_fields(DSMConfig, data["dsm"])) if data.get("dsm") else None,
            settings=AstraSettings(**settings),
            base=data.get("base", FLUX_DEV),
            resolutions=[int(r) for r in data.get("resolutions", [1024])],
            source=data.get("source", ""),
            format_version=version,
            versions=dict(data.get("versions", {})),
        )


def save_adapter(directory: str | Path, config: AstraConfig, transformer: torch.nn.Module | None = None,
                 dsm: DisentangledSemanticModulation | None = None, *, overwrite: bool = False) -> Path:
    """Save an adapter folder from live modules.

    Args:
        directory: the adapter folder to create.
        config: the adapter's config; its ``lora`` and ``dsm`` entries are taken from the modules.
        transformer: the DiT carrying the (unfused) ASTRA LoRA, or None for no LoRA.
        dsm: the DSM adapter, or None for no DSM.
        overwrite: replace an existing folder (atomically) instead of refusing.
    """
    with_lora = transformer is not None and has_lora(transformer)
    config = replace(config, lora=lora_settings(transformer) if with_lora else None,
                     dsm=dsm.config if dsm is not None else None)
    lora_state = lora_state_dict(transformer) if with_lora else None
    dsm_state = {k: v.detach().to("cpu").contiguous() for k, v in dsm.state_dict().items()} if dsm else None
    return write_adapter(directory, config, lora_state, dsm_state, overwrite=overwrite)


def write_adapter(directory: str | Path, config: AstraConfig, lora_state: dict[str, torch.Tensor] | None,
                  dsm_state: dict[str, torch.Tensor] | None, *, overwrite: bool = False) -> Path:
    """Write an adapter folder from state dicts, all or nothing (temp folder, then rename)."""
    directory = Path(directory)
    if directory.exists() and not overwrite:
        raise EngineError(f"{directory} already exists; choose another folder or pass overwrite=True.")
    if (lora_state is None) != (config.lora is None) or (dsm_state is None) != (config.dsm is None):
        raise ValueError("config.lora / config.dsm must be set exactly when their weights are given.")
    config = replace(config, format_version=FORMAT_VERSION, versions=_library_versions())
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        (staging / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        if lora_state is not None:
            save_file(diffusers_lora_state(lora_state), str(staging / LORA_NAME),
                      metadata=diffusers_lora_metadata(config.lora))
        if dsm_state is not None:
            save_file(dsm_state, str(staging / DSM_NAME), metadata={"format": "pt"})
        _replace_folder(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def load_adapter(path_or_repo: str | Path, *, token: str | None = None, revision: str | None = None,
                 local_files_only: bool = False,
                 ) -> tuple[AstraConfig, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Read an adapter from a local folder or a Hugging Face Hub repo.

    Args:
        path_or_repo: adapter folder, or hub repo id (``owner/name``).
        token: hub token for private repos (default: the ``HF_TOKEN`` environment variable).
        revision: hub branch, tag or commit.
        local_files_only: use the hub cache only, never the network.

    Returns:
        ``(config, lora_state, dsm_state)``; a state dict is empty if the adapter has no such part.
    """
    folder = _adapter_folder(str(path_or_repo), token, revision, local_files_only)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        hint = (" It looks like a UNO LoRA: convert it with `python -m engine.uno_convert`."
                if (folder / "dit_lora.safetensors").exists() else "")
        raise EngineError(f"{folder} has no {CONFIG_NAME}, so it is not an ASTRA adapter folder.{hint}")
    try:
        config = AstraConfig.from_dict(json.loads(config_path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise EngineError(f"{config_path} is damaged ({error}); download or save the adapter again.") from error
    lora_state = _read_part(folder / LORA_NAME, config.lora is not None,
                            lambda p: strip_key_prefix(read_lora_file(p)[0]))  # files of either convention
    dsm_state = _read_part(folder / DSM_NAME, config.dsm is not None, load_file)
    return config, lora_state, dsm_state


def diffusers_lora_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Peft keys relative to the transformer -> diffusers' pipeline LoRA keys (``transformer.`` +
    key, as ``FluxLoraLoaderMixin.save_lora_weights`` writes them). Already prefixed keys stay."""
    state = strip_key_prefix(state)
    return {f"{TRANSFORMER_PREFIX}{key}": value for key, value in state.items()}


def diffusers_lora_metadata(settings: LoraSettings) -> dict[str, str]:
    """The safetensors header diffusers writes and reads back: the LoraConfig under
    ``lora_adapter_metadata``, each key prefixed with the component (``transformer.r``...).

    Without it diffusers infers the rank from the shapes and takes alpha = rank, which is wrong
    for an adapter trained with another alpha.
    """
    targets = settings.target_modules if isinstance(settings.target_modules, str) else list(settings.target_modules)
    config = {"r": settings.rank, "lora_alpha": settings.alpha if settings.alpha is not None else settings.rank,
              "target_modules": targets}
    packed = {f"{TRANSFORMER_PREFIX}{key}": value for key, value in config.items()}
    return {"format": "pt", LORA_ADAPTER_METADATA_KEY: json.dumps(packed, indent=2, sort_keys=True)}


def build_dsm(config: AstraConfig, dsm_state: dict[str, torch.Tensor],
              dtype: torch.dtype | None = None) -> DisentangledSemanticModulation | None:
    """The adapter's DSM module with its weights (None if the adapter has none)."""
    if not dsm_state:
        return None
    dsm = DisentangledSemanticModulation(config.dsm)
    try:
        dsm.load_state_dict(dsm_state)
    except RuntimeError as error:  # missing/unexpected keys or shapes: another DSM version or size
        raise EngineError(f"dsm.safetensors does not match the DSM sizes in {CONFIG_NAME} ({error}); "
                          "download or save the adapter again.") from error
    return dsm.to(dtype=dtype) if dtype is not None else dsm


def check_fits(config: AstraConfig, transformer: torch.nn.Module) -> None:
    """Raise :class:`EngineError` if the adapter's DSM was built for another base model size.

    (A LoRA of the wrong size is caught when it is loaded, by ``engine.lora``.)
    """
    if config.dsm is not None:
        check_dsm_fits(config.dsm, transformer, trained_on=config.base)


def _read_part(path: Path, expected: bool, read) -> dict[str, torch.Tensor]:
    if not expected:
        return {}
    if not path.is_file():
        raise EngineError(f"{path.parent} lacks {path.name}, which its {CONFIG_NAME} lists; "
                          "download or save the adapter again.")
    try:
        return dict(read(path))
    except EngineError:
        raise
    except Exception as error:  # safetensors' header errors have no common base class
        raise EngineError(f"{path} is not a readable safetensors file ({error}); download it again.") from error


def _adapter_folder(path_or_repo: str, token: str | None, revision: str | None, local_files_only: bool) -> Path:
    path = Path(path_or_repo).expanduser()
    if path.is_dir():
        return path
    if path.exists() or not is_hub_id(path_or_repo):
        raise EngineError(f"Adapter {path_or_repo!r} is neither a folder nor a hub repo id (owner/name); "
                          "check the path.")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path_or_repo, revision=revision, token=resolve_token(token),
                                      allow_patterns=list(ADAPTER_FILES), local_files_only=local_files_only))
    except Exception as error:  # gated, not found, offline...: engine.hub says which
        raise hub_error(error, "adapter", path_or_repo, revision=revision, token=token) from error


def _replace_folder(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an existing target is swapped out first and deleted last."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, retired / target.name)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired / target.name, target)  # put the old adapter back
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def _known_fields(cls, data: dict) -> dict:
    """Drop keys a newer writer added that this version does not know."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _library_versions() -> dict[str, str]:
    import diffusers
    import peft

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__}
