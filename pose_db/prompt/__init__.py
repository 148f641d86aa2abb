"""Prompt understanding for RAG-Pose (paper section 3.1.3): reduce a prompt to its pose core.

``rules`` is the offline normaliser (strip cast, clothing, place, style; keep who, how many,
what action, which view), ``llm`` the optional Qwen2.5 normaliser, ``people_count`` infers how
many people a prompt has; the vocabulary they share is data (``normalize_vocab.yaml``).
"""

from __future__ import annotations

from .rules import Normalizer, RuleNormalizer

# One prompt-length limit for the whole product (studio, API, retriever, engine). Long gallery
# prompts run to a few hundred characters; T5 reads up to 512 tokens (~2,000 characters) and
# CLIP only 77, so 1,000 characters keeps every real prompt and refuses pasted documents.
MAX_PROMPT_CHARS = 1000


def make_normalizer(model: str | None = None) -> Normalizer:
    """The configured normaliser: the LLM one for a hub id or folder, else the rules.

    Args:
        model: "rules" or None for `RuleNormalizer`; anything else names the LLM
            (e.g. "Qwen/Qwen2.5-1.5B-Instruct" or a local folder) for `LLMNormalizer`.
    """
    if model is None or model.strip().lower() in ("", "rules"):
        return RuleNormalizer()
    from .llm import LLMNormalizer  # the LLM path needs torch; import it only here

    return LLMNormalizer(model=model)


__all__ = ["MAX_PROMPT_CHARS", "Normalizer", "RuleNormalizer", "make_normalizer"]
