"""Hugging Face Hub helpers: what counts as a hub id, and hub failures as sentences.

diffusers and transformers re-raise huggingface_hub's errors as plain ``OSError``s (the hub
error is kept as the cause), so :func:`hub_error` reads the whole exception chain, and the
message text only where no hub error class is found. huggingface_hub is imported lazily: the
id check runs before anything heavy loads.
"""

from __future__ import annotations

import os
import re

from engine.errors import EngineError

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
# httpx's and requests' connection errors, by name: neither derives from the built-in ones.
_NETWORK_ERRORS = ("ConnectError", "ConnectTimeout", "ConnectionError", "ReadTimeout", "Timeout")
_DOWNLOAD_HINT = "download it where there is network (`hf download {source} --local-dir DIR`) and pass the folder"


def is_hub_id(value: str) -> bool:
    """``owner/name`` as the Hub spells repo ids (``./x`` and ``~/x`` are paths, not ids)."""
    return bool(_HUB_ID.fullmatch(value)) and not value.startswith((".", "~"))


def resolve_token(token: str | None = None) -> str | None:
    """The token to use: the one given, else the ``HF_TOKEN`` environment variable, else None."""
    return token or os.environ.get("HF_TOKEN") or None


def hub_error(error: BaseException, what: str, source: str, *, revision: str | None = None,
              token: str | None = None) -> EngineError:
    """One :class:`EngineError` for a failed hub or folder load, saying why and what to do.

    Args:
        error: what the load raised.
        what: the thing that was being loaded ("base model", "adapter"...).
        source: the hub id or folder it came from.
        revision: the hub revision asked for, if any.
        token: the token that was used (None: ``HF_TOKEN``), to tell "no token" from "no access".
    """
    reason = _reason(error, source, revision, resolve_token(token) is not None)
    detail = f"{type(error).__name__}: {str(error).strip()}".splitlines()[0][:300]
    return EngineError(f"Could not load the {what} from {source!r}: {reason}. ({detail})")


def _reason(error: BaseException, source: str, revision: str | None, has_token: bool) -> str:
    from huggingface_hub import errors as hub

    gated = ("it is gated: accept its licence on huggingface.co with the account your token belongs to"
             if has_token else
             "it is gated: accept its licence on huggingface.co, then set HF_TOKEN (or `hf auth login`)")
    offline = ("it is not in the local cache and could not be downloaded (offline, or local files only); "
               + _DOWNLOAD_HINT.format(source=source))
    no_token = ("the Hub refused your HF_TOKEN; set a valid token" if has_token else
                "it needs a Hugging Face token; set HF_TOKEN (or `hf auth login`)")
    for cause in _chain(error):
        if isinstance(cause, hub.GatedRepoError):  # before RepositoryNotFoundError, its base class
            return gated
        if isinstance(cause, hub.RevisionNotFoundError):
            return f"it has no revision {revision or 'main'!r}; check the branch, tag or commit"
        if isinstance(cause, hub.RepositoryNotFoundError):
            return ("the Hub has no such repo, or your token cannot read it; check the id" if has_token else
                    "the Hub has no such repo; check the id, or set HF_TOKEN if it is private")
        if isinstance(cause, hub.LocalTokenNotFoundError) or (
                isinstance(cause, hub.HfHubHTTPError) and _status(cause) == 401):
            return no_token
        if isinstance(cause, hub.HfHubHTTPError) and _status(cause) == 403:
            return ("the Hub refused access: if it is gated, accept its licence on huggingface.co, and check "
                    "that your token may read gated repos")
        if isinstance(cause, (hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled, ConnectionError, TimeoutError)) \
                or type(cause).__name__ in _NETWORK_ERRORS:
            return offline
    text = " ".join(str(cause) for cause in _chain(error)).lower()
    if "gated" in text or re.search(r"\b40[13]\b", text):
        return gated
    if "offline" in text or "connect" in text or "local_files_only" in text:
        return offline
    return "check the hub id or folder path"


def _chain(error: BaseException):
    """``error`` and its causes (``raise ... from``) and contexts, each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)
