"""Diagnostic: how much of the oracle AUC rests on states no record shows (issue 5).

The truth table's probability (`features.synthetic.latent.Latent.default_probability`) is
computed from the generator's latent state in the month before the as-of month: the
entity's persistent quality α, whether it is in a strained spell, and how many days behind
it is. The records show those only in part. This script rebuilds the generator's world
(same entities and seed as ``wzcredit generate``: registry and latent paths only, no files)
and scores one as-of month with the truth computed from less and less of that state:

1. **as delivered**: α, strain and stage known (the oracle AUC of ``wzcredit train``);
2. **α unknown**: α averaged over its law, like the short-lived noise already is;
3. **and the stage unknown without a bank account**: for an entity with no open PBOC
   account, "1–90 days behind" is replaced by its share among strained entities without an
   account (nothing in the records says how far behind such an entity is until it
   defaults);
4. **and strain unknown**: only the entity's facts, age and the cycle (a floor: what
   the records say about strain is what a model adds above this).

Each is judged by ROC AUC against the default in the 12 months from the as-of month, as
the latent path has it (every such default appears in the records in its month). With
``--predictions FILE`` (a Parquet file with ``uscc`` and a model's ``pd`` for the same
as-of date, e.g. from a training run) the model's AUC on the same entities is printed
beside them.

    .venv/bin/python bench/oracle_gap.py [--entities 1100000] [--seed 0] [--month 2019-12]
                                         [--predictions FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # this folder's name would shadow the `features` package

from features.synthetic.config import GeneratorConfig  # noqa: E402
from features.synthetic.latent import DEFAULTED, Latent  # noqa: E402
from features.synthetic.pboc import build_accounts  # noqa: E402
from features.synthetic.pipeline import build_world  # noqa: E402
from models.metrics import roc_auc  # noqa: E402

Floats = np.ndarray


def without_quality(latent: Latent) -> Latent:
    """The latent paths with α moved from the known part of the score into its noise.

    α is persistent, so treating it as noise in each month's rates is the mean-field
    approximation the truth already makes for the short-lived noise.
    """
    p = latent.params
    noise = p.innovation_sd**2 / (1 - p.rho**2) + p.alpha_sd**2
    params = dataclasses.replace(p, innovation_sd=float(np.sqrt(noise * (1 - p.rho**2))))
    return dataclasses.replace(latent, base=latent.base - latent.quality, params=params)


def blurred(
    latent: Latent, j: int, rows: np.ndarray, hide: np.ndarray, strain: bool, seed: int = 0
) -> Latent:
    """The latent paths with the state in month ``j`` of the ``hide`` rows replaced.

    The days behind of a hidden strained entity become its group's mix: each behind stage
    drawn with its share among the strained ``hide`` rows (``strain=False``); or, with
    ``strain=True``, its whole state (healthy, strained, behind) drawn with the shares of
    all ``hide`` rows. Drawn, not averaged, so that `Latent.default_probability` can run
    unchanged: the AUC of many draws is that of the mixture.
    """
    stage = latent.stage.copy()
    strained = latent.strained.copy()
    rng = np.random.default_rng(seed)
    target = rows[hide]
    if strain:
        pool = np.flatnonzero(hide)
    else:
        pool = np.flatnonzero(hide & strained[rows, j])
        target = target[strained[target, j]]
    donors = rows[pool][rng.integers(0, pool.size, target.size)]
    stage[target, j] = stage[donors, j]
    strained[target, j] = strained[donors, j]
    return dataclasses.replace(latent, stage=stage, strained=strained)


def averaged(
    latent: Latent, j: int, rows: np.ndarray, draws: int, hide: np.ndarray, strain: bool
) -> Floats:
    """Mean over ``draws`` redraws of the hidden states of the default probability."""
    total = np.zeros(rows.size)
    for draw in range(draws):
        redrawn = blurred(latent, j, rows, hide, strain, seed=draw)
        total += redrawn.default_probability(j, rows)
    return total / draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1_100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--month", default="2019-12", help="the truth month (as-of month)")
    parser.add_argument("--predictions", type=Path, help="Parquet with uscc and pd")
    args = parser.parse_args()

    started = time.perf_counter()
    world = build_world(GeneratorConfig(entities=args.entities, seed=args.seed))
    latent, timeline = world.latent, world.timeline
    j = int(timeline.index_of(np.array([np.datetime64(args.month, "M")]))[0])
    if not timeline.j_start <= j <= timeline.j_end - 11:
        parser.error(f"--month {args.month}: its 12 months are not all in the generated data")
    accounts = build_accounts(world)
    print(f"world of {args.entities:,} entities built in {time.perf_counter() - started:.0f} s")

    before = j - 1  # the state the truth of month j conditions on
    rows = np.flatnonzero(latent.active(j) & (latent.stage[:, before] < DEFAULTED))
    d = latent.default_month[rows]
    label = ((d >= j) & (d <= j + 11)).astype(int)
    open_now = (accounts.open_j <= before) & (accounts.close_j > before)
    banked = np.zeros(latent.base.size, dtype=bool)
    banked[accounts.entity[open_now]] = True
    unbanked = ~banked[rows]
    stage = latent.stage[rows, before]
    behind = (stage >= 1) & (stage <= 3)
    print(f"month {args.month}: {rows.size:,} entities, {label.sum():,} defaults in 12 months "
          f"({100 * label.mean():.2f} %)")  # fmt: skip
    print(f"  1-90 days behind the month before: {behind.sum():,}, of them without an open "
          f"bank account {(behind & unbanked).sum():,}; defaults among those: "
          f"{label[behind & unbanked].sum():,} ({100 * label[behind & unbanked].sum() / label.sum():.1f} % of all)")  # fmt: skip

    no_alpha = without_quality(latent)
    variants = {
        "as delivered (α, strain, stage known)": latent.default_probability(before, rows),
        "α unknown": no_alpha.default_probability(before, rows),
        "α unknown, stage unknown without a bank account": averaged(
            no_alpha, before, rows, 5, hide=unbanked, strain=False
        ),
        "α unknown, strain and stage unknown (floor)": averaged(
            no_alpha, before, rows, 5, hide=np.ones(rows.size, dtype=bool), strain=True
        ),
    }
    uscc = np.asarray(world.uscc.take(rows).to_pylist())
    frame = pd.DataFrame({"uscc": uscc, "y": label, **variants})
    model = None
    if args.predictions is not None:
        predictions = pd.read_parquet(args.predictions, columns=["uscc", "pd"])
        frame = frame.merge(predictions, on="uscc", how="inner")
        model = roc_auc(frame["y"], frame["pd"])
        print(f"  {len(frame):,} of them scored in {args.predictions.name}")
    print("truth computed from                                   ROC AUC")
    for name in variants:
        print(f"  {name:<52} {roc_auc(frame['y'], frame[name]):.4f}")
    if model is not None:
        print(f"  {'the model (' + args.predictions.name + ')':<52} {model:.4f}")


if __name__ == "__main__":
    main()
