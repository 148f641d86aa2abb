"""The single-stage ASTRA trainer: LoRA + DSM on a frozen FLUX.1-dev, through accelerate.

One step (paper section 3.2 and 4.1; loss, timesteps and guidance as UNO's ``train.py``):

1. encode (frozen, no grad): T5/CLIP text (prompt dropped to "" with ``text_dropout``), the
   target latent, the references and the pose map as clean packed VAE tokens, CLIP-vision
   features of the references; or read them from the ``--cache``;
2. sample sigma: u ~ U(0, 1) pushed through FLUX's resolution shift (``calculate_shift`` over
   the latent tokens, as ``FlowMatchEulerDiscreteScheduler`` shifts at inference and UNO's
   ``get_schedule(shift=True)`` does for training); ``z_t = (1 - sigma) x0 + sigma eps``;
3. DSM offsets (eq. 7-8) and the ASTRA forward (``engine.transformer.astra_forward``) with
   guidance 1, EURoPE ids and the per-layer offsets;
4. loss = MSE(prediction, eps - x0) (+ ``mosaic_weight`` x MOSAIC's L_MD); accelerate handles
   mixed precision, accumulation, clipping and the distributed engine (DDP, DeepSpeed, FSDP).

Only the LoRA and the DSM are trainable; the DiT base, VAE, text encoders and CLIP are frozen.
Randomness of a step (dropout, sigma, noise) comes from a generator seeded by (seed, process,
micro-step), and the data order from (seed, epoch): resuming from a checkpoint at step k
continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DistributedType, ProjectConfiguration, set_seed
from diffusers.optimization import get_scheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from diffusers.training_utils import cast_training_params
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from engine.checkpoint import CONFIG_NAME, AstraConfig, save_adapter, write_adapter
from engine.conditioning import ReferenceSizes, encode_tokens, vision_states
from engine.dsm import DisentangledSemanticModulation, DSMConfig
from engine.errors import EngineError
from engine.europe import StreamLayout
from engine.inputs import MIN_SIDE
from engine.lora import ADAPTER_NAME, LoraSettings, add_lora, apply_lora_state, lora_settings
from engine.settings import AstraSettings
from engine.train.config import TrainConfig
from engine.train.dataset import BucketBatchSampler, TrainDataset, TrainSample, validate_dataset
from engine.train.mosaic import disentanglement_loss, record_reference_attention
from engine.train.tracking import CSVTracker
from engine.transformer import astra_forward, modulate_text_stream

logger = get_logger(__name__)

CHECKPOINTS = "checkpoints"


class AstraTrainModule(nn.Module):
    """The trainable model accelerate wraps: the (LoRA-adapted, otherwise frozen) DiT and the DSM.

    Its ``forward`` is the whole differentiable part of a step, so DDP / DeepSpeed / FSDP see
    one module and one forward.
    """

    def __init__(self, transformer: nn.Module, dsm: DisentangledSemanticModulation | None,
                 mosaic_blocks: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.transformer = transformer
        self.dsm = dsm
        self.mosaic_blocks = mosaic_blocks

    def forward(self, *, noisy: torch.Tensor, conditions: torch.Tensor | None, prompt_embeds: torch.Tensor,
                pooled: torch.Tensor, sigmas: torch.Tensor, img_ids: torch.Tensor, txt_ids: torch.Tensor,
                guidance: torch.Tensor | None, vision: torch.Tensor | None,
                layout: StreamLayout) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Predict the flow for ``noisy``; returns (prediction, MOSAIC L_MD or None).

        Args:
            noisy: (B, L, C) packed z_t. conditions: (B, L_cond, C) clean reference/pose tokens.
            prompt_embeds: (B, T, text_dim) T5 embeddings (before DSM). pooled: (B, pooled_dim).
            sigmas: (B,) flow-matching times in [0, 1]. img_ids/txt_ids: EURoPE and text ids.
            guidance: (B,) distilled guidance or None. vision: (B, N, P, D) CLIP features or None.
            layout: the image stream's layout (reference spans for the MOSAIC term).
        """
        layer_offsets = None
        if self.dsm is not None and vision is not None:
            offsets = self.dsm(prompt_embeds.to(self.dsm.dtype), vision.to(self.dsm.dtype), timestep=sigmas)
            prompt_embeds = prompt_embeds + offsets.global_offset.to(prompt_embeds.dtype)
            layer_offsets = offsets.layer_offsets.to(prompt_embeds.dtype)
        blocks = self.mosaic_blocks if self.training else ()
        with modulate_text_stream(self.transformer, layer_offsets), \
                record_reference_attention(self.transformer, blocks, layout.num_latent, layout.ref_slices) as probe:
            prediction = astra_forward(self.transformer, noisy, conditions=conditions, encoder_hidden_states=prompt_embeds,
                                       pooled_projections=pooled, timestep=sigmas, img_ids=img_ids, txt_ids=txt_ids,
                                       guidance=guidance)
        mdl = disentanglement_loss(probe.maps, layout.ref_slices) if probe is not None and probe.maps else None
        return prediction, mdl


