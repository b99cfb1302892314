"""Choosing a face-match threshold that holds on people it was not fitted to.

A threshold fitted to the pairs it is then judged on looks better than it is: on the shared CCTV pairs
dlib's 0.907 gave FAR 0.76% there and 2.2% on a held-out set of other people. So thresholds are
judged by cross-validation over identities: the people are split at random into folds; for each fold
the threshold is fitted (FAR ≤ 1%) on pairs whose people are all outside it and judged on pairs whose
people are all inside it (pairs that straddle folds are left out); repeated over many random
partitions, this gives the spread of the FAR a threshold fitted elsewhere has on new people. The
operating threshold is then chosen with margin: the threshold fitted on all the pairs, raised by the
smallest amount that keeps the held-out FAR at or under the target in a high quantile (90%) of the
partitions, not merely on average.

    pairs = Pairs(scores, same, people)
    report = cross_validate(pairs)                 # fitted on training people, judged on the others
    report.summary()                               # spread of held-out FAR and TAR over partitions
    threshold, margin = operating_threshold(pairs)  # fitted on all, raised by the margin the CV needs
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from safecity.core.errors import InvalidInput

Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Pairs:
    """Scored face pairs: similarity, whether the two faces are one person, and who each side is."""

    scores: Scores
    same: npt.NDArray[np.bool_]
    people: Sequence[tuple[str, str]]

    def __post_init__(self) -> None:
        if not len(self.scores) == len(self.same) == len(self.people):
            raise InvalidInput(
                f"{len(self.scores)} scores, {len(self.same)} labels and {len(self.people)} people given",
                hint="give one of each per pair",
            )

    def among(self, group: set[str]) -> Pairs:
        """The pairs whose two people are both in `group`."""
        keep = np.array([a in group and b in group for a, b in self.people], dtype=bool)
        return Pairs(
            self.scores[keep], self.same[keep], [p for p, k in zip(self.people, keep, strict=True) if k]
        )

    def identities(self) -> list[str]:
        return sorted({person for pair in self.people for person in pair})

    @property
    def genuine(self) -> Scores:
        return self.scores[self.same]

    @property
    def impostors(self) -> Scores:
        return self.scores[~self.same]


def threshold_for_far(impostors: Scores, far: float = 0.01) -> float:
    """The lowest threshold at which at most `far` of the impostor scores match (similarity ≥ threshold)."""
    if not len(impostors):
        raise InvalidInput("no different-person pairs to fit a threshold on", hint="add impostor pairs")
    ranked = np.sort(np.asarray(impostors, dtype=np.float64))[::-1]
    allowed = int(np.floor(far * len(ranked) + 1e-9))
    if allowed >= len(ranked):
        return float(ranked[-1])
    return float(np.nextafter(ranked[allowed], np.inf))


def rates(pairs: Pairs, threshold: float) -> tuple[float, float]:
    """(TAR, FAR) at a threshold; NaN where the pairs hold no genuine or no impostor pair."""
    match = pairs.scores >= threshold
    tar = float(match[pairs.same].mean()) if pairs.same.any() else float("nan")
    far = float(match[~pairs.same].mean()) if (~pairs.same).any() else float("nan")
    return tar, far


def tar_at_far(pairs: Pairs, far: float = 0.01) -> tuple[float, float]:
    """(TAR, threshold) with the threshold fitted on these very pairs: the optimistic in-sample figure."""
    threshold = threshold_for_far(pairs.impostors, far)
    return rates(pairs, threshold)[0], threshold


def identity_folds(identities: Sequence[str], *, folds: int, rng: np.random.Generator) -> list[set[str]]:
    """A random partition of the people into `folds` groups of (nearly) equal size."""
    if len(identities) < folds or folds < 2:
        raise InvalidInput(
            f"{len(identities)} identities cannot be split into {folds} folds",
            hint="use pairs of more people",
        )
    order = rng.permutation(len(identities))
    return [{identities[i] for i in order[k::folds]} for k in range(folds)]


@dataclass(frozen=True)
class Fold:
    """One held-out group: the threshold fitted on the other people and the group's own scores."""

    threshold: float
    genuine: Scores
    impostors: Scores

    def counts(self, threshold: float) -> tuple[int, int]:
        """(genuine pairs accepted, impostor pairs accepted) at a threshold."""
        return int((self.genuine >= threshold).sum()), int((self.impostors >= threshold).sum())


