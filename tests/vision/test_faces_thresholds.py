"""Specification of threshold choice: FAR on the pairs fitted, cross-validation over identities, margin."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from safecity.core.errors import InvalidInput
from safecity.vision.faces.thresholds import (
    Pairs,
    cross_validate,
    identity_folds,
    operating_threshold,
    rates,
    tar_at_far,
    threshold_for_far,
)


def synthetic(people: int = 24, photos: int = 3, seed: int = 0, lookalikes: int = 0) -> Pairs:
    """All pairs of `photos` photos of each of `people`; a few pairs of people look alike (high scores)."""
    rng = np.random.default_rng(seed)
    files = [(f"p{i:02d}", k) for i in range(people) for k in range(photos)]
    alike = {tuple(sorted((f"p{2 * i:02d}", f"p{2 * i + 1:02d}"))) for i in range(lookalikes)}
    scores, same, pairs = [], [], []
    for (a, _), (b, _) in itertools.combinations(files, 2):
        genuine = a == b
        mean = 0.7 if genuine else (0.62 if tuple(sorted((a, b))) in alike else 0.2)
        scores.append(float(np.clip(rng.normal(mean, 0.08), 0, 1)))
        same.append(genuine)
        pairs.append((a, b))
    return Pairs(np.array(scores), np.array(same), pairs)


def test_the_threshold_for_a_far_lets_through_at_most_that_share_of_impostors() -> None:
    impostors = np.linspace(0.0, 0.99, 100)
    threshold = threshold_for_far(impostors, 0.01)
    assert np.mean(impostors >= threshold) == pytest.approx(0.01)
    assert 0.98 < threshold <= 0.99 + 1e-9
    assert np.mean(impostors >= threshold_for_far(impostors, 0.0)) == 0.0
    with pytest.raises(InvalidInput, match="no different-person pairs"):
        threshold_for_far(np.array([]))


def test_rates_and_in_sample_tar() -> None:
    pairs = Pairs(np.array([0.9, 0.8, 0.3, 0.1]), np.array([True, True, False, False]), [("a", "a")] * 4)
    assert rates(pairs, 0.5) == (1.0, 0.0)
    assert rates(pairs, 0.85) == (0.5, 0.0)
    assert tar_at_far(pairs)[0] == 1.0
    with pytest.raises(InvalidInput, match="3 scores, 2 labels"):
        Pairs(np.zeros(3), np.zeros(2, dtype=bool), [("a", "b")] * 3)


def test_folds_partition_the_people_and_cross_validation_never_tests_on_people_it_fitted() -> None:
    people = [f"p{i}" for i in range(10)]
    folds = identity_folds(people, folds=3, rng=np.random.default_rng(1))
    assert sorted(p for fold in folds for p in fold) == people
    assert sorted(len(f) for f in folds) == [3, 3, 4]
    seen: list[set[str]] = []

    def fit(train: Pairs) -> float:
        seen.append(set(train.identities()))
        return threshold_for_far(train.impostors)

    pairs = synthetic(people=9)
    report = cross_validate(pairs, folds=3, repeats=4, fit=fit)
    assert len(report.repeats) == 4 and all(len(partition) == 3 for partition in report.repeats)
    assert all(len(trained) == 6 for trained in seen)  # two folds of three people each time


def test_thresholds_fitted_on_some_people_let_through_more_impostors_of_others_and_the_margin_fixes_it() -> (
    None
):
    pairs = synthetic(people=30, lookalikes=4)
    report = cross_validate(pairs, repeats=40)
    plain = report.summary()
    assert plain["held_out_far"]["max"] > 0.01  # lookalikes outside the training people surprise it
    margin = report.margin(quantile=0.9)
    assert margin > 0
    held = report.summary(margin)
    assert held["held_out_far"]["q90"] <= 0.01
    assert held["held_out_tar"]["median"] <= plain["held_out_tar"]["median"]  # the price of the margin
    threshold, chosen_margin = operating_threshold(pairs, repeats=40)
    assert chosen_margin == margin
    assert threshold == pytest.approx(threshold_for_far(pairs.impostors) + margin)


def test_people_without_lookalikes_need_only_the_margin_sampling_asks_for() -> None:
    plain = cross_validate(synthetic(people=30), repeats=20)
    lookalikes = cross_validate(synthetic(people=30, lookalikes=4), repeats=20)
    assert plain.margin() < 0.03 < lookalikes.margin()
    assert plain.summary(plain.margin())["held_out_tar"]["min"] > 0.95


def test_the_held_out_people_can_be_judged_on_other_pairs_of_theirs_than_those_fitted() -> None:
    pairs = synthetic(people=12)
    # The same people's pairs under a camera that makes every pair look alike: fitted on the first,
    # judged on these, every held-out impostor gets through.
    blurred = Pairs(np.ones(len(pairs.scores)), np.zeros(len(pairs.scores), dtype=bool), pairs.people)
    fitted_on_photos = cross_validate(pairs, repeats=5).summary()
    judged_on_camera = cross_validate(pairs, repeats=5, judged=blurred).summary()
    assert fitted_on_photos["held_out_far"]["max"] < 0.05
    assert judged_on_camera["held_out_far"]["min"] == 1.0
    assert judged_on_camera["fitted_threshold"] == fitted_on_photos["fitted_threshold"]
    stranger = Pairs(np.ones(1), np.zeros(1, dtype=bool), [("p00", "someone-else")])
    with pytest.raises(InvalidInput, match="1 people in the judged pairs are not in the fitted ones"):
        cross_validate(pairs, repeats=1, judged=stranger)