@dataclass
class Progress:
    """Optimiser steps done; saved with the accelerate state (``register_for_checkpointing``)."""

    step: int = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


@dataclass
class Batch:
    """Encoded inputs of one micro-batch (on the training device)."""

    latents: torch.Tensor
    conditions: torch.Tensor | None
    prompt_embeds: torch.Tensor
    pooled: torch.Tensor
    vision: torch.Tensor | None
    layout: StreamLayout


class Trainer:
    """Builds the models, the data and the accelerate objects from a :class:`TrainConfig`; :meth:`train`.

    Args:
        config: the run's settings.
        resume: ``"latest"`` or a checkpoint folder to continue from, or None for a fresh run.
        accelerator: an existing ``Accelerator`` (tests); by default one is made from the config
            and the environment ``accelerate launch`` sets up.
    """

    def __init__(self, config: TrainConfig, *, resume: str | None = None, accelerator: Accelerator | None = None) -> None:
        self.config = c = config
        self.out = Path(c.out)
        cpu = not torch.cuda.is_available()
        self.accelerator = accelerator or Accelerator(
            gradient_accumulation_steps=c.gradient_accumulation_steps,
            mixed_precision="no" if cpu else c.mixed_precision,
            log_with=[CSVTracker("train", self.out / "logs")] if c.tracker == "csv" else "tensorboard",
            project_config=ProjectConfiguration(project_dir=str(self.out), logging_dir=str(self.out / "logs")),
        )
        acc = self.accelerator
        set_seed(c.seed, device_specific=False)  # the same new-module weights on every process
        self.device = acc.device
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(acc.mixed_precision, torch.float32)
        self.pipe = self._load_models()
        self.records = self._load_records()
        self._build_trainable()
        self._build_optimisation()
        self.progress = Progress()
        acc.register_for_checkpointing(self.progress)
        acc.register_save_state_pre_hook(self._only_trainable_weights)
        if resume:
            self._resume(resume)
        self._empty_text: tuple[torch.Tensor, torch.Tensor] | None = None
        self.cache_dir = self._build_cache() if c.cache else None

    # ------------------------------------------------------------------------------- building

    def _load_models(self):
        from engine.pipeline import AstraPipeline

        c = self.config
        if c.tiny:
            pipe = AstraPipeline.tiny(seed=0)  # the base engine AstraPipeline.tiny(seed=0, adapter=...) rebuilds
        else:
            from transformers import CLIPImageProcessor, CLIPVisionModel

            pipe = AstraPipeline.from_pretrained(c.base, adapter=None, dtype=self.weight_dtype)
            if c.dsm:
                pipe.register_modules(
                    image_encoder=CLIPVisionModel.from_pretrained(c.image_encoder, dtype=self.weight_dtype),
                    feature_extractor=CLIPImageProcessor.from_pretrained(c.image_encoder))
            pipe.settings = AstraSettings(references=ReferenceSizes(c.reference_long_side, c.reference_long_side_multi),
                                          pose_scale=c.pose_scale, max_sequence_length=c.max_sequence_length)
        pipe.to(self.device)
        for name in ("vae", "text_encoder", "text_encoder_2", "image_encoder", "transformer"):
            module = getattr(pipe, name, None)
            if module is not None:
                module.requires_grad_(False)
                module.eval()
        return pipe

    def _load_records(self):
        c, acc = self.config, self.accelerator
        data = Path(c.data) if c.data else self.out / "tiny_data"
        if c.tiny and not (data / "train.jsonl").exists():
            from engine.train.tiny_data import write_tiny_dataset

            with acc.main_process_first():
                if acc.is_main_process:
                    write_tiny_dataset(data, samples=c.tiny_samples, seed=0)
        self.data_dir = data
        multiple = self.pipe.token_px * c.pose_scale
        records, problems = validate_dataset(data, resolution=c.resolution, multiple=multiple,
                                             skip_invalid=c.skip_invalid)
        if problems:
            logger.warning(f"Skipping {len(problems)} invalid samples:\n" + "\n".join(map(str, problems)))
        return records

    def _build_trainable(self) -> None:
        c = self.config
        transformer = self.pipe.transformer
        if c.init_lora:
            from engine.uno_convert import read_uno_lora

            state, rank = read_uno_lora(c.init_lora)
            apply_lora_state(transformer, LoraSettings(rank=rank, alpha=c.lora_alpha), state)  # UNO's targets
        else:
            add_lora(transformer, rank=c.lora_rank, alpha=c.lora_alpha, target_modules=c.lora_targets)
        for name, param in transformer.named_parameters():
            param.requires_grad_("lora_" in name)
        dsm = None
        if c.dsm:
            dit = transformer.config
            dsm = DisentangledSemanticModulation(DSMConfig(
                text_dim=dit.joint_attention_dim, vision_dim=self.pipe.image_encoder.config.hidden_size,
                inner_dim=dit.num_attention_heads * dit.attention_head_dim,
                num_layers=dit.num_layers + dit.num_single_layers, dim=c.dsm_dim, heads=c.dsm_heads,
                layer_rank=c.dsm_layer_rank, vision_layers=c.dsm_vision_layers,
                timestep_offsets=c.dsm_timestep_offsets)).to(self.device)
        if c.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        mosaic = ()
        if c.mosaic_weight > 0:
            mosaic = c.mosaic_blocks if c.mosaic_blocks is not None else tuple(
                range(max(1, transformer.config.num_layers // 4)))
        self.module = AstraTrainModule(transformer, dsm, mosaic)
        if self.weight_dtype != torch.float32:  # trainable weights in fp32 under mixed precision (diffusers idiom)
            cast_training_params(self.module, dtype=torch.float32)
        self.module.train()
        self.pipe.register_modules(dsm=dsm)  # validation images use the DSM being trained

    def _build_optimisation(self) -> None:
        c, acc = self.config, self.accelerator
        params = [p for p in self.module.parameters() if p.requires_grad]
        optimizer_cls = torch.optim.AdamW
        if c.optimizer == "adamw8bit" or (c.optimizer == "auto" and torch.cuda.is_available()):
            try:
                import bitsandbytes as bnb

                optimizer_cls = bnb.optim.AdamW8bit
            except ImportError:
                if c.optimizer == "adamw8bit":
                    raise EngineError("optimizer adamw8bit needs bitsandbytes: pip install bitsandbytes.") from None
        optimizer = optimizer_cls(params, lr=c.learning_rate, betas=c.adam_betas, eps=c.adam_eps,
                                  weight_decay=c.weight_decay)
        # As UNO and diffusers' scripts: the scheduler steps once per process per optimiser step.
        scheduler = get_scheduler(c.lr_scheduler, optimizer=optimizer,
                                  num_warmup_steps=c.lr_warmup_steps * acc.num_processes,
                                  num_training_steps=c.steps * acc.num_processes)
        if acc.distributed_type == DistributedType.DEEPSPEED:  # no dataloader goes through prepare
            acc.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = c.batch_size
        self.model, self.optimizer, self.scheduler = acc.prepare(self.module, optimizer, scheduler)
        self.trainable_names = {n for n, p in acc.unwrap_model(self.model).named_parameters() if p.requires_grad}

    # ------------------------------------------------------------------------------- data

    def sampler(self, start_step: int) -> BucketBatchSampler:
        c, acc = self.config, self.accelerator
        return BucketBatchSampler(self.records, c.batch_size, seed=c.seed, rank=acc.process_index,
                                  world=acc.num_processes, start=start_step * c.gradient_accumulation_steps)

    def dataset(self) -> TrainDataset:
        c = self.config
        return TrainDataset(self.records, pose_scale=c.pose_scale, reference_long_side=c.reference_long_side,
                            reference_long_side_multi=c.reference_long_side_multi, token_px=self.pipe.token_px)

    def _generator(self, micro_step: int, salt: int = 0) -> torch.Generator:
        seed = np.random.SeedSequence([self.config.seed, self.accelerator.process_index, micro_step, salt])
        return torch.Generator("cpu").manual_seed(int(seed.generate_state(1, np.uint64)[0] % (2**63)))

    @torch.no_grad()
    def _sample_parts(self, sample: TrainSample) -> dict[str, torch.Tensor]:
        """Every frozen encoding of one sample (what ``--cache`` stores): text, target, references,
        CLIP features and pose tokens, each (1, ...) on the CPU."""
        pipe, c = self.pipe, self.config
        parts = {}
        embeds, pooled, _ = pipe.encode_prompt(prompt=sample.prompt, prompt_2=None, device=self.device,
                                               max_sequence_length=c.max_sequence_length)
        parts["prompt_embeds"], parts["pooled"] = embeds, pooled
        parts["target"], hw = encode_tokens(pipe.vae, sample.target, device=self.device)
        parts["target_hw"] = torch.tensor(hw)
        for k, image in enumerate(sample.reference_images):
            parts[f"ref{k}"], hw = encode_tokens(pipe.vae, image, device=self.device)
            parts[f"ref{k}_hw"] = torch.tensor(hw)
            if self.module.dsm is not None:
                parts[f"vision{k}"] = vision_states(pipe.image_encoder, pipe.feature_extractor, [sample.references[k]],
                                                    c.dsm_vision_layers, device=self.device)[0, 0]
        if sample.pose_map is not None:
            parts["pose"], hw = encode_tokens(pipe.vae, sample.pose_map, device=self.device)
            parts["pose_hw"] = torch.tensor(hw)
        return {k: v.detach().to("cpu").contiguous() for k, v in parts.items()}

    def _empty_prompt(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Text embeddings of "" (text dropout, as UNO), computed once."""
        if self._empty_text is None:
            path = self.cache_dir / "empty_prompt.safetensors" if self.cache_dir else None
            if path is not None and path.exists():
                state = load_file(str(path))
                self._empty_text = (state["prompt_embeds"], state["pooled"])
            else:
                with torch.no_grad():
                    embeds, pooled, _ = self.pipe.encode_prompt(prompt="", prompt_2=None, device=self.device,
                                                                max_sequence_length=self.config.max_sequence_length)
                self._empty_text = (embeds.cpu(), pooled.cpu())
        return self._empty_text

    def _parts(self, index: int, sample: TrainSample | None) -> dict[str, torch.Tensor]:
        if self.cache_dir is not None:
            return load_file(str(self.cache_dir / f"{self.records[index].line}.safetensors"))
        return self._sample_parts(sample)

    def encode_batch(self, indices: list[int], generator: torch.Generator | None, *, dropout: bool = True) -> Batch:
        """Encode a batch (one signature) with this step's dropout decisions.

        Reference and pose dropout are decided once per batch so its samples keep one layout.
        """
        c = self.config
        dataset = None if self.cache_dir is not None else self.dataset()
        parts = [self._parts(i, dataset[i] if dataset is not None else None) for i in indices]

        def chance(p: float) -> bool:
            return dropout and p > 0 and torch.rand((), generator=generator).item() < p

        refs = sum(1 for key in parts[0] if key.startswith("ref") and not key.endswith("_hw"))
        kept = [k for k in range(refs) if not chance(c.reference_dropout)]
        with_pose = "pose" in parts[0] and not chance(c.pose_dropout)
        embeds, pooled = [], []
        for p in parts:
            if chance(c.text_dropout):
                e, q = self._empty_prompt()
            else:
                e, q = p["prompt_embeds"], p["pooled"]
            embeds.append(e)
            pooled.append(q)
        target_hw = tuple(int(x) for x in parts[0]["target_hw"])
        tokens = [[p[f"ref{k}"] for k in kept] + ([p["pose"]] if with_pose else []) for p in parts]
        layout = StreamLayout(target_hw, tuple(tuple(int(x) for x in parts[0][f"ref{k}_hw"]) for k in kept),
                              tuple(int(x) for x in parts[0]["pose_hw"]) if with_pose else None, c.pose_scale)
        vision = None
        if self.module.dsm is not None and kept:
            vision = torch.stack([torch.stack([p[f"vision{k}"] for k in kept]) for p in parts])
        to = dict(device=self.device)
        return Batch(
            latents=torch.cat([p["target"] for p in parts]).to(**to),
            conditions=torch.cat([torch.cat(t, dim=1) for t in tokens]).to(**to) if tokens[0] else None,
            prompt_embeds=torch.cat(embeds).to(**to), pooled=torch.cat(pooled).to(**to),
            vision=vision.to(**to) if vision is not None else None, layout=layout)

    def sample_sigmas(self, num_latent: int, batch: int, generator: torch.Generator) -> torch.Tensor:
        """u ~ U(0, 1) through FLUX's resolution-dependent shift (exp(mu) / (exp(mu) + 1/u - 1))."""
        config = self.pipe.scheduler.config
        mu = calculate_shift(num_latent, config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096),
                             config.get("base_shift", 0.5), config.get("max_shift", 1.15))
        u = torch.rand(batch, generator=generator).clamp(1e-5, 1.0)
        return math.exp(mu) / (math.exp(mu) + (1 / u - 1))

    def loss(self, batch: Batch, sigmas: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Flow-matching MSE on (noise - x0) (UNO), and MOSAIC's L_MD when enabled."""
        sigmas = sigmas.to(self.device)
        x0 = batch.latents
        noisy = (1 - sigmas[:, None, None]) * x0 + sigmas[:, None, None] * noise.to(self.device)
        guidance = (torch.full((x0.shape[0],), self.config.guidance, device=self.device)
                    if self.pipe.transformer.config.guidance_embeds else None)
        img_ids = batch.layout.position_ids().to(self.device)
        txt_ids = torch.zeros(batch.prompt_embeds.shape[1], 3, device=self.device)
        prediction, mdl = self.model(noisy=noisy, conditions=batch.conditions, prompt_embeds=batch.prompt_embeds,
                                     pooled=batch.pooled, sigmas=sigmas, img_ids=img_ids, txt_ids=txt_ids,
                                     guidance=guidance, vision=batch.vision, layout=batch.layout)
        return F.mse_loss(prediction.float(), (noise.to(self.device) - x0).float()), mdl

    # ------------------------------------------------------------------------------- training

    def train(self) -> dict:
        """Run until ``config.steps``; returns {"losses": [...], "eval_loss_start", "eval_loss_end"}."""
        c, acc = self.config, self.accelerator
        acc.init_trackers("astra", config={k: str(v) for k, v in c.to_dict().items()})
        eval_start = self.evaluate_loss()
        batches = iter(self.sampler(self.progress.step))
        micro = self.progress.step * c.gradient_accumulation_steps
        bar = tqdm(total=c.steps, initial=self.progress.step, desc="train", disable=not acc.is_local_main_process)
        losses, running, started = [], 0.0, time.perf_counter()
        while self.progress.step < c.steps:
            generator = self._generator(micro)
            batch = self.encode_batch(next(batches), generator)
            sigmas = self.sample_sigmas(batch.layout.num_latent, batch.latents.shape[0], generator)
            noise = torch.randn(batch.latents.shape, generator=generator).to(batch.latents.dtype)
            with acc.accumulate(self.model):
                loss, mdl = self.loss(batch, sigmas, noise)
                total = loss + c.mosaic_weight * mdl if mdl is not None else loss
                acc.backward(total)
                if acc.sync_gradients and c.max_grad_norm > 0:
                    acc.clip_grad_norm_(self.model.parameters(), c.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            micro += 1
            running += acc.gather(loss.detach()[None]).mean().item() / c.gradient_accumulation_steps
            if acc.sync_gradients:
                self.progress.step += 1
                logs = {"loss": running, "lr": self.scheduler.get_last_lr()[0]}
                if mdl is not None:
                    logs["mosaic_md"] = mdl.detach().item()
                acc.log(logs, step=self.progress.step)
                losses.append(running)
                running = 0.0
                bar.update(1)
                bar.set_postfix(loss=f"{logs['loss']:.4f}")
                self._periodic()
        bar.close()
        eval_end = self.evaluate_loss()
        acc.log({"eval_loss": eval_end}, step=self.progress.step)
        self.save_adapter(self.out)
        acc.wait_for_everyone()
        acc.end_training()
        logger.info(f"trained {c.steps} steps in {time.perf_counter() - started:.1f}s; "
                    f"eval loss {eval_start:.4f} -> {eval_end:.4f}")
        return {"losses": losses, "eval_loss_start": eval_start, "eval_loss_end": eval_end}

    @torch.no_grad()
    def evaluate_loss(self, sigmas: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)) -> float:
        """Mean flow-matching loss over every sample at fixed sigmas and fixed noise, no dropout:
        comparable across steps and runs, unlike the noisy per-step training loss."""
        self.model.eval()
        total, count = 0.0, 0
        for i in range(len(self.records)):
            batch = self.encode_batch([i], None, dropout=False)
            for j, sigma in enumerate(sigmas):
                generator = torch.Generator("cpu").manual_seed(10_000 + 100 * i + j)
                noise = torch.randn(batch.latents.shape, generator=generator).to(batch.latents.dtype)
                loss, _ = self.loss(batch, torch.tensor([sigma]), noise)
                total, count = total + loss.item(), count + 1
        self.model.train()
        return total / count

    def _periodic(self) -> None:
        c, step = self.config, self.progress.step
        if c.checkpointing_steps and step % c.checkpointing_steps == 0 and step < c.steps:
            self.save_checkpoint()
        if c.validation_steps and step % c.validation_steps == 0:
            self.validate()

    # ------------------------------------------------------------------------------- saving

    def _only_trainable_weights(self, models: list, weights: list, output_dir: str) -> None:
        """accelerate save hook: the checkpoint holds the LoRA and DSM, not the frozen 12B base."""
        for i, state in enumerate(weights):
            weights[i] = {k: v for k, v in state.items() if _strip_wrapper(k) in self.trainable_names}

    def save_checkpoint(self) -> Path:
        """accelerate state (trainable weights, optimiser, scheduler, RNG, step) + the adapter."""
        acc = self.accelerator
        folder = self.out / CHECKPOINTS / f"step-{self.progress.step:07d}"
        kwargs = {"exclude_frozen_parameters": True} if acc.distributed_type == DistributedType.DEEPSPEED else {}
        acc.save_state(str(folder), **kwargs)
        self.save_adapter(folder / "adapter")
        if acc.is_main_process and self.config.checkpoints_total_limit:
            old = sorted((self.out / CHECKPOINTS).glob("step-*"))[:-self.config.checkpoints_total_limit]
            for path in old:
                shutil.rmtree(path, ignore_errors=True)
        acc.wait_for_everyone()
        return folder

    def _resume(self, resume: str) -> None:
        path = Path(resume)
        if resume == "latest":
            found = sorted((self.out / CHECKPOINTS).glob("step-*"))
            if not found:
                raise EngineError(f"--resume latest: no checkpoint under {self.out / CHECKPOINTS}.")
            path = found[-1]
        if not path.is_dir():
            raise EngineError(f"Checkpoint {path} does not exist.")
        acc = self.accelerator
        kwargs = ({"load_module_strict": False} if acc.distributed_type == DistributedType.DEEPSPEED
                  else {"strict": False})
        acc.load_state(str(path), **kwargs)
        logger.info(f"resumed from {path} at step {self.progress.step}")

    def adapter_config(self) -> AstraConfig:
        c = self.config
        return AstraConfig(settings=self.pipe.settings, base="tiny" if c.tiny else c.base,
                           resolutions=[c.resolution], source=f"engine.train, {self.progress.step} steps")

    def save_adapter(self, folder: Path) -> None:
        """Write the adapter format (``engine.checkpoint``) into ``folder``, keeping anything else
        there (``out`` also holds checkpoints and logs): written to a fresh folder, then the three
        files are moved in one by one."""
        acc = self.accelerator
        module = acc.unwrap_model(self.model)
        sharded = acc.distributed_type == DistributedType.FSDP or (
            acc.distributed_type == DistributedType.DEEPSPEED
            and acc.state.deepspeed_plugin.deepspeed_config["zero_optimization"]["stage"] == 3)
        full = acc.get_state_dict(self.model) if sharded else None  # every rank takes part in gathering
        if not acc.is_main_process:
            return
        staging = folder.parent / f".{folder.name}.adapter-{self.progress.step}"
        shutil.rmtree(staging, ignore_errors=True)
        if full is None:
            save_adapter(staging, self.adapter_config(), module.transformer, module.dsm)
        else:
            transformer_state = {k[len("transformer."):]: v for k, v in full.items() if k.startswith("transformer.")}
            lora = get_peft_model_state_dict(module.transformer, state_dict=transformer_state, adapter_name=ADAPTER_NAME)
            dsm = {k[len("dsm."):]: v.cpu().contiguous() for k, v in full.items() if k.startswith("dsm.")}
            config = self.adapter_config()
            config.lora, config.dsm = lora_settings(module.transformer), module.dsm.config if module.dsm else None
            write_adapter(staging, config, {k: v.cpu().contiguous() for k, v in lora.items()}, dsm or None)
        folder.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.iterdir(), key=lambda p: p.name == CONFIG_NAME):  # config last
            item.replace(folder / item.name)
        shutil.rmtree(staging, ignore_errors=True)

    @torch.no_grad()
    def validate(self) -> list[Path]:
        """Images for the first ``validation_samples`` samples, saved under ``validation/step-N/``."""
        acc, c = self.accelerator, self.config
        if acc.distributed_type == DistributedType.FSDP or (
                acc.distributed_type == DistributedType.DEEPSPEED
                and acc.state.deepspeed_plugin.deepspeed_config["zero_optimization"]["stage"] == 3):
            logger.warning("Validation images are skipped under sharded parameters (FSDP / ZeRO-3).")
            return []
        paths = []
        if acc.is_main_process:
            folder = self.out / "validation" / f"step-{self.progress.step:07d}"
            folder.mkdir(parents=True, exist_ok=True)
            dataset = self.dataset()
            self.module.eval()
            for i in range(min(c.validation_samples, len(self.records))):
                record, sample = self.records[i], dataset[i]
                pose = record.pose.read_text() if record.pose is not None else None
                up = math.ceil(MIN_SIDE / min(record.bucket))  # tiny buckets are below the pipeline's minimum
                w, h = record.bucket[0] * up, record.bucket[1] * up
                image = self.pipe(sample.prompt, subjects=sample.references, subject_names=sample.names, pose=pose,
                                  height=h, width=w, num_inference_steps=c.validation_inference_steps,
                                  guidance_scale=c.validation_guidance, seed=0).images[0]
                paths.append(folder / f"line-{record.line}.png")
                image.save(paths[-1])
            self.module.train()
        acc.wait_for_everyone()
        return paths

    # ------------------------------------------------------------------------------- cache

    def _build_cache(self) -> Path:
        """Precompute every sample's frozen encodings once (``--cache``), on the main process."""
        acc = self.accelerator
        folder = self.data_dir / ".cache" / f"{'tiny' if self.config.tiny else _slug(self.config.base)}-" \
                                            f"{self.config.resolution}-{self.config.pose_scale}"
        self.cache_dir = None
        if acc.is_main_process:
            folder.mkdir(parents=True, exist_ok=True)
            dataset = self.dataset()
            for i, record in enumerate(tqdm(self.records, desc="cache", disable=not acc.is_local_main_process)):
                path = folder / f"{record.line}.safetensors"
                if not path.exists():
                    save_file(self._sample_parts(dataset[i]), str(path))
            embeds, pooled = self._empty_prompt()
            save_file({"prompt_embeds": embeds.contiguous(), "pooled": pooled.contiguous()},
                      str(folder / "empty_prompt.safetensors"))
        acc.wait_for_everyone()
        return folder


def _strip_wrapper(name: str) -> str:
    """Parameter name without DDP's ``module.`` prefix."""
    return name[len("module."):] if name.startswith("module.") else name


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)[-60:]
