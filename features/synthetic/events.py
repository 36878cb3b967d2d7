"""Monthly event draws shared by the government-data builders.

An observable event (a penalty, an arrears month, a licence) happens to entity ``i`` in
month ``j`` with a probability that is a function of the latent state — the distress score,
the strained spell and the stage (see ``latent``), and for compliance records the persistent
entity effect; drawing is one vectorised Bernoulli draw per month over all entities.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from features.synthetic.world import World

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: Weight of the persistent entity effect α on compliance records (penalties, social-insurance
#: arrears, annual reports, commitments), on top of its weight through the latent score: an
#: entity's compliance record over the years reveals it.
COMPLIANCE = 2.0


def sigmoid(x: npt.ArrayLike) -> Floats:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def logit(p: float) -> float:
    """The inverse of `sigmoid`."""
    return float(np.log(p / (1.0 - p)))


def distress(world: World, j: int) -> Floats:
    """Latent score in month ``j`` relative to the baseline (0 = a typical entity)."""
    result: Floats = world.latent.score[:, j].astype(np.float64) - world.latent.params.base_logit
    return result


def operating(world: World, j: int) -> Bools:
    """Registered and not defaulted in month ``j`` (current or behind)."""
    stage = world.latent.stage[:, j]
    result: Bools = (stage >= 0) & (stage <= 3)
    return result


def quality(world: World) -> Floats:
    """The persistent entity effect α (higher is worse): compliance records reflect it."""
    return world.latent.quality


def strained(world: World, j: int) -> Bools:
    """In a strained spell in month ``j`` (current but strained, or behind)."""
    result: Bools = world.latent.strained[:, j]
    return result


def strained_quietly(world: World, j: int) -> Bools:
    """Strained in month ``j`` and not seeking bank credit: it defers public obligations."""
    result: Bools = world.latent.strained[:, j] & ~world.latent.seeks_credit
    return result


def behind(world: World, j: int) -> Bools:
    """1–90 days behind in month ``j``."""
    stage = world.latent.stage[:, j]
    result: Bools = (stage >= 1) & (stage <= 3)
    return result


def defaulted(world: World, j: int) -> Bools:
    """Registered and defaulted at or before month ``j``."""
    result: Bools = world.latent.stage[:, j] == 4
    return result


def monthly_events(
    world: World, name: str, probability: Callable[[int], Floats], first: int, last: int
) -> tuple[Ints, Ints]:
    """(entity, month) of every event in months ``first … last``.

    ``probability(j)`` gives each entity's event probability in month ``j`` (0 where the
    entity cannot have the event).
    """
    rng = world.rng(name)
    entities, months = [], []
    for j in range(first, last + 1):
        hits = np.flatnonzero(rng.random(world.registry.n) < probability(j))
        entities.append(hits)
        months.append(np.full(hits.size, j, dtype=np.int64))
    if not entities:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(entities), np.concatenate(months)


def pick(
    rng: np.random.Generator, options: tuple[tuple[str, float], ...], n: int
) -> npt.NDArray[np.str_]:
    """``n`` codes drawn with the given weights."""
    weights = np.array([w for _, w in options])
    result: npt.NDArray[np.str_] = np.array([c for c, _ in options])[
        rng.choice(len(options), n, p=weights / weights.sum())
    ]
    return result


def sequence_ids(prefix: str, n: int, width: int = 10) -> npt.NDArray[np.str_]:
    """``prefix`` + zero-padded 1 … n.

    Examples
    --------
    >>> sequence_ids("AO", 2, 4).tolist()
    ['AO0001', 'AO0002']
    """
    result: npt.NDArray[np.str_] = np.strings.add(prefix, zero_pad(np.arange(1, n + 1), width))
    return result


def zero_pad(numbers: npt.ArrayLike, width: int) -> npt.NDArray[np.str_]:
    """Non-negative integers as zero-padded strings (also for empty input).

    Examples
    --------
    >>> zero_pad([7, 123], 4).tolist()
    ['0007', '0123']
    """
    values = np.asarray(numbers, dtype=np.int64)
    if values.size == 0:
        return np.zeros(0, dtype=f"<U{width}")
    result: npt.NDArray[np.str_] = np.char.zfill(values.astype(np.str_), width)
    return result
