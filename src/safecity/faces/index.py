"""1:N face search: find the watch-list entries whose enrolled faces are nearest to a live face.

Two indexes share one protocol: `ExactIndex` (numpy, every row scored) for small lists and
`HnswIndex` (hnswlib graph) for large ones; `make_index` chooses by size. An entry may hold several
embeddings (several photos, or one photo seen at several resolutions); search returns the best
similarity per entry. Both replicate to the workers either as a snapshot (`to_bytes`/`index_from_bytes`)
or as `IndexDelta` add/remove messages that are applied without a rebuild.

An index holds the embeddings of one encoder (`encoder`, its name and version): adding embeddings
that name another encoder raises `EncoderMismatch`, because a similarity between two encoders'
embeddings means nothing (the shapes may even agree: two 128-d encoders are still strangers).

    index = make_index(n_expected=500, dim=192, encoder=EncoderId("mobilefacenet-192", "1+flip"))
    index.add("entry-1", embeddings)          # (n, d) or (d,) float32
    index.search(live_embedding, k=5)         # [("entry-1", 0.93), ...]
"""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput, NotFound
from safecity.vision.faces.encoders import EncoderId

Vectors = npt.NDArray[np.float32]

#: Up to this many embeddings `make_index` picks exact search. Measured with `bench/bench_face_index.py`
#: on this 2-core machine, 128-d dlib embeddings, one thread: exact search p50 is 0.23 ms at 10k rows,
#: ~0.5 ms at 20k, 1.1 ms at 50k, 2.1 ms at 100k and 34 ms at 1M (linear), while HNSW answers in
#: 0.1-0.6 ms at any of those sizes but needs a build (19 s at 100k, 215-310 s at 1M on 2 threads) and
#: can miss the true nearest entry. Up to 20k, exact search costs under half a millisecond, is never
#: wrong and needs no build, so it wins; above, its cost grows past what a busy worker should pay.
EXACT_SEARCH_LIMIT = 20_000

#: HNSW graph shape: links per node and build breadth (see HnswIndex for the measured recall).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200

_SNAPSHOT_MAGIC = b"SCFIDX1\n"


class EncoderMismatch(InvalidInput):
    """Embeddings made by one encoder were offered to an index (or a watch list) of another."""

    code = "encoder_mismatch"


def check_encoder(held: EncoderId | None, offered: EncoderId | None, what: str = "index") -> None:
    """Raises EncoderMismatch when `offered` names an encoder other than the `held` one.

    None on either side means "not named": an index made without an encoder takes what it is given,
    and embeddings offered without one are taken to be the index's own.
    """
    if held is not None and offered is not None and held != offered:
        raise EncoderMismatch(
            f"embeddings made by encoder {offered} cannot join a face {what} of encoder {held}: "
            "similarities between two encoders' embeddings mean nothing",
            hint="re-encode the enrolment photos with the configured encoder: safecity faces reencode",
        )


def _encoder_header(encoder: EncoderId | None) -> list[str] | None:
    return None if encoder is None else [encoder.name, encoder.version]


def _encoder_from(header: dict[str, Any]) -> EncoderId | None:
    named = header.get("encoder")
    return None if named is None else EncoderId(str(named[0]), str(named[1]))


def _as_unit_rows(embeddings: npt.ArrayLike, dim: int | None) -> Vectors:
    """Returns `embeddings` as a float32 (n, d) array of unit-norm rows, or raises InvalidInput."""
    rows = np.asarray(embeddings, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise InvalidInput(
            f"embeddings must be a (n, d) array with n ≥ 1, got shape {rows.shape}",
            hint="pass one embedding per row",
        )
    if dim is not None and rows.shape[1] != dim:
        raise InvalidInput(
            f"embedding has {rows.shape[1]} dimensions, the index holds {dim}",
            hint="use the same face encoder for enrolment and search",
        )
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise InvalidInput("embedding is zero or not finite", hint="re-encode the face")
    return np.ascontiguousarray(rows / norms, dtype=np.float32)


def _best_per_entry(entry_ids: list[str], scores: npt.NDArray[np.float32], k: int) -> list[tuple[str, float]]:
    """Returns the k best (entry_id, similarity) pairs, keeping only the best row per entry."""
    best: dict[str, float] = {}
    for entry_id, score in zip(entry_ids, scores.tolist(), strict=True):
        if score > best.get(entry_id, -2.0):
            best[entry_id] = score
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)[:k]
    # Cosine similarity of unit vectors, clipped to the 0..1 scale the rest of SafeCity uses.
    return [(entry_id, float(min(1.0, max(0.0, score)))) for entry_id, score in ranked]


