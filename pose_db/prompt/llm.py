"""The paper's normaliser: Qwen2.5-1.5B-Instruct distils a prompt into its canonical query.

ASTRA (sec. 3.1.1) asks a lightweight LLM to keep subject-action nuance, demographic
attributes, dynamic features and compositional directives and to drop the rest. An LLM can
answer anything, so its answer is checked before it is used: empty, overlong or unrelated
output (words the prompt never said) falls back to the `RuleNormalizer`.

transformers and torch are imported only when the model is first used, so `pose_db` stays
importable without them; the model is loaded once per normaliser.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .rules import Normalizer, RuleNormalizer, tokenize

DEFAULT_LLM = "Qwen/Qwen2.5-1.5B-Instruct"
PROMPT_PATH = Path(__file__).with_name("normalize_llm.yaml")

_log = logging.getLogger(__name__)
_ANSWER_PREFIX = re.compile(r"^\s*(?:canonical(?: query)?|pose|answer|output)\s*:\s*", re.IGNORECASE)


@dataclass
class LLMNormalizer:
    """Qwen2.5-Instruct (or any chat causal LM) as the RAG-Pose normaliser, with a rules fallback.

    Args:
        model: hub id (default `Qwen/Qwen2.5-1.5B-Instruct`) or a local folder holding the model
            and its tokenizer (with a chat template).
        device: "cuda", "cpu", ...; default cuda when available.
        dtype: torch dtype name; default bfloat16 on cuda, float32 on cpu.
        max_new_tokens: hard cap on the generated answer, in tokens.
        max_words: answers longer than this (or than the prompt) are rejected.
        min_overlap: fraction of the answer's content words the prompt must contain; below it
            the answer is "unrelated" (the LLM invented a pose) and rejected.
        fallback: what answers when the LLM's answer is rejected or the model cannot load.
        local_files_only: never reach the hub (offline machines, tests).
    """

    model: str = DEFAULT_LLM
    device: str | None = None
    dtype: str | None = None
    max_new_tokens: int = 40
    max_words: int = 24
    min_overlap: float = 0.6
    fallback: Normalizer = field(default_factory=RuleNormalizer)
    local_files_only: bool = False
    _loaded: tuple[Any, Any] | None = field(default=None, init=False, repr=False)
    _failed: str | None = field(default=None, init=False, repr=False)

    def normalize(self, prompt: str) -> str:
        """The LLM's canonical query when it passes validation, else the fallback's."""
        answer = self.generate(prompt)
        if answer is not None and self.accepts(prompt, answer):
            return answer
        return self.fallback.normalize(prompt)

    def generate(self, prompt: str) -> str | None:
        """The LLM's raw answer (first line, cleaned), or None when the model is unavailable."""
        new_tokens = self._answer_ids(prompt)
        if new_tokens is None:
            return None
        _, tokenizer = self._loaded
        return _clean_answer(tokenizer.decode(new_tokens, skip_special_tokens=True))

    def _answer_ids(self, prompt: str):
        """Token ids the LLM answers with: greedy, at most `max_new_tokens`."""
        loaded = self._load()
        if loaded is None:
            return None
        import torch

        model, tokenizer = loaded
        inputs = tokenizer.apply_chat_template(
            self.messages(prompt), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                do_sample=False,  # deterministic: the same prompt always retrieves the same poses
                max_new_tokens=self.max_new_tokens,
                pad_token_id=pad,
            )
        return out[0, inputs["input_ids"].shape[1] :]

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The chat: the paper's instruction, a few worked examples, then the user's prompt."""
        spec = _instruction()
        chat = [{"role": "system", "content": spec["instruction"].strip()}]
        for example in spec["examples"]:
            chat += [
                {"role": "user", "content": example["prompt"]},
                {"role": "assistant", "content": example["canonical"]},
            ]
        return [*chat, {"role": "user", "content": str(prompt).strip()}]

    def accepts(self, prompt: str, answer: str) -> bool:
        """Is `answer` a usable canonical query of `prompt`: non-empty, short, made of its words?"""
        words = tokenize(answer)
        if not words or len(words) > min(self.max_words, max(len(tokenize(prompt)), 1)):
            return False
        prompt_stems = {_stem(w) for w in tokenize(prompt)}
        content = [w for w in words if len(w) > 2]
        if not content:
            return False
        overlap = sum(_stem(w) in prompt_stems for w in content) / len(content)
        return overlap >= self.min_overlap

    def _load(self) -> tuple[Any, Any] | None:
        """Model and tokenizer, loaded on first use; None (logged once) when they cannot load."""
        if self._loaded is not None or self._failed is not None:
            return self._loaded
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = getattr(torch, self.dtype) if self.dtype else (torch.bfloat16 if device.startswith("cuda") else torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(self.model, local_files_only=self.local_files_only)
            model = AutoModelForCausalLM.from_pretrained(
                self.model, dtype=dtype, local_files_only=self.local_files_only
            ).to(device)
            model.eval()
        except (OSError, ValueError, ImportError, RuntimeError) as error:
            self._failed = f"{type(error).__name__}: {error}"
            _log.warning("LLM normaliser %s unavailable, using the rules instead (%s)", self.model, self._failed)
            return None
        self._loaded = (model, tokenizer)
        return self._loaded

    @property
    def available(self) -> bool:
        """True once the model has loaded (loads it if needed)."""
        return self._load() is not None


@lru_cache(maxsize=1)
def _instruction() -> dict:
    """The instruction and worked examples, read once: package data that never changes."""
    return yaml.safe_load(PROMPT_PATH.read_text(encoding="utf-8"))


def _clean_answer(text: str) -> str:
    """First line, without a "Canonical:" label, quotes or a closing full stop."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = _ANSWER_PREFIX.sub("", line).strip().strip("\"'`").strip()
    return line.rstrip(".").strip().lower()


def _stem(word: str) -> str:
    """A crude stem so that "cheers"/"cheering" and "hands"/"hand" count as the same word."""
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)][:6]
    return word[:6]
