"""The RAG-Pose vector index: prompt embeddings in Chroma, each linked to its skeleton.

Layout (the same in an embedded folder and on a Chroma server):

* one collection per people count, ``{name}-{generation}-p{n}``: a search filtered by people
  count reads exactly one partition, because Chroma's ``where`` filter is ~8x slower than an
  unfiltered search (DESIGN sec. 7); an unfiltered search merges the partitions' top-k;
* a small ``{name}-manifest`` collection whose metadata names the live generation, the model
  and the partitions. A build writes a fresh generation and only then moves this pointer, so
  readers never see a half-built library (locally the build also swaps whole folders).

An embedded index is a folder of generations (`swap`): ``CURRENT`` names the live one, each
``g…/`` is one finished build with its ``pose_index.json`` (written last) listing every file's
size and hash. `PoseIndex.open` never lets Chroma touch that folder: it copies the live
generation into a private folder, checking every file against the manifest on the way
(`integrity`), and opens the copy. Before each query a reader looks at ``CURRENT`` (one stat)
and, when a build has published a new generation, opens that one; queries in flight finish
on the old one. On a Chroma server the reader re-reads the pointer at most once a second,
and at once when its collections have gone.

Every record: id = entry id, document = prompt, embedding = our MiniLM vector (Chroma's own
embedding function is never used, so it never downloads a model), metadata = action,
action_name, category, people, view, profiles, source and ``pose`` (the scene as OpenPose JSON).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from pose_db import env
from pose_db.scene.entry import Hit, LibraryEntry
from pose_db.scene.model import PoseError
from pose_db.scene.openpose_io import write_openpose

from .integrity import MANIFEST_FILE, IndexDamaged, pid_alive, remove_tree, verified_copy

log = logging.getLogger(__name__)

DEFAULT_NAME = "astra_poses"
FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"  # the live generation's folder name, replaced atomically by a build
READERS_LOCK = ".readers.lock"  # in each generation: shared-locked by a reader while it copies it
COPY_PREFIX = "astra-pose-index-"  # private copies readers open: astra-pose-index-PID-XXXX
_MAX_MANIFEST_BYTES = 50_000_000
_SERVER_CHECK_S = 1.0  # how often a reader of a Chroma server looks for a new generation
SPACE = {"hnsw": {"space": "cosine"}}
_POSE_DECIMALS = 2  # pixels: a hundredth is invisible and halves the stored JSON


class IndexMissing(PoseError):
    """No finished pose index where one was expected; build one with `python -m pose_db.build`."""


class IndexOutdated(IndexMissing):
    """An index folder written by an older version (no generations, no file manifest)."""


def rebuild_hint(path: str | Path) -> str:
    return f"rebuild it with `python -m pose_db.build --out {path}`"


def default_path() -> Path:
    """``ASTRA_POSE_INDEX``, else ``~/.cache/astra-studio/pose_index``."""
    configured = env.get("ASTRA_POSE_INDEX")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "astra-studio" / "pose_index"


def default_url() -> str | None:
    """``ASTRA_CHROMA_URL`` (a Chroma server shared by several app replicas), or None."""
    return env.get("ASTRA_CHROMA_URL") or None


def resolve_url(path: str | Path | None, url: str | None) -> str | None:
    """The server to use: `url` if given, else ``ASTRA_CHROMA_URL`` unless a folder was named."""
    if url is None and path is None:
        return default_url()
    return url or None


def default_name() -> str:
    return env.get("ASTRA_CHROMA_COLLECTION") or DEFAULT_NAME


def connect(path: str | Path | None = None, url: str | None = None) -> Any:
    """A Chroma client: `HttpClient` for a server URL, else an embedded `PersistentClient` at path.

    Telemetry is off in both.
    """
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise PoseError(f"Chroma URL {url!r} is not http(s)://HOST:PORT; e.g. http://127.0.0.1:8000.")
        ssl = parsed.scheme == "https"
        try:
            return chromadb.HttpClient(host=parsed.hostname, port=parsed.port or (443 if ssl else 8000),
                                       ssl=ssl, settings=settings)
        except Exception as error:  # chromadb raises ValueError/ConnectError depending on transport
            raise PoseError(f"Cannot reach the Chroma server at {url} ({error}); start it with "
                            f"`chroma run --path DIR --port PORT` or unset ASTRA_CHROMA_URL.") from error
    return chromadb.PersistentClient(path=str(path), settings=settings)


class _Live:
    """One opened generation: its client, manifest and partitions, and the queries using it."""

    def __init__(self, client: Any, manifest: dict, copy: Path | None = None, owns_client: bool = True) -> None:
        self.client = client
        self.manifest = dict(manifest)
        self.partitions: dict[int, Any] = {}
        self.copy = copy  # the private copy an embedded reader opened (deleted on close)
        self.folder = ""  # the generation folder it was copied from (embedded readers)
        self.owns_client = owns_client
        self.users = 0
        self.retired = False

    def close(self) -> None:
        self.partitions.clear()
        if self.owns_client:
            close = getattr(self.client, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        if self.copy is not None:
            remove_tree(self.copy)
            self.copy = None


class PoseIndex:
    """Search and grow a pose index. Open one with `PoseIndex.open`, start one with `PoseIndex.create`.

    Safe to share between threads: queries run concurrently; a newer generation published by
    a build is picked up between queries (see the module docstring).

    Args:
        client: a Chroma client (`connect`).
        name: the library's name on that client (several libraries can share a server).
        manifest: the generation this object reads and writes (see the module docstring).
        location: where it lives, for messages (the folder of an embedded index).
        url: the Chroma server's URL, None for an embedded index.
    """

    def __init__(self, client: Any, name: str, manifest: dict, location: str, url: str | None = None) -> None:
        self.url = url or None
        self.build_report = None  # set by the build that made it (`build.BuildReport`)
        self.name = name
        self.location = location
        self._live = _Live(client, manifest, owns_client=True)
        self._max_batch = int(client.get_max_batch_size())
        self._lock = threading.Lock()
        self._root: Path | None = None  # an embedded reader's index folder (it follows CURRENT there)
        self._seen: tuple | None = None  # (inode, mtime) of CURRENT when last looked at
        self._checked = time.monotonic()  # a server reader's last look at the pointer
        self._follow = False

    # -- the live generation (properties keep the simple attribute interface) -------------------

    @property
    def client(self) -> Any:
        return self._live.client

    @property
    def manifest(self) -> dict:
        return self._live.manifest

    @manifest.setter
    def manifest(self, value: dict) -> None:
        self._live.manifest = dict(value)

    @property
    def generation(self) -> str:
        return str(self.manifest["generation"])

    # -- opening and creating ------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path | None = None, url: str | None = None, name: str | None = None) -> PoseIndex:
        """The finished index at `url` (a Chroma server) or `path` (an embedded folder), read-only.

        Defaults: url from ``ASTRA_CHROMA_URL`` unless a path is given, path from
        ``ASTRA_POSE_INDEX`` or the cache folder. Raises `IndexMissing` when there is none yet
        (`IndexOutdated` for a folder of an older version) and `IndexDamaged` when its files do
        not match their manifest. Nothing is ever written into the folder.
        """
        url = resolve_url(path, url)
        name = name or default_name()
        if url:
            location = f"{url} (collection {name})"
            client = connect(None, url)
            index = cls(client, name, read_manifest(client, name, location), location, url)
            index._follow = True
            return index
        root = (Path(path).expanduser() if path is not None else default_path()).absolute()
        last = None
        for attempt in range(5):
            seen, generation = read_current(root)
            try:
                live = open_generation(root, generation, name)
            except _Vanished:  # a build removed it between our two looks: read CURRENT again
                if (seen, generation) == last:
                    raise IndexDamaged(f"The pose index at {root} is damaged ({CURRENT_FILE} names generation "
                                       f"{generation}, which is missing): {rebuild_hint(root)}.") from None
                last = (seen, generation)
                time.sleep(0.05 * (attempt + 1))
                continue
            index = cls.__new__(cls)
            PoseIndex.__init__(index, live.client, name, live.manifest, str(root))
            index._live = live
            index._root, index._seen, index._follow = root, seen, True
            return index
        raise IndexMissing(f"The pose index at {root} kept changing while it was opened; try again.")

    @classmethod
    def open_for_writing(cls, folder: str | Path, name: str | None = None, location: str | None = None) -> PoseIndex:
        """A generation folder being built (a build's or an import's staging copy), opened in place."""
        folder = Path(folder)
        client = connect(folder)
        name = name or default_name()
        return cls(client, name, read_manifest(client, name, str(folder)), location or str(folder))

    @classmethod
    def create(cls, client: Any, *, model: str, dimension: int, name: str | None = None,
               location: str = "", url: str | None = None, **info: str | int) -> PoseIndex:
        """A new, empty, unpublished generation; `add` entries, then `publish` to make it live.

        `info` (seed, actions, ...) is recorded in the manifest.
        """
        # Nanoseconds, fixed width: generations sort by creation even when two builds share a second.
        stamp = f"{time.time_ns():020d}"
        manifest = {"format": FORMAT_VERSION, "generation": new_generation_name(stamp), "model": model,
                    "dimension": int(dimension), "people": "", **info}
        return cls(client, name or default_name(), manifest, location, url)

    # -- reading --------------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The embedded index's folder, or None for an index on a Chroma server."""
        return None if self.url or not self.location else Path(self.location)

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @property
    def model(self) -> str:
        """The embedding model the prompts were embedded with; queries must use the same."""
        return str(self.manifest["model"])

    @property
    def people_counts(self) -> list[int]:
        return _people_counts(self.manifest)

    def count(self) -> int:
        with self._using() as live:
            return sum(self._partition(n, live=live).count() for n in _people_counts(live.manifest))

    def search(self, vector: np.ndarray, k: int, people: int | None = None) -> list[Hit]:
        """The k entries whose prompts are nearest to `vector` (cosine), best first.

        Args:
            vector: the query embedding (same model as the index, `dimension` floats).
            k: how many hits at most.
            people: only entries with exactly this many people (None: any).
        """
        query = self._check_vector(vector)
        if isinstance(k, bool) or int(k) < 1:
            raise PoseError(f"k must be a positive whole number, got {k!r}.")
        for attempt in (0, 1):
            try:
                with self._using() as live:
                    return self._search(live, query, int(k), people)
            except Exception as error:  # a server build dropped our generation: follow the pointer once
                if attempt or not (self._follow and self.url and _is_not_found(error)):
                    raise
                self._checked = 0.0
        raise AssertionError("unreachable")

    def _search(self, live: _Live, query: np.ndarray, k: int, people: int | None) -> list[Hit]:
        known = _people_counts(live.manifest)
        counts = known if people is None else [int(people)]
        hits = []
        for n in counts:
            if n not in known:
                continue
            found = self._partition(n, live=live).query(query_embeddings=[query], n_results=k,
                                                        include=["documents", "metadatas", "distances"])
            hits += [_hit(*row) for row in zip(found["ids"][0], found["distances"][0],
                                               found["documents"][0], found["metadatas"][0])]
        hits.sort(key=lambda h: (-h.score, h.entry.id))
        return hits[:k]

    def records(self, include_embeddings: bool = False, page: int = 1000) -> Iterator[dict]:
        """Every stored record as ``{"id", "prompt", "metadata", "embedding"?}``, partition by partition."""
        include = ["documents", "metadatas"] + (["embeddings"] if include_embeddings else [])
        with self._using() as live:
            for n in _people_counts(live.manifest):
                collection, offset = self._partition(n, live=live), 0
                while True:
                    got = collection.get(include=include, limit=page, offset=offset)
                    for i, id_ in enumerate(got["ids"]):
                        record = {"id": id_, "prompt": got["documents"][i], "metadata": got["metadatas"][i]}
                        if include_embeddings:
                            record["embedding"] = np.asarray(got["embeddings"][i], np.float32)
                        yield record
                    if len(got["ids"]) < page:
                        break
                    offset += page

    def counts(self) -> dict[str, int]:
        """Entries per partition, ``{"1": n, ...}`` (recorded in a generation's manifest)."""
        return {str(n): self._partition(n).count() for n in self.people_counts}

    # -- writing --------------------------------------------------------------------------------

    def add(self, entries: list[LibraryEntry], embeddings: np.ndarray) -> None:
        """Store `entries` with their prompt `embeddings` (n, dimension); same id replaces."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(entries), self.dimension):
            raise PoseError(f"Expected embeddings of shape ({len(entries)}, {self.dimension}), got {embeddings.shape}.")
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise PoseError(f"Entry ids must be unique; repeated: {twice[:5]}. Give each entry its own id.")
        by_people: dict[int, list[int]] = {}
        for row, entry in enumerate(entries):
            by_people.setdefault(_people_of(entry), []).append(row)
        for n, rows in sorted(by_people.items()):
            collection = self._partition(n, create=True)
            for start in range(0, len(rows), self._max_batch):
                chunk = rows[start:start + self._max_batch]
                collection.upsert(ids=[ids[r] for r in chunk], embeddings=embeddings[chunk],
                                  documents=[entries[r].prompt for r in chunk],
                                  metadatas=[entry_metadata(entries[r]) for r in chunk])
        known = set(self.people_counts) | set(by_people)
        self.manifest["people"] = ",".join(str(n) for n in sorted(known))

    def publish(self) -> None:
        """Make this generation the live one, then drop every other generation's collections."""
        manifest = self.manifest | {"published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        pointer = self.client.get_or_create_collection(f"{self.name}-manifest", embedding_function=None)
        pointer.modify(metadata=manifest)
        self.manifest = manifest
        live = {self._collection_name(n) for n in self.people_counts}
        prefix = f"{self.name}-g"
        for collection in self.client.list_collections():
            if collection.name.startswith(prefix) and collection.name not in live and self._is_stale(collection.name):
                self.client.delete_collection(collection.name)

    def close(self) -> None:
        """Release the client and the private copy (an embedded client otherwise keeps files open)."""
        with self._lock:
            live, self._follow = self._live, False
            live.retired = True
            if live.users == 0:
                live.close()

    # -- following new generations ---------------------------------------------------------------

    @contextlib.contextmanager
    def _using(self) -> Iterator[_Live]:
        """The live generation, held for one query (a newer one is opened first if published)."""
        if self._follow:
            self._refresh()
        with self._lock:
            live = self._live
            live.users += 1
        try:
            yield live
        finally:
            with self._lock:
                live.users -= 1
                if live.retired and live.users == 0:
                    live.close()

    def _refresh(self) -> None:
        if self._root is not None:
            seen = _stat_key(self._root / CURRENT_FILE)
            if seen == self._seen:
                return
            if not self._lock.acquire(blocking=False):
                return  # another thread is opening the new generation; this query uses the old one
            try:
                self._switch_folder(seen)
            finally:
                self._lock.release()
        elif self.url and time.monotonic() - self._checked >= _SERVER_CHECK_S:
            self._checked = time.monotonic()
            try:
                manifest = read_manifest(self.client, self.name, self.location)
            except PoseError as error:
                log.warning("Could not read the pose index pointer at %s (%s); still using generation %s.",
                            self.location, error, self.generation)
                return
            if manifest["generation"] != self.generation:
                with self._lock:
                    self._replace(_Live(self.client, manifest, owns_client=False))
                log.info("Pose index at %s: now reading generation %s.", self.location, manifest["generation"])

    def _switch_folder(self, seen: tuple | None) -> None:
        """Open the generation CURRENT names now (called with the lock held)."""
        self._seen = seen
        try:
            _, generation = read_current(self._root)
            if generation == self._live.folder:
                return
            live = open_generation(self._root, generation, self.name)
        except (PoseError, _Vanished) as error:  # keep answering from the generation we have
            log.error("The pose index at %s changed but its new generation cannot be used (%s); still "
                      "answering from generation %s.", self._root, error, self.generation)
            return
        self._replace(live)
        log.info("Pose index at %s: now reading generation %s.", self._root, generation)

    def _replace(self, live: _Live) -> None:
        old, self._live = self._live, live
        old.retired = True
        if old.users == 0:
            old.close()

    # -- helpers --------------------------------------------------------------------------------

    def _collection_name(self, people: int, manifest: dict | None = None) -> str:
        return f"{self.name}-{(manifest or self.manifest)['generation']}-p{people}"

    def _partition(self, people: int, create: bool = False, live: _Live | None = None) -> Any:
        live = live or self._live
        if people not in live.partitions:
            name = self._collection_name(people, live.manifest)
            if create:
                live.partitions[people] = live.client.get_or_create_collection(
                    name, configuration=SPACE, embedding_function=None)
            else:
                live.partitions[people] = live.client.get_collection(name, embedding_function=None)
        return live.partitions[people]

    def _is_stale(self, collection_name: str) -> bool:
        """Another generation's collection: older than ours (a concurrent newer build is kept)."""
        generation = collection_name[len(self.name) + 1:].rsplit("-p", 1)[0]
        return generation < self.manifest["generation"]

    def _check_vector(self, vector: np.ndarray) -> np.ndarray:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape != (self.dimension,):
            raise PoseError(f"The query vector has {query.size} numbers but this index holds {self.dimension}-d "
                            f"embeddings from {self.model}; embed the query with that model.")
        if not np.isfinite(query).all() or not query.any():
            raise PoseError("The query vector is zero or not finite; embed a non-empty prompt.")
        return query


class _Vanished(Exception):
    """The generation CURRENT named was removed before we could copy it (a newer one is live)."""


def new_generation_name(stamp: str) -> str:
    return f"g{stamp}{uuid.uuid4().hex[:6]}"


def read_current(root: Path) -> tuple[tuple | None, str]:
    """``(stat key, generation)`` of the folder index at `root`, or `IndexMissing` / `IndexOutdated`."""
    pointer = root / CURRENT_FILE
    seen = _stat_key(pointer)
    try:
        with open(pointer, "rb") as reader:
            generation = reader.read(200).decode("ascii", "replace").strip()
    except FileNotFoundError:
        if (root / MANIFEST_FILE).is_file():
            raise IndexOutdated(f"The pose index at {root} was written by an older version of ASTRA Studio; "
                                f"{rebuild_hint(root)}.") from None
        raise IndexMissing(f"No pose index at {root}: build it with `python -m pose_db.build --out {root}`.") from None
    except OSError as error:
        raise PoseError(f"Cannot read the pose index at {root} ({error.strerror or error}): check the folder's "
                        f"permissions, or {rebuild_hint(root)}.") from error
    if not generation.startswith("g") or not generation.isalnum():
        raise IndexDamaged(f"The pose index at {root} is damaged ({CURRENT_FILE} names no generation): "
                           f"{rebuild_hint(root)}.")
    return seen, generation


def open_generation(root: Path, generation: str, name: str) -> _Live:
    """A private, verified copy of generation `generation` of the folder index `root`, opened."""
    folder = root / generation
    rebuild = rebuild_hint(root)
    if not folder.is_dir():
        raise _Vanished(generation)
    manifest = _read_file_manifest(folder, root)
    if manifest.get("folder") != generation or "generation" not in manifest:
        raise IndexDamaged(f"The pose index at {root} is damaged (its manifest names another generation): {rebuild}.")
    _remove_dead_copies()
    copy = Path(tempfile.mkdtemp(prefix=f"{COPY_PREFIX}{os.getpid()}-"))
    try:
        with _reader_lock(folder):
            if not folder.is_dir():
                raise _Vanished(generation)
            verified_copy(folder, manifest.get("files"), copy, rebuild)
        client = connect(copy)
        try:
            stored = read_manifest(client, name, str(root))
            if stored.get("generation") != manifest["generation"]:
                raise IndexDamaged(f"The pose index at {root} is damaged (its Chroma data belongs to another "
                                   f"generation): {rebuild}.")
            live = _Live(client, stored, copy)
            live.folder = generation
            _check_counts(live, name, manifest.get("counts") or {}, root)
        except BaseException:
            with contextlib.suppress(Exception):
                client.close()
            raise
    except (PoseError, _Vanished):
        remove_tree(copy)
        raise
    except Exception as error:  # Chroma refusing a copy that matched its hashes: still a sentence
        remove_tree(copy)
        raise IndexDamaged(f"The pose index at {root} cannot be opened ({type(error).__name__}: "
                           f"{str(error)[:200]}): {rebuild}.") from error
    except BaseException:
        remove_tree(copy)
        raise
    return live


def _check_counts(live: _Live, name: str, counts: dict, root: Path) -> None:
    for n in _people_counts(live.manifest):
        collection = live.client.get_collection(f"{name}-{live.manifest['generation']}-p{n}", embedding_function=None)
        live.partitions[n] = collection
        want = counts.get(str(n))
        if want is not None and collection.count() != int(want):
            raise IndexDamaged(f"The pose index at {root} is damaged ({collection.count()} entries with {n} "
                               f"people, its manifest says {want}): {rebuild_hint(root)}.")


def _read_file_manifest(folder: Path, root: Path) -> dict:
    path = folder / MANIFEST_FILE
    try:
        if not path.is_file() or path.stat().st_size > _MAX_MANIFEST_BYTES:
            raise ValueError("missing or oversized")
        with open(path, "rb") as reader:
            manifest = json.loads(reader.read(_MAX_MANIFEST_BYTES + 1))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (OSError, ValueError, RecursionError) as error:
        raise IndexDamaged(f"The pose index at {root} is damaged ({MANIFEST_FILE} of generation {folder.name} is "
                           f"unreadable: {error}): {rebuild_hint(root)}.") from error
    return manifest


@contextlib.contextmanager
def _reader_lock(folder: Path) -> Iterator[None]:
    """A shared lock on a generation while it is copied: a build removes it only when none is held."""
    try:
        import fcntl
    except ImportError:  # not POSIX: builds keep old generations instead of removing them
        yield
        return
    try:
        fd = os.open(folder / READERS_LOCK, os.O_RDONLY)
    except FileNotFoundError:
        raise _Vanished(folder.name) from None
    except OSError:
        yield  # unreadable lock file: copy without it (a build may then fail to remove the folder)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _remove_dead_copies() -> None:
    """Private copies left by readers that were killed (their process is gone)."""
    for stale in Path(tempfile.gettempdir()).glob(f"{COPY_PREFIX}*"):
        pid = stale.name[len(COPY_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            remove_tree(stale)


def _stat_key(path: Path) -> tuple | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _people_counts(manifest: dict) -> list[int]:
    return sorted(int(n) for n in str(manifest.get("people", "")).split(",") if n)


def _is_not_found(error: Exception) -> bool:
    from chromadb.errors import NotFoundError

    return isinstance(error, NotFoundError) or "does not exist" in str(error)


def read_manifest(client: Any, name: str, location: str) -> dict:
    """The live generation's manifest, or IndexMissing. (A folder index's generation folder name
    is not its Chroma generation: an import copies a generation into a new folder.)"""
    from chromadb.errors import NotFoundError

    try:
        manifest = dict(client.get_collection(f"{name}-manifest", embedding_function=None).metadata or {})
    except (NotFoundError, ValueError):
        manifest = {}
    if "generation" not in manifest:
        raise IndexMissing(f"{location} holds no finished pose index named {name!r}: build it with "
                           f"`python -m pose_db.build`.")
    if int(manifest.get("format", 0)) != FORMAT_VERSION:
        raise PoseError(f"The pose index at {location} has format {manifest.get('format')}, this code reads "
                        f"{FORMAT_VERSION}: rebuild it with `python -m pose_db.build`.")
    return manifest


def entry_metadata(entry: LibraryEntry) -> dict:
    """The Chroma metadata of one entry; the scene travels as compact OpenPose JSON."""
    return {
        "action": entry.action,
        "action_name": entry.action_name,
        "category": entry.category,
        "people": _people_of(entry),
        "view": entry.view,
        "profiles": ",".join(entry.profiles),
        "source": entry.source,
        "preferred_view": entry.preferred_view,
        "pose": json.dumps(_rounded(write_openpose(entry.scene)), separators=(",", ":")),
    }


def entry_from_record(record: dict) -> LibraryEntry:
    """The library entry back from a stored record (`PoseIndex.records`); its pose is parsed on first use."""
    return _entry(record["id"], record["prompt"], record["metadata"])


def _entry(id_: str, prompt: str, meta: dict) -> LibraryEntry:
    return LibraryEntry(
        id=id_, prompt=prompt, action=meta["action"], action_name=meta["action_name"],
        category=meta["category"], people=int(meta["people"]), view=meta["view"],
        pose=meta["pose"], profiles=_profiles(meta), source=meta["source"],
        preferred_view=meta.get("preferred_view", ""),  # absent in indexes built before it existed
    )


def _profiles(meta: dict) -> list[str]:
    return [p for p in meta.get("profiles", "").split(",") if p]


def _people_of(entry: LibraryEntry) -> int:
    if entry.people != len(entry.scene.people):
        raise PoseError(f"Entry {entry.id} says {entry.people} people but its scene has "
                        f"{len(entry.scene.people)}; fix the entry's people count.")
    return int(entry.people)


def _hit(id_: str, distance: float, prompt: str, meta: dict) -> Hit:
    return Hit(entry=_entry(id_, prompt, meta), score=1.0 - float(distance))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, _POSE_DECIMALS)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
