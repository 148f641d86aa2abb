"""A lean runner for sentence-transformers folders of the BERT + mean-pooling kind (all-MiniLM-L6-v2).

Why: `import sentence_transformers` pulls in transformers, sklearn and scipy and takes 10-15 s
on a 2-core machine, longer than embedding a thousand prompts. Every CLI call, test process and
app start paid it. This module computes the same thing from the same folder with torch, the
`tokenizers` library and safetensors only: BERT's encoder (post-LayerNorm, exact GELU), mean
pooling over real tokens, truncation at the folder's ``max_seq_length``. Its vectors equal
sentence-transformers' to float rounding (tests/pose_db/test_embed.py checks it); folders of
another kind go through sentence-transformers (`supports`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def supports(folder: str | Path) -> bool:
    """Whether `folder` is a sentence-transformers BERT model with mean pooling we can run."""
    root = Path(folder)
    try:
        modules = json.loads((root / "modules.json").read_text())
        config = json.loads((root / "config.json").read_text())
        pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"))
    return (kinds in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
            and modules[0].get("path", "") == "" and config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu" and config.get("position_embedding_type", "absolute") == "absolute"
            and bool(mean_only) and (root / "model.safetensors").is_file() and (root / "tokenizer.json").is_file())


class MiniLM:
    """BERT encoder + mean pooling from a sentence-transformers folder (see the module docstring).

    Args:
        folder: the model folder (`supports(folder)` must be true).
        device: torch device.
    """

    def __init__(self, folder: str | Path, device: str = "cpu") -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        root = Path(folder)
        self.config = json.loads((root / "config.json").read_text())
        st_config = json.loads((root / "sentence_bert_config.json").read_text()) if (
            root / "sentence_bert_config.json").is_file() else {}
        self.max_length = int(st_config.get("max_seq_length") or self.config["max_position_embeddings"])
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)  # the file's own 128 is not what ST uses
        self.tokenizer.enable_padding(pad_id=int(self.config.get("pad_token_id", 0)))
        self.device = torch.device(device)
        self.weights = {k: v.to(self.device) for k, v in load_file(str(root / "model.safetensors")).items()}
        self.heads = int(self.config["num_attention_heads"])
        self.eps = float(self.config["layer_norm_eps"])
        self.dimension = int(self.config["hidden_size"])

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Mean-pooled (not normalised) float32 embeddings, in input order.

        Texts are embedded longest first, like sentence-transformers, so a batch pads little.
        """
        import torch

        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = order[start:start + batch_size]
                out[rows] = self._forward([texts[i] for i in rows]).cpu().numpy()
        return out

    def _forward(self, texts: list[str]):
        import torch
        import torch.nn.functional as F

        encoded = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded], device=self.device)
        mask = torch.tensor([e.attention_mask for e in encoded], device=self.device)
        types = torch.tensor([e.type_ids for e in encoded], device=self.device)
        w, length = self.weights, ids.shape[1]
        h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][types])
        h = self._norm(h, "embeddings.LayerNorm")
        keep = mask[:, None, None, :].bool()  # attend to real tokens only
        batch, heads = ids.shape[0], self.heads
        for layer in range(int(self.config["num_hidden_layers"])):
            p = f"encoder.layer.{layer}."

            def split(name: str, p=p):
                x = F.linear(h, w[p + f"attention.self.{name}.weight"], w[p + f"attention.self.{name}.bias"])  # noqa: B023
                return x.view(batch, length, heads, -1).transpose(1, 2)

            attended = F.scaled_dot_product_attention(split("query"), split("key"), split("value"), attn_mask=keep)
            attended = attended.transpose(1, 2).reshape(batch, length, -1)
            h = self._norm(F.linear(attended, w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"])
                           + h, p + "attention.output.LayerNorm")
            inner = F.gelu(F.linear(h, w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]))
            h = self._norm(F.linear(inner, w[p + "output.dense.weight"], w[p + "output.dense.bias"]) + h,
                           p + "output.LayerNorm")
        weights = mask.unsqueeze(-1).to(h.dtype)
        return (h * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    def _norm(self, x, name: str):
        import torch.nn.functional as F

        return F.layer_norm(x, (x.shape[-1],), self.weights[name + ".weight"], self.weights[name + ".bias"], self.eps)