@runtime_checkable
class FaceIndex(Protocol):
    """What the watch-list service and the workers need from a 1:N face index."""

    dim: int
    encoder: EncoderId | None

    def add(self, entry_id: str, embeddings: npt.ArrayLike, *, encoder: EncoderId | None = None) -> None:
        """Adds embeddings to an entry (creating it); the entry's best embedding wins at search.

        `encoder` names the encoder that made them; one other than the index's raises EncoderMismatch.
        """
        ...

    def remove(self, entry_id: str) -> None:
        """Removes an entry and all its embeddings; raises NotFound if it is not there."""
        ...

    def search(self, embedding: npt.ArrayLike, k: int = 5) -> list[tuple[str, float]]:
        """Returns up to k (entry_id, similarity 0..1) pairs, best first, one per entry."""
        ...

    def entries(self) -> list[str]:
        """Returns the ids of the entries held."""
        ...

    def embeddings_of(self, entry_id: str) -> Vectors:
        """Returns the unit-norm embeddings held for an entry."""
        ...

    def to_bytes(self) -> bytes:
        """Returns a snapshot that `index_from_bytes` turns back into an equal index."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, entry_id: object) -> bool: ...


class ExactIndex:
    """Scores every stored embedding with one matrix product: exact, no build, best for small lists.

    >>> index = ExactIndex(dim=128)
    >>> index.add("entry-1", np.ones(128))
    >>> index.search(np.ones(128), k=1)
    [('entry-1', 1.0)]
    """

    kind = "exact"

    def __init__(self, dim: int = 128, *, encoder: EncoderId | None = None) -> None:
        self.dim = dim
        self.encoder = encoder
        self._rows: Vectors = np.zeros((0, dim), dtype=np.float32)
        self._owners: list[str] = []
        self._per_entry: dict[str, int] = {}
        self._most_rows = 0  # rows held by the biggest entry: bounds the candidates search must keep

    def add(self, entry_id: str, embeddings: npt.ArrayLike, *, encoder: EncoderId | None = None) -> None:
        """Adds embeddings to an entry (creating it); the entry's best embedding wins at search."""
        check_encoder(self.encoder, encoder)
        rows = _as_unit_rows(embeddings, self.dim)
        self._rows = np.concatenate([self._rows, rows])
        self._owners.extend([entry_id] * len(rows))
        self._per_entry[entry_id] = self._per_entry.get(entry_id, 0) + len(rows)
        self._most_rows = max(self._most_rows, self._per_entry[entry_id])

    def remove(self, entry_id: str) -> None:
        """Removes an entry and all its embeddings; raises NotFound if it is not there."""
        if entry_id not in self._per_entry:
            raise NotFound(f"face index has no entry {entry_id!r}", hint="check the watch-list entry id")
        keep = np.array([owner != entry_id for owner in self._owners], dtype=bool)
        self._rows = np.ascontiguousarray(self._rows[keep])
        self._owners = [owner for owner in self._owners if owner != entry_id]
        del self._per_entry[entry_id]
        self._most_rows = max(self._per_entry.values(), default=0)

    def search(self, embedding: npt.ArrayLike, k: int = 5) -> list[tuple[str, float]]:
        """Returns up to k (entry_id, similarity 0..1) pairs, best first, one per entry."""
        query = _as_unit_rows(embedding, self.dim)[0]
        if not self._owners or k <= 0:
            return []
        scores = self._rows @ query
        # Enough rows to hold k distinct entries even if the best entries own many rows each.
        wanted = min(len(scores), k * self._most_rows)
        if wanted < len(scores):
            top = np.argpartition(-scores, wanted - 1)[:wanted]
        else:
            top = np.arange(len(scores))
        return _best_per_entry([self._owners[i] for i in top], scores[top], k)

    def entries(self) -> list[str]:
        """Returns the ids of the entries held."""
        return list(self._per_entry)

    def embeddings_of(self, entry_id: str) -> Vectors:
        """Returns the unit-norm embeddings held for an entry."""
        if entry_id not in self._per_entry:
            raise NotFound(f"face index has no entry {entry_id!r}", hint="check the watch-list entry id")
        mask = np.array([owner == entry_id for owner in self._owners], dtype=bool)
        return self._rows[mask].copy()

    def to_bytes(self) -> bytes:
        """Returns a snapshot that `index_from_bytes` turns back into an equal index."""
        header = {
            "kind": self.kind,
            "dim": self.dim,
            "encoder": _encoder_header(self.encoder),
            "owners": self._owners,
        }
        return _pack(header, self._rows.tobytes())

    @classmethod
    def _from_snapshot(cls, header: dict[str, Any], payload: bytes) -> ExactIndex:
        index = cls(dim=int(header["dim"]), encoder=_encoder_from(header))
        owners: list[str] = header["owners"]
        index._rows = np.frombuffer(payload, dtype=np.float32).reshape(len(owners), index.dim).copy()
        index._owners = list(owners)
        for owner in owners:
            index._per_entry[owner] = index._per_entry.get(owner, 0) + 1
        index._most_rows = max(index._per_entry.values(), default=0)
        return index

    def __len__(self) -> int:
        return len(self._per_entry)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._per_entry