def _spread(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray([v for v in values if not np.isnan(v)], dtype=np.float64)
    if not array.size:
        return {}
    return {
        "min": round(float(array.min()), 4),
        "median": round(float(np.median(array)), 4),
        "q90": round(float(np.quantile(array, 0.9)), 4),
        "max": round(float(array.max()), 4),
    }


@dataclass(frozen=True)
class CrossValidation:
    """Held-out results of fitting a threshold on some people and applying it to the others.

    `repeats` holds, per random partition of the people into folds, each fold's threshold (fitted on
    the other folds) and its scores. A partition's held-out FAR pools its folds' false accepts over
    their impostor pairs: each fold alone holds a few dozen impostor pairs, too few to measure 1%.
    """

    repeats: list[list[Fold]]
    far_target: float

    def pooled(self, margin: float = 0.0) -> tuple[Scores, Scores]:
        """Per partition: the held-out (TAR, FAR) with every fold's threshold raised by `margin`."""
        tars, fars = [], []
        for folds in self.repeats:
            accepted = np.array([fold.counts(fold.threshold + margin) for fold in folds])
            genuine = sum(len(fold.genuine) for fold in folds)
            impostors = sum(len(fold.impostors) for fold in folds)
            tars.append(accepted[:, 0].sum() / genuine if genuine else np.nan)
            fars.append(accepted[:, 1].sum() / impostors if impostors else np.nan)
        return np.asarray(tars), np.asarray(fars)

    def margin(self, quantile: float = 0.9, step: float = 0.0025, most: float = 0.5) -> float:
        """The smallest rise of the fitted thresholds that keeps the `quantile` of held-out FAR ≤ target."""
        for margin in np.arange(0.0, most + step / 2, step):
            _, fars = self.pooled(float(margin))
            if np.nanquantile(fars, quantile) <= self.far_target + 1e-12:
                return float(round(margin, 6))
        return most

    def summary(self, margin: float = 0.0) -> dict[str, Any]:
        """The spread of held-out FAR and TAR (pooled per partition) and of the fitted thresholds."""
        tars, fars = self.pooled(margin)
        folds = [fold for partition in self.repeats for fold in partition]
        per_fold_far = [
            float(np.mean(f.impostors >= f.threshold + margin)) for f in folds if len(f.impostors)
        ]
        return {
            "partitions": len(self.repeats),
            "folds": len(self.repeats[0]) if self.repeats else 0,
            "threshold_raised_by": round(margin, 4),
            "held_out_far": _spread(fars.tolist()),
            "held_out_tar": _spread(tars.tolist()),
            "share_of_partitions_far_over_target": round(float(np.mean(fars > self.far_target + 1e-12)), 4),
            "per_fold_far": _spread(per_fold_far),
            "fitted_threshold": _spread([f.threshold for f in folds]),
        }


Fit = Callable[[Pairs], float]


def cross_validate(
    pairs: Pairs,
    *,
    far: float = 0.01,
    folds: int = 3,
    repeats: int = 100,
    seed: int = 0,
    fit: Fit | None = None,
    judged: Pairs | None = None,
) -> CrossValidation:
    """Fits a threshold on the people outside each fold and keeps the fold's scores to judge it by.

    `fit` turns training pairs into a threshold (default: FAR ≤ `far` on them). Pairs of two people
    from different folds belong to no fold and are left out of that partition. `judged` (default:
    `pairs`) holds the pairs each fold is judged on: e.g. fitted on photo and CCTV pairs, judged on
    the held-out people's CCTV pairs only; its people must be among those of `pairs`.
    """
    fitter = fit or (lambda train: threshold_for_far(train.impostors, far))
    rng = np.random.default_rng(seed)
    identities = pairs.identities()
    judged = pairs if judged is None else judged
    strangers = set(judged.identities()) - set(identities)
    if strangers:
        raise InvalidInput(
            f"{len(strangers)} people in the judged pairs are not in the fitted ones",
            hint="judge on pairs of the same people",
        )
    partitions = []
    for _ in range(repeats):
        held = []
        for group in identity_folds(identities, folds=folds, rng=rng):
            train, test = pairs.among(set(identities) - group), judged.among(group)
            if not (~train.same).any():
                continue
            held.append(Fold(fitter(train), test.genuine, test.impostors))
        partitions.append(held)
    return CrossValidation(partitions, far)


def operating_threshold(
    pairs: Pairs,
    *,
    far: float = 0.01,
    quantile: float = 0.9,
    folds: int = 3,
    repeats: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """(threshold, margin): FAR ≤ `far` fitted on all the pairs, raised by the cross-validated margin.

    The margin is the smallest rise that keeps the held-out FAR of thresholds fitted on other people
    at or under `far` in `quantile` of the partitions (`CrossValidation.margin`).
    """
    margin = cross_validate(pairs, far=far, folds=folds, repeats=repeats, seed=seed).margin(quantile)
    return threshold_for_far(pairs.impostors, far) + margin, margin
