"""The RAG-Pose vector index: prompt embeddings in Chroma, each linked to its skeleton.

Layout (the same in an embedded folder and on a Chroma server):

* one collection per people count, ``{name}-{generation}-p{n}``: a search filtered by people
  count reads exactly one partition, because Chroma's ``where`` filter is ~8x slower than an
  unfiltered search (DESIGN sec. 7); an unfiltered search merges the partitions' top-k;
* a small ``{name}-manifest`` collection whose metadata names the live generation, the model
  and the partitions. A build writes a fresh generation and only then moves this pointer, so
  readers never see a half-built library (locally the build also swaps whole folders).

An embedded folder is a finished index when it holds ``pose_index.json`` (written last);
`PoseIndex.open` never lets Chroma create files in a folder without it.

Every record: id = entry id, document = prompt, embedding = our MiniLM vector (Chroma's own
embedding function is never used, so it never downloads a model), metadata = action,
action_name, category, people, view, profiles, source and ``pose`` (the scene as OpenPose JSON).
"""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .entry import LibraryEntry
from .scene import PoseError, PoseScene

DEFAULT_NAME = "astra_poses"
FORMAT_VERSION = 1
MANIFEST_FILE = "pose_index.json"  # written last into a finished embedded index folder
SPACE = {"hnsw": {"space": "cosine"}}
_POSE_DECIMALS = 2  # pixels: a hundredth is invisible and halves the stored JSON


class IndexMissing(PoseError):
    """No finished pose index where one was expected; build one with `python -m pose_db.build`."""


def default_path() -> Path:
    """``ASTRA_POSE_INDEX``, else ``~/.cache/astra-studio/pose_index``."""
    configured = os.environ.get("ASTRA_POSE_INDEX")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "astra-studio" / "pose_index"


def default_url() -> str | None:
    """``ASTRA_CHROMA_URL`` (a Chroma server shared by several app replicas), or None."""
    return os.environ.get("ASTRA_CHROMA_URL") or None


def resolve_url(path: str | Path | None, url: str | None) -> str | None:
    """The server to use: `url` if given, else ``ASTRA_CHROMA_URL`` unless a folder was named."""
    if url is None and path is None:
        return default_url()
    return url or None


def default_name() -> str:
    return os.environ.get("ASTRA_CHROMA_COLLECTION") or DEFAULT_NAME


@dataclass
class Hit:
    """One search result: a library entry and its cosine similarity to the query."""

    id: str
    score: float
    prompt: str
    action: str
    action_name: str
    category: str
    people: int
    view: str
    source: str
    pose: str = field(repr=False)  # OpenPose JSON, parsed on first use of `scene`
    profiles: list[str] = field(default_factory=list)

    @functools.cached_property
    def scene(self) -> PoseScene:
        # Lazy: the retriever ranks dozens of candidates but shows a few; parsing every
        # candidate's pose was most of an unfiltered search's time.
        return PoseScene.from_openpose(self.pose)


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


