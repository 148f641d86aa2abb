"""Hub ids and huggingface_hub failures as sentences (real hub exception classes, no network)."""

import pytest
from huggingface_hub.errors import LocalEntryNotFoundError, LocalTokenNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import hf_raise_for_status

from engine.errors import EngineError
from engine.hub import hub_error, is_hub_id, resolve_token

try:  # the HTTP client huggingface_hub's errors are built on
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older huggingface_hub
    import httpx

REPO = "owner/name"


def _http_error(status, code=None, message=None):
    """The exception huggingface_hub raises for this Hub answer (it picks the class from the answer)."""
    url = f"https://huggingface.co/api/models/{REPO}/revision/main"
    headers = {**({"X-Error-Code": code} if code else {}), **({"X-Error-Message": message} if message else {})}
    response = httpx.Response(status, headers=headers, request=httpx.Request("GET", url))
    try:
        hf_raise_for_status(response)
    except Exception as error:
        return error
    raise AssertionError("no error raised")


def _wrapped(error):
    """As diffusers and transformers re-raise hub errors: a plain OSError with the hub error as cause."""
    try:
        try:
            raise error
        except Exception as cause:
            raise OSError(f"{REPO} is not a local folder and is not a valid model identifier") from cause
    except OSError as outer:
        return outer


@pytest.fixture(autouse=True)
def no_token(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)


def test_hub_ids_and_paths():
    assert is_hub_id("black-forest-labs/FLUX.1-dev") and is_hub_id("you/astra_adapter-v2")
    for path in ("./adapter", "../x", "~/x", "a/b/c", "adapter", "/abs/path", ""):
        assert not is_hub_id(path), path


def test_token_comes_from_the_argument_then_the_environment(monkeypatch):
    assert resolve_token() is None and resolve_token("") is None
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert resolve_token() == "hf_env" and resolve_token("hf_arg") == "hf_arg"


def test_gated_repo_says_accept_the_licence_and_set_a_token():
    error = hub_error(_http_error(401, "GatedRepo"), "base model", REPO)
    assert isinstance(error, EngineError)
    assert str(error).startswith(f"Could not load the base model from {REPO!r}: it is gated: accept its licence")
    assert "set HF_TOKEN" in str(error) and "(GatedRepoError: 401 Client Error." in str(error)
    with_token = str(hub_error(_http_error(403, "GatedRepo"), "base model", REPO, token="hf_x"))
    assert "gated" in with_token and "account your token belongs to" in with_token
    # Wrapped in an OSError, as FluxPipeline.from_pretrained raises it: still recognised by its cause.
    assert "it is gated" in str(hub_error(_wrapped(_http_error(401, "GatedRepo")), "base model", REPO))


def test_missing_repo_and_revision():
    missing = str(hub_error(_http_error(404, "RepoNotFound"), "adapter", REPO))
    assert "no such repo; check the id, or set HF_TOKEN if it is private" in missing
    assert "your token cannot read it" in str(hub_error(_http_error(404, "RepoNotFound"), "adapter", REPO,
                                                         token="hf_x"))
    revision = str(hub_error(_wrapped(_http_error(404, "RevisionNotFound")), "adapter", REPO, revision="v2"))
    assert "it has no revision 'v2'" in revision


def test_offline_says_download_it_and_pass_the_folder():
    for raised in (LocalEntryNotFoundError("Cannot find the requested files in the disk cache"),
                   OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode is enabled."),
                   _wrapped(LocalEntryNotFoundError("not cached")), ConnectionError("Connection refused")):
        text = str(hub_error(raised, "CLIP vision encoder", REPO))
        assert "not in the local cache and could not be downloaded" in text, text
        assert f"`hf download {REPO} --local-dir DIR`" in text


def test_no_token():
    assert "needs a Hugging Face token; set HF_TOKEN" in str(hub_error(LocalTokenNotFoundError("no token"),
                                                                       "adapter", REPO))
    bad = _http_error(401, message="Invalid credentials in Authorization header")
    assert "refused your HF_TOKEN; set a valid token" in str(hub_error(bad, "adapter", REPO, token="hf_bad"))
    assert "refused access" in str(hub_error(_http_error(403), "adapter", REPO, token="hf_x"))


def test_other_failures_point_at_the_id_or_folder():
    text = str(hub_error(OSError("Error no file named model_index.json found in directory /x."), "base model", "/x"))
    assert text == ("Could not load the base model from '/x': check the hub id or folder path. "
                    "(OSError: Error no file named model_index.json found in directory /x.)")


def test_pipeline_loads_use_the_same_sentences(tmp_path):
    from engine.pipeline import AstraPipeline

    with pytest.raises(EngineError, match="base model from 'astra-test/not-cached': it is not in the local cache"):
        AstraPipeline.from_pretrained("astra-test/not-cached", local_files_only=True)
