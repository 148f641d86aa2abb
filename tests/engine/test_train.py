"""The ASTRA trainer on the tiny engine: it learns, trains only LoRA + DSM, saves a loadable
adapter, resumes exactly; DSM's multi-layer / timestep options and the MOSAIC term."""

import json
import shutil

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState

from engine import AstraPipeline
from engine.checkpoint import AstraConfig
from engine.dsm import DisentangledSemanticModulation, DSMConfig, num_parameters
from engine.lora import has_lora
from engine.train.config import TrainConfig
from engine.train.mosaic import disentanglement_loss
from engine.train.tiny_data import write_tiny_dataset
from engine.train.trainer import Trainer

STEPS = 40


def _trainer(tmp, name, data, resume=None, **overrides):
    AcceleratorState._reset_state(reset_partial_state=True)  # one Accelerator per trainer in this process
    return Trainer(TrainConfig.tiny_defaults(out=str(tmp / name), data=str(data), **overrides), resume=resume)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_data"), samples=4)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("train")
    trainer = _trainer(tmp, "run", data, steps=STEPS)
    trainer.save_adapter(tmp / "untrained")  # the same adapter before any step
    result = trainer.train()
    return trainer, result, tmp


def test_tiny_training_halves_the_loss(trained):
    _, result, _ = trained
    assert len(result["losses"]) == STEPS
    assert result["eval_loss_end"] <= 0.5 * result["eval_loss_start"], result


def test_only_lora_and_dsm_are_trainable_and_the_base_is_untouched(trained):
    trainer, _, _ = trained
    module = trainer.accelerator.unwrap_model(trainer.model)
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("dsm.") for n in trainable)
    assert any(n.startswith("dsm.") for n in trainable) and any("lora_B" in n for n in trainable)
    for name in ("vae", "text_encoder", "text_encoder_2", "image_encoder"):
        assert not any(p.requires_grad for p in getattr(trainer.pipe, name).parameters())
    # frozen weights equal a freshly built tiny base, bit for bit
    fresh = AstraPipeline.tiny(seed=0).transformer.state_dict()
    base = {k.replace(".base_layer", ""): v for k, v in module.transformer.state_dict().items() if "lora_" not in k}
    assert base.keys() == fresh.keys()
    assert all(torch.equal(base[k], fresh[k]) for k in fresh)


def test_gradients_reach_only_lora_and_dsm(trained, data):
    trainer, _, _ = trained
    batch = trainer.encode_batch([0], torch.Generator().manual_seed(0), dropout=False)
    noise = torch.randn(batch.latents.shape, generator=torch.Generator().manual_seed(1))
    loss, _ = trainer.loss(batch, torch.tensor([0.6]), noise)
    loss.backward()
    everything = [trainer.accelerator.unwrap_model(trainer.model)] + [
        getattr(trainer.pipe, n) for n in ("vae", "text_encoder", "text_encoder_2", "image_encoder")]
    with_grad = {n for m in everything for n, p in m.named_parameters() if p.grad is not None}
    assert with_grad and all("lora_" in n or n.startswith("dsm.") for n in with_grad)
    trainer.optimizer.zero_grad(set_to_none=True)


def test_saved_adapter_loads_into_the_tiny_pipeline_and_changes_its_output(trained):
    _, _, tmp = trained
    config = json.loads((tmp / "run" / "astra_config.json").read_text())
    assert config["dsm"]["vision_layers"] == [-2, -1] and config["lora"]["rank"] == 16
    args = dict(prompt="circle0 and square1 shaking hands", height=64, width=64, num_inference_steps=3,
                seed=7, output_type="latent",
                subjects=[_shape((220, 40, 40)), _shape((40, 90, 220))], subject_names=["circle0", "square1"])
    trained_pipe = AstraPipeline.tiny(seed=0, adapter=str(tmp / "run"))
    assert has_lora(trained_pipe.transformer) and trained_pipe.dsm.config.vision_layers == (-2, -1)
    after = trained_pipe(**args).images[0].numpy()
    before = AstraPipeline.tiny(seed=0, adapter=str(tmp / "untrained"))(**args).images[0].numpy()
    assert np.abs(after - before).max() > 1e-3


def _shape(colour):
    from PIL import Image

    return Image.new("RGB", (48, 48), colour)


