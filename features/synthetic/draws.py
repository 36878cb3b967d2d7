"""Small vectorised random draws and string helpers shared by the registry builders."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Strings = npt.NDArray[np.str_]


def choice(rng: np.random.Generator, n: int, weights: npt.ArrayLike) -> npt.NDArray[np.int64]:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(p.size, size=n, p=p / p.sum())


def join(*parts: npt.ArrayLike) -> Strings:
    """Element-wise string concatenation."""
    out = np.asarray(parts[0]).astype(np.str_)
    for part in parts[1:]:
        out = np.strings.add(out, np.asarray(part).astype(np.str_))
    return out


def pick(rng: np.random.Generator, pool: tuple[str, ...], n: int) -> Strings:
    return np.array(pool)[rng.integers(0, len(pool), n)]


def pick_by_group(
    rng: np.random.Generator, pools: list[tuple[str, ...]], group: npt.NDArray[np.int64]
) -> Strings:
    """One word per row from the pool of the row's group."""
    flat = np.array([w for pool in pools for w in pool])
    counts = np.array([len(pool) for pool in pools])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    index = starts[group] + np.floor(rng.random(group.size) * counts[group]).astype(np.int64)
    result: Strings = flat[index]
    return result
