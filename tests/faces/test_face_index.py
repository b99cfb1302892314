"""Specification of the 1:N face index: exact and HNSW search, best-per-entry, removal, replication."""

from __future__ import annotations

import numpy as np
import pytest

from safecity.core.errors import InvalidInput, NotFound
from safecity.faces.index import (
    EXACT_SEARCH_LIMIT,
    ExactIndex,
    FaceIndex,
    HnswIndex,
    IndexDelta,
    index_from_bytes,
    make_index,
)

DIM = 128


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def near(vector: np.ndarray, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    out = vector + rng.standard_normal(vector.shape).astype(np.float32) * noise
    return out / np.linalg.norm(out)


@pytest.fixture(params=["exact", "hnsw"])
def index(request: pytest.FixtureRequest) -> FaceIndex:
    return ExactIndex(dim=DIM) if request.param == "exact" else HnswIndex(dim=DIM, capacity=8)


def test_search_finds_the_enrolled_entry_first_with_a_similarity_in_0_to_1(index: FaceIndex) -> None:
    rng = np.random.default_rng(1)
    gallery = unit_rows(rng, 50)
    for i, row in enumerate(gallery):
        index.add(f"entry-{i}", row)
    results = index.search(near(gallery[17], rng), k=3)
    assert results[0][0] == "entry-17"
    assert len(results) == 3
    assert all(0.0 <= s <= 1.0 for _, s in results)
    assert results[0][1] > 0.8 > results[1][1]
    assert len(index) == 50


def test_an_entry_with_several_photos_appears_once_with_its_best_similarity(index: FaceIndex) -> None:
    rng = np.random.default_rng(2)
    person = unit_rows(rng, 1)[0]
    index.add("wanted", np.stack([near(person, rng, 0.3), near(person, rng, 0.01), near(person, rng, 0.3)]))
    for i, row in enumerate(unit_rows(rng, 20)):
        index.add(f"other-{i}", row)
    results = index.search(person, k=5)
    assert [entry for entry, _ in results].count("wanted") == 1
    assert results[0][0] == "wanted" and results[0][1] > 0.99
    assert len(index) == 21


def test_removed_entry_is_never_returned_and_others_still_are(index: FaceIndex) -> None:
    rng = np.random.default_rng(3)
    gallery = unit_rows(rng, 30)
    for i, row in enumerate(gallery):
        index.add(f"entry-{i}", row)
    index.remove("entry-5")
    assert "entry-5" not in index
    assert all(entry != "entry-5" for entry, _ in index.search(gallery[5], k=10))
    assert index.search(gallery[6], k=1)[0][0] == "entry-6"
    with pytest.raises(NotFound):
        index.remove("entry-5")


def test_hnsw_index_grows_past_its_capacity_without_a_rebuild() -> None:
    rng = np.random.default_rng(4)
    index = HnswIndex(dim=DIM, capacity=16)
    gallery = unit_rows(rng, 200)
    for i, row in enumerate(gallery):
        index.add(f"entry-{i}", row)
    hits = sum(index.search(near(row, rng), k=1)[0][0] == f"entry-{i}" for i, row in enumerate(gallery))
    assert hits == 200


def test_snapshot_restores_an_index_that_answers_the_same(index: FaceIndex) -> None:
    rng = np.random.default_rng(5)
    gallery = unit_rows(rng, 40)
    for i, row in enumerate(gallery):
        index.add(f"entry-{i}", row)
    index.remove("entry-3")
    copy = index_from_bytes(index.to_bytes())
    assert type(copy) is type(index)
    assert sorted(copy.entries()) == sorted(index.entries())
    query = near(gallery[9], rng)
    assert copy.search(query, k=5) == index.search(query, k=5)
    copy.add("late", gallery[3])  # the copy keeps working after restore
    assert copy.search(gallery[3], k=1)[0][0] == "late"


def test_deltas_sent_as_json_replicate_adds_and_removes_to_a_worker() -> None:
    rng = np.random.default_rng(6)
    centre, worker = ExactIndex(dim=DIM), HnswIndex(dim=DIM)
    photos = unit_rows(rng, 3)
    deltas = [IndexDelta.add("a", photos[:2]), IndexDelta.add("b", photos[2]), IndexDelta.remove("a")]
    for delta in deltas:
        delta.apply(centre)
        IndexDelta.from_dict(delta.to_dict()).apply(worker)
    assert centre.entries() == worker.entries() == ["b"]
    np.testing.assert_allclose(worker.embeddings_of("b"), centre.embeddings_of("b"), atol=1e-6)
    IndexDelta.remove("a").apply(worker)  # a repeated removal changes nothing


def test_wrong_dimension_or_garbage_is_refused_with_a_reason() -> None:
    index = ExactIndex(dim=DIM)
    with pytest.raises(InvalidInput, match="512 dimensions"):
        index.add("x", np.ones(512))
    with pytest.raises(InvalidInput, match="zero"):
        index.add("x", np.zeros(DIM))
    with pytest.raises(InvalidInput, match="snapshot"):
        index_from_bytes(b"not an index")
    with pytest.raises(InvalidInput):
        IndexDelta.from_dict({"op": "add", "entry_id": "x", "embeddings": "!!", "shape": [1, 128]})


def test_make_index_uses_exact_search_for_small_lists_and_hnsw_for_large() -> None:
    assert isinstance(make_index(100), ExactIndex)
    assert isinstance(make_index(EXACT_SEARCH_LIMIT + 1), HnswIndex)
    assert make_index(10, dim=512).dim == 512