def test_resume_continues_the_straight_run(tmp_path, data):
    straight = _trainer(tmp_path, "straight", data, steps=20, checkpointing_steps=10)
    losses = straight.train()["losses"]
    checkpoint = tmp_path / "straight" / "checkpoints" / "step-0000010"
    assert (checkpoint / "adapter" / "astra_config.json").is_file()
    shutil.copytree(checkpoint, tmp_path / "ckpt")
    resumed = _trainer(tmp_path, "resumed", data, resume=str(tmp_path / "ckpt"), steps=20, checkpointing_steps=10)
    assert resumed.progress.step == 10
    rest = resumed.train()["losses"]
    assert len(rest) == 10
    np.testing.assert_allclose(rest, losses[10:], rtol=1e-3, atol=1e-4)


def test_old_single_layer_dsm_config_still_loads():
    old = {"text_dim": 32, "vision_dim": 32, "inner_dim": 32, "num_layers": 4, "dim": 32, "heads": 4,
           "layer_rank": 8, "max_subjects": 4, "vision_layer": -3}
    config = AstraConfig.from_dict({"format_version": 1, "lora": None, "dsm": old})
    assert config.dsm.vision_layers == (-3,) and "vision_layer" not in config.dsm.to_dict()
    # a single layer builds exactly the old module (no layer embedding), so old state dicts load
    assert DisentangledSemanticModulation(config.dsm).layer_embedding is None


def test_multi_layer_and_timestep_dsm_parameters_and_identity():
    small = dict(text_dim=32, vision_dim=32, inner_dim=32, num_layers=4, dim=32, heads=4, layer_rank=8)
    dsm = DisentangledSemanticModulation(DSMConfig(**small, vision_layers=(-2, -1), timestep_offsets=True))
    assert sum(p.numel() for p in dsm.parameters()) == num_parameters(dsm.config)
    text, vision = torch.randn(1, 5, 32), torch.randn(1, 2, 2 * 17, 32)
    with torch.no_grad():
        dsm.layer_up.normal_()
        offsets = dsm(text, vision)
        # zero-initialised timestep MLP: gain 1 at every timestep
        assert torch.allclose(dsm.layer_offsets_at(offsets, torch.tensor([0.1])), offsets.layer_offsets)
        dsm.time_mlp[-1].weight.normal_()
        early, late = dsm.layer_offsets_at(offsets, torch.tensor([0.9])), dsm.layer_offsets_at(offsets, torch.tensor([0.1]))
    assert not torch.allclose(early, late)
    with pytest.raises(ValueError):
        dsm(text, torch.randn(1, 2, 15, 32))  # 15 tokens cannot be 2 layers' worth


def test_mosaic_term_is_zero_for_equal_maps_and_negative_for_distinct_ones():
    slices = [slice(4, 6), slice(6, 8)]
    same = torch.full((1, 4, 5), 0.2)
    assert disentanglement_loss([same], slices).abs().item() < 1e-6
    apart = torch.zeros(1, 4, 5)
    apart[:, :2, 0] = 1.0
    apart[:, 2:, 4] = 1.0
    apart = (apart + 1e-3) / (apart + 1e-3).sum(-1, keepdim=True)
    assert disentanglement_loss([apart], slices).item() < -1.0


def test_training_with_mosaic_and_timestep_offsets(tmp_path, data):
    trainer = _trainer(tmp_path, "options", data, steps=4, mosaic_weight=0.6, dsm_timestep_offsets=True)
    assert trainer.module.mosaic_blocks == (0,)
    trainer.train()
    log = (tmp_path / "options" / "logs" / "train.csv").read_text()
    assert "mosaic_md" in log.splitlines()[0]
    mlp = trainer.module.dsm.time_mlp[-1].weight
    assert mlp.abs().sum() > 0  # it was zero at the start and received gradients


def test_cache_gives_the_same_training_as_live_encoding(tmp_path, data):
    live = _trainer(tmp_path, "live", data, steps=3, text_dropout=0.5, reference_dropout=0.3, pose_dropout=0.3)
    live_losses = live.train()["losses"]
    cached = _trainer(tmp_path, "cached", data, steps=3, text_dropout=0.5, reference_dropout=0.3, pose_dropout=0.3,
                      cache=True)
    assert cached.cache_dir is not None and len(list(cached.cache_dir.glob("*.safetensors"))) == 4 + 1
    np.testing.assert_allclose(cached.train()["losses"], live_losses, rtol=1e-4, atol=1e-5)
