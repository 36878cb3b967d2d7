"""Latent creditworthiness, the Wenzhou credit cycle, strain, distress and default.

Every entity has, each month ``j``, a **distress score** ``s`` on the logit scale (higher is
worse)::

    s[i, j] = base[i] + young[i, j] + k_s·L_s[i]·stress[j] + k_c·L_c[i]·covid[j] + u[i, j]

- ``base``: entity type, industry, district and size effects plus a small persistent
  entity-specific quality ``α ~ N(0, σ_α²)`` (``quality``), which the compliance records
  (penalties, arrears, annual reports, commitments) weigh more heavily than defaults do, so
  an entity's record over the years reveals it;
- ``young``: new entities are riskier, decaying over their first years;
- ``stress``: the shared Wenzhou credit cycle — the tail of the 2011–2014 guarantee-chain
  (担保链) crisis with a stress period around 2015–2016 — and ``covid``, the 2020 shock; each
  entity loads on them by industry (manufacturing and construction on the credit stress,
  catering, culture and transport on COVID) and district (guarantee-chain districts);
- ``u``: a short-memory AR(1) path, ``u[j] = ρ·u[j-1] + σ·ε``: month-to-month noise that no
  record reflects, part of the outcome's randomness rather than of what can be known.

With ``x = s − base_logit`` (0 for a typical entity), ``s`` drives a monthly **distress
chain**; every transition probability is ``sigmoid(logit + slope·x)`` (`LatentParameters`):

- **healthy → strained**: cash-flow strain (资金紧张) begins. The strained spell is the
  persistent state that drives defaults, and it shows in the records: a strained entity that
  turns to banks (``seeks_credit``) shops for credit (a burst of pre-loan inquiries, most
  declined, see ``pboc_relations``), one that does not first puts off its public obligations
  (social-insurance arrears, taxes, fees: arrears, penalties, abnormal-operation listings and
  a lower tax grade, see ``government`` and ``listings``); borrowers pay late now and then
  and draw more on their lines (``pboc_monthly``), private loans cost more
  (``private_lending``). Whether an entity seeks credit is drawn once and does not change its
  risk, only where its strain shows: most employers registered for social insurance put that
  off first, most other entities go to the banks.
- **strained → 1–30 days behind**, or **strained → healthy** (the spell ends), the first
  likelier and the second rarer the higher ``x``; a healthy entity rarely falls behind
  directly (a sudden shock).
- **behind**: like the PBOC overdue buckets, a delinquent entity rolls on to the next bucket
  (31–60, 61–90 days) with probability ``r_k`` or catches up, still strained; rolling on from
  stage 3 is a **default** (91+ days past due), which is absorbing. Defaults are only allowed
  inside the delivered window (during the burn-in a stage-3 entity cures instead).

Every observable table is a noisy, partial view of ``x``, of the strain and of the stage, and
every default shows up in the records in its month (see ``pboc``, ``private_lending`` and
``listings``).

The **true 12-month default probability** (``truth/``) of month ``m`` is the probability, as
of the end of month ``m``, that an entity active in ``m`` and not defaulted by month ``m − 1``
defaults in months ``m … m+11`` — the twelve months of records reported after the as-of
date (a PBOC month is reported in the next month) — given its state in month ``m − 1``, the
last month whose records are all known by then: its stage and strain, ``base``, the known
path of its age, and the Wenzhou cycle *as known then*: held at its level of month ``m − 1``,
since no analyst in November 2019 knew of the 2020 shock (with the realised path instead,
the truth would rank catering above manufacturing for 2020 before anything in the records
said so, and no model could reach its AUC). The short-lived noise ``u`` is averaged out
(each month's rates over its stationary law, by the probit approximation
``E[sigmoid(a + bσZ)] ≈ sigmoid(a / sqrt(1 + πb²σ²/8))``, propagated mean-field), with the
constant deregistration hazard as a competing risk. It is what a perfect analyst of the
records could know, so its AUC is the ceiling a model can reach.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic.registry import DEREGISTRATION_PER_YEAR, Registry
from features.synthetic.timeline import Timeline, stream

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

NOT_ACTIVE, DEFAULTED = -1, 4


@dataclass(frozen=True)
class LatentParameters:
    """Parameters of the latent process (see the module docstring).

    Each monthly transition probability is ``sigmoid(logit + slope·x)`` with ``x = s −
    base_logit`` the entity's distress relative to a typical entity.
    """

    base_logit: float = -6.0
    alpha_sd: float = 0.25
    rho: float = 0.5
    innovation_sd: float = 0.43
    #: healthy → strained (H → S)
    strain_logit: float = -4.85
    strain_slope: float = 1.0
    #: strained → 1–30 days behind (S → 1)
    slip_logit: float = -3.0
    slip_slope: float = 0.5
    #: strained → healthy (S → H), falls with x
    recover_logit: float = -2.4
    recover_slope: float = -0.5
    #: healthy → 1–30 days behind without a strained spell first (a sudden shock)
    shock_logit: float = -9.0
    shock_slope: float = 1.0
    #: share that turns to banks when strained: employers registered for social insurance
    #: (which they can put off first), other entities
    seeks_credit: tuple[float, float] = (0.5, 0.9)
    roll_logits: tuple[float, float, float] = (0.1, 1.0, 1.6)
    roll_slope: float = 0.5
    young_effect: float = 0.7
    young_months: float = 30.0
    stress_scale: float = 0.6
    covid_scale: float = 0.8
    #: by entity type: enterprise, individual business, cooperative
    type_effect: tuple[float, float, float] = (0.0, 0.2, 0.15)
    size_effect: float = -0.12


#: Industry effects on the distress logit and loadings on the credit stress and COVID.
_INDUSTRY_EFFECT = dict(
    zip(
        "ABCDEFGHIJKLMNOPQRST",
        (
            0.1,
            0.2,
            0.1,
            -0.5,
            0.3,
            0.0,
            0.1,
            0.2,
            -0.2,
            -0.1,
            0.3,
            0.1,
            -0.2,
            -0.2,
            0.0,
            -0.2,
            -0.3,
            0.1,
            0.0,
            0.0,
        ),
        strict=True,
    )
)
_STRESS_LOADING = dict(
    zip(
        "ABCDEFGHIJKLMNOPQRST",
        (
            0.4,
            0.8,
            1.0,
            0.3,
            1.0,
            0.8,
            0.6,
            0.5,
            0.4,
            0.6,
            1.0,
            0.7,
            0.4,
            0.3,
            0.4,
            0.3,
            0.3,
            0.5,
            0.3,
            0.3,
        ),
        strict=True,
    )
)
_COVID_LOADING = dict(
    zip(
        "ABCDEFGHIJKLMNOPQRST",
        (
            0.4,
            0.4,
            0.6,
            0.2,
            0.5,
            0.7,
            0.9,
            1.3,
            0.3,
            0.3,
            0.5,
            0.6,
            0.3,
            0.3,
            0.9,
            0.8,
            0.3,
            1.0,
            0.3,
            0.3,
        ),
        strict=True,
    )
)
#: District order as in ``names.DISTRICTS``: effect, stress loading multiplier (瑞安, 乐清 and
#: 永嘉 carried most of the guarantee-chain crisis; mountain counties are poorer).
_DISTRICT_EFFECT = (0.0, 0.0, 0.0, 0.05, 0.05, 0.05, 0.05, 0.15, 0.15, 0.0, 0.0, 0.05)
_DISTRICT_STRESS = (1.0, 1.0, 1.0, 0.9, 1.2, 1.0, 1.0, 0.9, 0.9, 1.2, 1.25, 1.0)


def credit_cycle(months_since_1970: npt.ArrayLike) -> tuple[Floats, Floats]:
    """The shared Wenzhou cycle: (credit stress, COVID shock) for calendar months.

    Credit stress is the 2011–2014 guarantee-chain crisis and a second stress period peaking
    in mid-2015; the COVID shock starts in 2020-02 and fades over about a year.

    Examples
    --------
    >>> stress, covid = credit_cycle([(2015 - 1970) * 12 + 6, (2018 - 1970) * 12])
    >>> bool(stress[0] > 0.9 > 0.1 > stress[1]), covid.tolist()
    (True, [0.0, 0.0])
    """
    m = np.asarray(months_since_1970, dtype=np.float64)
    year = 1970.0 + m / 12.0
    stress = np.exp(-(((year - 2015.5) / 0.9) ** 2)) + np.exp(-(((year - 2012.8) / 1.2) ** 2))
    since = m - ((2020 - 1970) * 12 + 1)
    covid = np.where(
        since >= 0,
        1.2 * np.exp(-np.maximum(since, 0) / 4.0) + 0.2 * np.exp(-np.maximum(since, 0) / 18.0),
        0.0,
    )
    return stress, covid


def _sigmoid(x: npt.NDArray[np.floating]) -> Floats:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


@dataclass(frozen=True)
class Transitions:
    """Monthly transition probabilities of the distress chain for given ``x = s − base_logit``.

    With ``variance > 0`` each probability is averaged over ``x + N(0, variance)`` (the probit
    approximation ``E[sigmoid(a + bZσ)] ≈ sigmoid(a / sqrt(1 + πb²σ²/8))``).
    """

    shock: Floats
    strain: Floats
    slip: Floats
    recover: Floats
    rolls: tuple[Floats, Floats, Floats]

    @classmethod
    def at(cls, params: LatentParameters, x: Floats, variance: float = 0.0) -> Transitions:
        """The transition probabilities at distress ``x``."""

        def rate(logit: float, slope: float) -> Floats:
            return _sigmoid((logit + slope * x) / np.sqrt(1.0 + np.pi * slope**2 * variance / 8))

        p = params
        g1, g2, g3 = p.roll_logits
        return cls(
            shock=rate(p.shock_logit, p.shock_slope),
            strain=rate(p.strain_logit, p.strain_slope),
            slip=rate(p.slip_logit, p.slip_slope),
            recover=rate(p.recover_logit, p.recover_slope),
            rolls=(rate(g1, p.roll_slope), rate(g2, p.roll_slope), rate(g3, p.roll_slope)),
        )


@dataclass(frozen=True)
class Latent:
    """The simulated latent paths of every entity on the timeline grid.

    ``score`` is ``s`` (float32, N × months), ``stage`` the distress stage (int8: -1 not
    registered, 0 current, 1–3 delinquent, 4 defaulted), ``strained`` whether the entity is
    in a strained spell (current or behind), ``default_month`` the grid index of the default
    or -1.
    """

    timeline: Timeline
    params: LatentParameters
    score: npt.NDArray[np.float32]
    stage: npt.NDArray[np.int8]
    strained: npt.NDArray[np.bool_]
    default_month: Ints
    registered_month: Ints
    deregistered_month: Ints
    base: Floats
    quality: Floats  # the persistent entity effect α inside ``base``
    seeks_credit: npt.NDArray[np.bool_]  # copes with strain by applying for bank credit
    stress_loading: Floats
    covid_loading: Floats
    deregistration_hazard: Floats  # monthly

    def deterministic(self, j: int, cycle_month: int | None = None) -> Floats:
        """The known part of ``s`` in month ``j`` (everything except the AR(1) path), with
        the cycle of month ``cycle_month`` (default ``j``: the realised cycle)."""
        p = self.params
        stress, covid = credit_cycle(
            self.timeline.first + (j if cycle_month is None else cycle_month)
        )
        age = np.maximum(j - self.registered_month, 0)
        young = p.young_effect * np.exp(-age / p.young_months)
        return (
            self.base
            + young
            + p.stress_scale * self.stress_loading * float(stress)
            + p.covid_scale * self.covid_loading * float(covid)
        )

    def active(self, j: int) -> npt.NDArray[np.bool_]:
        """Registered and not yet deregistered in month ``j``."""
        result: npt.NDArray[np.bool_] = (self.registered_month <= j) & (j < self.deregistered_month)
        return result

    def default_probability(self, j: int, rows: Ints) -> Floats:
        """True probability that entities ``rows`` (not defaulted by month ``j``; one not yet
        registered counts as healthy) default within months ``j+1 … j+12``, given their
        state in month ``j`` and the cycle held at its level of month ``j`` (see the module
        docstring)."""
        p = self.params
        stage = self.stage[rows, j]
        strained = self.strained[rows, j]
        probs = [
            ((stage <= 0) & ~strained).astype(np.float64),
            ((stage == 0) & strained).astype(np.float64),
            *((stage == k).astype(np.float64) for k in range(1, 4)),
        ]
        survive = 1.0 - self.deregistration_hazard[rows]
        alive = np.ones(rows.size)
        total = np.zeros(rows.size)
        variance = p.innovation_sd**2 / (1.0 - p.rho**2)  # u is noise: its stationary law
        for k in range(1, 13):
            x = self.deterministic(j + k, cycle_month=j)[rows] - p.base_logit
            t = Transitions.at(p, x, variance)
            healthy, strained_now, b1, b2, b3 = probs
            r1, r2, r3 = t.rolls
            alive = alive * survive
            total += alive * b3 * r3
            stay = healthy * (1 - t.shock)
            probs = [
                stay * (1 - t.strain) + strained_now * (1 - t.slip) * t.recover,
                stay * t.strain
                + strained_now * (1 - t.slip) * (1 - t.recover)
                + b1 * (1 - r1)
                + b2 * (1 - r2)
                + b3 * (1 - r3),
                healthy * t.shock + strained_now * t.slip,
                b1 * r1,
                b2 * r2,
            ]
        return total

    def truth_batches(self, uscc: pa.Array, labels: pa.Array) -> Iterator[pa.RecordBatch]:
        """One batch per delivered month ``m``: (uscc, month, default_probability) of every
        entity active in ``m`` and not defaulted by month ``m - 1``: the probability of a
        default in months ``m … m+11`` given the state in month ``m - 1``."""
        t = self.timeline
        for j in range(t.j_start, t.j_end + 1):
            rows = np.flatnonzero(self.active(j) & (self.stage[:, j - 1] < DEFAULTED))
            probability = self.default_probability(j - 1, rows)
            yield pa.record_batch(
                [
                    uscc.take(pa.array(rows)),
                    labels.take(pa.array(np.full(rows.size, j, dtype=np.int64))),
                    pa.array(probability.astype(np.float32)),
                ],
                names=["uscc", "month", "default_probability"],
            )


def _step(
    stage: npt.NDArray[np.int8],
    strained: npt.NDArray[np.bool_],
    t: Transitions,
    draw: Floats,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """One month of the distress chain: (stage, strained) after it, from one uniform draw."""
    new, new_strained = stage.copy(), strained.copy()
    healthy = (stage == 0) & ~strained
    new[healthy & (draw < t.shock)] = 1
    new_strained[healthy & (draw < t.shock + (1 - t.shock) * t.strain)] = True
    current_strained = (stage == 0) & strained
    slipped = current_strained & (draw < t.slip)
    new[slipped] = 1
    recovered = current_strained & ~slipped & (draw < t.slip + (1 - t.slip) * t.recover)
    new_strained[recovered] = False
    for k, roll in enumerate(t.rolls, start=1):
        at_k = stage == k
        rolled = at_k & (draw < roll)
        new[at_k & ~rolled] = 0  # caught up, still strained
        new[rolled] = k + 1
    return new, new_strained


def simulate(
    registry: Registry,
    timeline: Timeline,
    seed: int,
    params: LatentParameters | None = None,
    *,
    distress_shift: float = 0.0,
) -> Latent:
    """Simulate the latent score and the distress chain of every entity.

    ``distress_shift`` is added to every entity's baseline distress (a riskier or safer
    population than the calibrated one; see `GeneratorConfig.distress_shift`)."""
    p = params or LatentParameters()
    rng = stream(seed, "latent")
    n, months = registry.n, timeline.n_months
    industries = np.array(list("ABCDEFGHIJKLMNOPQRST"))[registry.industry]
    effect = np.vectorize(_INDUSTRY_EFFECT.__getitem__, otypes=[float])(industries)
    stress_loading = np.vectorize(_STRESS_LOADING.__getitem__, otypes=[float])(industries)
    stress_loading *= np.array(_DISTRICT_STRESS)[registry.district]
    covid_loading = np.vectorize(_COVID_LOADING.__getitem__, otypes=[float])(industries)
    log_capital = np.log(registry.capital)
    size = (log_capital - log_capital.mean()) / max(float(log_capital.std()), 1e-9)
    base = (
        p.base_logit
        + np.array(p.type_effect)[registry.entity_type]
        + effect
        + np.array(_DISTRICT_EFFECT)[registry.district]
        + p.size_effect * size
    )
    quality = p.alpha_sd * rng.standard_normal(n)
    base = base + quality + distress_shift
    registered_month = timeline.index_of(registry.registered_on)
    deregistered_month = np.where(
        np.isnat(registry.deregistered_on), months + 1, timeline.index_of(registry.deregistered_on)
    )
    hazard_year = np.array(DEREGISTRATION_PER_YEAR)[registry.entity_type]
    latent = Latent(
        timeline=timeline,
        params=p,
        score=np.empty((n, months), dtype=np.float32),
        stage=np.empty((n, months), dtype=np.int8),
        strained=np.empty((n, months), dtype=np.bool_),
        default_month=np.full(n, -1, dtype=np.int64),
        registered_month=registered_month,
        deregistered_month=deregistered_month,
        base=base,
        quality=quality,
        seeks_credit=np.zeros(n, dtype=np.bool_),
        stress_loading=stress_loading,
        covid_loading=covid_loading,
        deregistration_hazard=1.0 - (1.0 - hazard_year) ** (1.0 / 12.0),
    )
    stationary_sd = p.innovation_sd / np.sqrt(1.0 - p.rho**2)
    u = stationary_sd * rng.standard_normal(n)
    stage = np.zeros(n, dtype=np.int8)
    strained = np.zeros(n, dtype=np.bool_)
    for j in range(months):
        if j:
            u = p.rho * u + p.innovation_sd * rng.standard_normal(n)
        s = latent.deterministic(j) + u
        active = latent.active(j)
        draw = rng.random(n)
        stage = np.where(active & (stage == NOT_ACTIVE), 0, stage).astype(np.int8)
        new, new_strained = _step(stage, strained, Transitions.at(p, s - p.base_logit), draw)
        if j < timeline.j_start:
            new[(stage == 3) & (new == DEFAULTED)] = 0  # no defaults during the burn-in
        defaulted_now = (new == DEFAULTED) & (stage == 3) & active
        latent.default_month[defaulted_now] = j
        new[~active] = NOT_ACTIVE
        new[active & (latent.default_month >= 0)] = DEFAULTED
        new_strained &= (new >= 0) & (new < DEFAULTED)
        stage, strained = new, new_strained
        latent.score[:, j] = s
        latent.stage[:, j] = stage
        latent.strained[:, j] = strained
    latent.seeks_credit[:] = rng.random(n) < np.where(registry.insured, *p.seeks_credit)
    return latent