class HnswIndex:
    """Approximate search on an hnswlib graph (inner product on unit vectors) for large watch lists.

    Entries are added and removed in place: removal marks the entry's graph nodes deleted (hnswlib
    `mark_deleted`), and the graph grows by doubling when full. Measured at 1M entries with
    bench/bench_face_index.py, one search thread: with m 16 / ef_construction 100 the graph builds in
    ~160 s (2 threads) but finds the exact nearest entry only 81% of the time at ef 64 (0.18 ms) and
    97-99% at ef 256-512 (0.4-0.6 ms); with m 32 / ef_construction 200 (the defaults) it builds in
    215-310 s and finds it 100% of the time at ef 256 (the default; p50 0.43-0.49 ms, p99 < 0.9 ms).

    >>> index = HnswIndex(dim=128)
    >>> index.add("entry-1", np.ones(128))
    >>> index.search(np.ones(128), k=1)
    [('entry-1', 1.0)]
    """

    kind = "hnsw"

    def __init__(
        self,
        dim: int = 128,
        *,
        capacity: int = 1024,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef: int = 256,
        encoder: EncoderId | None = None,
    ) -> None:
        import hnswlib  # imported here: exact-only deployments never load it

        self.dim = dim
        self.encoder = encoder
        self.ef = ef
        self._m = m
        self._ef_construction = ef_construction
        self._graph = hnswlib.Index(space="ip", dim=dim)
        self._graph.init_index(max_elements=max(capacity, 16), ef_construction=ef_construction, M=m)
        self._graph.set_num_threads(1)
        self._next_label = 0
        self._labels: dict[str, list[int]] = {}
        self._owner_of: dict[int, str] = {}

    def set_num_threads(self, threads: int) -> None:
        """Sets the threads hnswlib uses for adding and searching (default 1: one core per worker)."""
        self._graph.set_num_threads(threads)

    def add(self, entry_id: str, embeddings: npt.ArrayLike, *, encoder: EncoderId | None = None) -> None:
        """Adds embeddings to an entry (creating it); the entry's best embedding wins at search."""
        check_encoder(self.encoder, encoder)
        rows = _as_unit_rows(embeddings, self.dim)
        labels = np.arange(self._next_label, self._next_label + len(rows), dtype=np.int64)
        needed = self._next_label + len(rows)
        if needed > self._graph.get_max_elements():
            self._graph.resize_index(max(needed, 2 * self._graph.get_max_elements()))
        self._graph.add_items(rows, labels)
        self._next_label = needed
        self._labels.setdefault(entry_id, []).extend(labels.tolist())
        for label in labels.tolist():
            self._owner_of[label] = entry_id

    def add_many(
        self, entry_ids: list[str], embeddings: npt.ArrayLike, *, encoder: EncoderId | None = None
    ) -> None:
        """Adds one embedding per entry id in one call (fast bulk load, uses the set threads)."""
        check_encoder(self.encoder, encoder)
        rows = _as_unit_rows(embeddings, self.dim)
        if len(entry_ids) != len(rows):
            raise InvalidInput(
                f"{len(entry_ids)} entry ids for {len(rows)} embeddings", hint="pass one id per row"
            )
        needed = self._next_label + len(rows)
        if needed > self._graph.get_max_elements():
            self._graph.resize_index(max(needed, 2 * self._graph.get_max_elements()))
        labels = np.arange(self._next_label, needed, dtype=np.int64)
        self._graph.add_items(rows, labels)
        self._next_label = needed
        for entry_id, label in zip(entry_ids, labels.tolist(), strict=True):
            self._labels.setdefault(entry_id, []).append(label)
            self._owner_of[label] = entry_id

    def remove(self, entry_id: str) -> None:
        """Removes an entry and all its embeddings; raises NotFound if it is not there."""
        labels = self._labels.pop(entry_id, None)
        if labels is None:
            raise NotFound(f"face index has no entry {entry_id!r}", hint="check the watch-list entry id")
        for label in labels:
            self._graph.mark_deleted(label)
            del self._owner_of[label]

    def search(self, embedding: npt.ArrayLike, k: int = 5) -> list[tuple[str, float]]:
        """Returns up to k (entry_id, similarity 0..1) pairs, best first, one per entry."""
        query = _as_unit_rows(embedding, self.dim)
        alive = len(self._owner_of)
        if alive == 0 or k <= 0:
            return []
        # Ask for a few extra rows so that entries holding several embeddings still yield k entries.
        wanted = min(alive, k * 2)
        self._graph.set_ef(max(self.ef, wanted))
        labels, distances = self._graph.knn_query(query, k=wanted)
        owners = [self._owner_of[int(label)] for label in labels[0]]
        # hnswlib's "ip" distance is 1 - inner product.
        return _best_per_entry(owners, (1.0 - distances[0]).astype(np.float32), k)

    def entries(self) -> list[str]:
        """Returns the ids of the entries held."""
        return list(self._labels)

    def embeddings_of(self, entry_id: str) -> Vectors:
        """Returns the unit-norm embeddings held for an entry."""
        labels = self._labels.get(entry_id)
        if labels is None:
            raise NotFound(f"face index has no entry {entry_id!r}", hint="check the watch-list entry id")
        return np.asarray(self._graph.get_items(labels), dtype=np.float32)

    def to_bytes(self) -> bytes:
        """Returns a snapshot (hnswlib's own binary format plus the entry map) for a new worker."""
        header = {
            "kind": self.kind,
            "dim": self.dim,
            "encoder": _encoder_header(self.encoder),
            "ef": self.ef,
            "m": self._m,
            "ef_construction": self._ef_construction,
            "next_label": self._next_label,
            "labels": self._labels,
        }
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "graph.bin")
            self._graph.save_index(path)
            with open(path, "rb") as handle:
                return _pack(header, handle.read())

    @classmethod
    def _from_snapshot(cls, header: dict[str, Any], payload: bytes) -> HnswIndex:
        index = cls(
            dim=int(header["dim"]),
            m=int(header["m"]),
            ef_construction=int(header["ef_construction"]),
            ef=int(header["ef"]),
            encoder=_encoder_from(header),
        )
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "graph.bin")
            with open(path, "wb") as handle:
                handle.write(payload)
            index._graph.load_index(path, max_elements=0)
        index._graph.set_num_threads(1)
        index._next_label = int(header["next_label"])
        index._labels = {entry: list(labels) for entry, labels in header["labels"].items()}
        index._owner_of = {label: entry for entry, labels in index._labels.items() for label in labels}
        return index

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._labels


