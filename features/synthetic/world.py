"""Everything a table builder needs: config, grid, registry, latent paths, random streams."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from features.synthetic.config import GeneratorConfig
from features.synthetic.latent import Latent
from features.synthetic.registry import Registry
from features.synthetic.schema import flat
from features.synthetic.timeline import Timeline, WorkingDays, stream


@dataclass(frozen=True)
class World:
    """The shared state of one generation run; table builders only read it."""

    config: GeneratorConfig
    timeline: Timeline
    registry: Registry
    latent: Latent
    working_days: WorkingDays
    uscc: pa.Array = field(init=False)
    subject: pa.Array = field(init=False)
    labels: pa.Array = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "uscc", flat(pa.array(self.registry.uscc, type=pa.string())))
        object.__setattr__(
            self, "subject", flat(pa.array(self.registry.subject_id, type=pa.string()))
        )
        object.__setattr__(self, "labels", self.timeline.labels())

    def rng(self, name: str) -> np.random.Generator:
        """The random stream ``name`` of this run."""
        return stream(self.config.seed, name)

    def uscc_of(self, entity: npt.ArrayLike) -> pa.Array:
        """USCC of each entity index."""
        return flat(self.uscc.take(pa.array(np.asarray(entity, dtype=np.int64))))

    def subject_of(self, entity: npt.ArrayLike) -> pa.Array:
        """Borrower / listed subject (USCC or owner's resident ID) of each entity index."""
        return flat(self.subject.take(pa.array(np.asarray(entity, dtype=np.int64))))

    def month_label(self, j: npt.ArrayLike) -> pa.Array:
        """``YYYY-MM`` of each grid index."""
        return flat(self.labels.take(pa.array(np.asarray(j, dtype=np.int64))))

    @property
    def last_day(self) -> np.datetime64:
        """Last day of the last delivered month."""
        first_after = self.timeline.month_start(np.array([self.timeline.j_end + 1]))[0]
        return np.datetime64(first_after - np.timedelta64(1, "D"), "D")