class PoseIndex:
    """Search and grow a pose index. Open one with `PoseIndex.open`, start one with `PoseIndex.create`.

    Args:
        client: a Chroma client (`connect`).
        name: the library's name on that client (several libraries can share a server).
        manifest: the generation this object reads and writes (see the module docstring).
        location: where it lives, for messages (the folder of an embedded index).
        url: the Chroma server's URL, None for an embedded index.
    """

    def __init__(self, client: Any, name: str, manifest: dict, location: str, url: str | None = None) -> None:
        self.client = client
        self.url = url or None
        self.build_report = None  # set by the build that made it (`build.BuildReport`)
        self.name = name
        self.manifest = dict(manifest)
        self.location = location
        self._partitions: dict[int, Any] = {}
        self._max_batch = int(client.get_max_batch_size())

    # -- opening and creating ------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path | None = None, url: str | None = None, name: str | None = None) -> PoseIndex:
        """The finished index at `url` (a Chroma server) or `path` (an embedded folder).

        Defaults: url from ``ASTRA_CHROMA_URL`` unless a path is given, path from
        ``ASTRA_POSE_INDEX`` or the cache folder. Raises `IndexMissing` when there is none yet.
        """
        url = resolve_url(path, url)
        name = name or default_name()
        if url:
            location = f"{url} (collection {name})"
        else:
            path = Path(path).expanduser() if path is not None else default_path()
            location = str(path)
            if not (path / MANIFEST_FILE).is_file():  # never let Chroma create files in a folder that is not ours
                raise IndexMissing(f"No pose index at {path}: build it with `python -m pose_db.build --out {path}`.")
        client = connect(path, url)
        return cls(client, name, read_manifest(client, name, location), location, url)

    @classmethod
    def create(cls, client: Any, *, model: str, dimension: int, name: str | None = None,
               location: str = "", url: str | None = None, **info: str | int) -> PoseIndex:
        """A new, empty, unpublished generation; `add` entries, then `publish` to make it live.

        `info` (seed, actions, ...) is recorded in the manifest.
        """
        # Nanoseconds, fixed width: generations sort by creation even when two builds share a second.
        stamp = f"{time.time_ns():020d}"
        manifest = {"format": FORMAT_VERSION, "generation": f"g{stamp}{uuid.uuid4().hex[:6]}", "model": model,
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
        return sorted(int(n) for n in str(self.manifest.get("people", "")).split(",") if n)

    def count(self) -> int:
        return sum(self._partition(n).count() for n in self.people_counts)

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
        counts = self.people_counts if people is None else [int(people)]
        hits = []
        for n in counts:
            if n not in self.people_counts:
                continue
            found = self._partition(n).query(query_embeddings=[query], n_results=int(k),
                                             include=["documents", "metadatas", "distances"])
            hits += [_hit(*row) for row in zip(found["ids"][0], found["distances"][0],
                                               found["documents"][0], found["metadatas"][0])]
        hits.sort(key=lambda h: (-h.score, h.id))
        return hits[:k]

    def records(self, include_embeddings: bool = False, page: int = 1000) -> Iterator[dict]:
        """Every stored record as ``{"id", "prompt", "metadata", "embedding"?}``, partition by partition."""
        include = ["documents", "metadatas"] + (["embeddings"] if include_embeddings else [])
        for n in self.people_counts:
            collection, offset = self._partition(n), 0
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
        """Release the client (an embedded client otherwise keeps its folder's files open)."""
        self._partitions.clear()
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    # -- helpers --------------------------------------------------------------------------------

    def _collection_name(self, people: int) -> str:
        return f"{self.name}-{self.manifest['generation']}-p{people}"

    def _partition(self, people: int, create: bool = False) -> Any:
        if people not in self._partitions:
            name = self._collection_name(people)
            if create:
                self._partitions[people] = self.client.get_or_create_collection(
                    name, configuration=SPACE, embedding_function=None)
            else:
                self._partitions[people] = self.client.get_collection(name, embedding_function=None)
        return self._partitions[people]

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


def read_manifest(client: Any, name: str, location: str) -> dict:
    """The live generation's manifest, or IndexMissing."""
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
        "pose": json.dumps(_rounded(entry.scene.to_openpose()), separators=(",", ":")),
    }


def entry_from_record(record: dict) -> LibraryEntry:
    """The library entry back from a stored record (`PoseIndex.records`)."""
    meta = record["metadata"]
    return LibraryEntry(
        id=record["id"], prompt=record["prompt"], action=meta["action"], action_name=meta["action_name"],
        category=meta["category"], people=int(meta["people"]), view=meta["view"],
        scene=PoseScene.from_openpose(meta["pose"]), profiles=_profiles(meta), source=meta["source"],
    )


def _profiles(meta: dict) -> list[str]:
    return [p for p in meta.get("profiles", "").split(",") if p]


def _people_of(entry: LibraryEntry) -> int:
    if entry.people != len(entry.scene.people):
        raise PoseError(f"Entry {entry.id} says {entry.people} people but its scene has "
                        f"{len(entry.scene.people)}; fix the entry's people count.")
    return int(entry.people)


def _hit(id_: str, distance: float, prompt: str, meta: dict) -> Hit:
    return Hit(
        id=id_, score=1.0 - float(distance), prompt=prompt, action=meta["action"],
        action_name=meta["action_name"], category=meta["category"], people=int(meta["people"]),
        view=meta["view"], source=meta["source"], pose=meta["pose"],
        profiles=_profiles(meta),
    )


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, _POSE_DECIMALS)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value