def make_index(
    n_expected: int, dim: int = 128, *, encoder: EncoderId | None = None
) -> ExactIndex | HnswIndex:
    """Returns exact search up to EXACT_SEARCH_LIMIT expected embeddings, HNSW above (see there)."""
    if n_expected <= EXACT_SEARCH_LIMIT:
        return ExactIndex(dim=dim, encoder=encoder)
    return HnswIndex(dim=dim, capacity=n_expected, encoder=encoder)


def _pack(header: dict[str, Any], payload: bytes) -> bytes:
    """Returns magic, a length-prefixed JSON header, then the binary payload."""
    head = json.dumps(header).encode()
    return _SNAPSHOT_MAGIC + len(head).to_bytes(8, "little") + head + payload


def index_from_bytes(data: bytes) -> ExactIndex | HnswIndex:
    """Returns the index a `to_bytes` snapshot describes; raises InvalidInput on anything else."""
    if not data.startswith(_SNAPSHOT_MAGIC):
        raise InvalidInput(
            "not a SafeCity face-index snapshot", hint="send the bytes from FaceIndex.to_bytes()"
        )
    stream = io.BytesIO(data[len(_SNAPSHOT_MAGIC) :])
    size = int.from_bytes(stream.read(8), "little")
    header = json.loads(stream.read(size))
    payload = stream.read()
    if header.get("kind") == ExactIndex.kind:
        return ExactIndex._from_snapshot(header, payload)
    if header.get("kind") == HnswIndex.kind:
        return HnswIndex._from_snapshot(header, payload)
    raise InvalidInput(f"unknown face-index kind {header.get('kind')!r}", hint="upgrade this worker")


@dataclass(frozen=True)
class IndexDelta:
    """One change to a watch-list index, small enough to publish on the bus to every worker.

    >>> delta = IndexDelta.add("entry-1", np.ones((1, 128)), encoder=EncoderId("dlib-resnet-v1", "1+flip"))
    >>> delta.apply(index)  # on the centre and, after IndexDelta.from_dict(message), on each worker
    """

    op: Literal["add", "remove"]
    entry_id: str
    embeddings: Vectors | None = None
    encoder: EncoderId | None = None

    @classmethod
    def add(cls, entry_id: str, embeddings: npt.ArrayLike, *, encoder: EncoderId | None = None) -> IndexDelta:
        """Returns the delta that adds embeddings (made by `encoder`) to an entry."""
        return cls("add", entry_id, _as_unit_rows(embeddings, None), encoder)

    @classmethod
    def remove(cls, entry_id: str) -> IndexDelta:
        """Returns the delta that removes an entry."""
        return cls("remove", entry_id)

    def apply(self, index: FaceIndex) -> None:
        """Applies this change to an index; removing an absent entry is a no-op (deltas may repeat)."""
        if self.op == "add" and self.embeddings is not None:
            index.add(self.entry_id, self.embeddings, encoder=self.encoder)
        elif self.op == "remove" and self.entry_id in index:
            index.remove(self.entry_id)

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-safe wire form: embeddings as base64 float32 with their shape."""
        body: dict[str, Any] = {"op": self.op, "entry_id": self.entry_id}
        if self.embeddings is not None:
            body["shape"] = list(self.embeddings.shape)
            body["embeddings"] = base64.b64encode(self.embeddings.astype(np.float32).tobytes()).decode()
        if self.encoder is not None:
            body["encoder"] = _encoder_header(self.encoder)
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> IndexDelta:
        """Returns the delta a `to_dict` message describes; raises InvalidInput if it is malformed."""
        op = body.get("op")
        entry_id = body.get("entry_id")
        if op not in ("add", "remove") or not isinstance(entry_id, str):
            raise InvalidInput(
                f"malformed face-index delta: {body!r}"[:200], hint="expected op add|remove and entry_id"
            )
        if op == "remove":
            return cls.remove(entry_id)
        try:
            shape = tuple(int(n) for n in body["shape"])
            rows = np.frombuffer(base64.b64decode(body["embeddings"]), dtype=np.float32).reshape(shape)
            encoder = _encoder_from(body)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise InvalidInput(f"face-index delta for {entry_id!r} has unreadable embeddings: {exc}") from exc
        return cls.add(entry_id, rows, encoder=encoder)
