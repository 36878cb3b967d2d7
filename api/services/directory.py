"""Who is who: entity facts from the warehouse register, and each 个体工商户's operator.

Loaded once from the warehouse's ``entities`` and ``persons`` tables (read only). Resident
IDs and names stay in memory for masking and for the subject's own report; they are never
logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from api.errors import NotFound

#: entity type whose records and data are its operator's, a natural person's
OWNER_IS_ENTITY = "个体工商户"


@dataclass(frozen=True, slots=True)
class EntityFacts:
    uscc: str
    name: str
    entity_type: str
    industry: str
    district: str
    town: str | None
    village: str | None
    registered_on: str
    legal_rep_id: str
    legal_rep_name: str | None

    @property
    def natural_person(self) -> bool:
        """True when the entity's data is a natural person's (its operator's)."""
        return self.entity_type == OWNER_IS_ENTITY


@dataclass(frozen=True)
class Directory:
    entities: dict[str, EntityFacts]
    operated_by: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def entity(self, uscc: str) -> EntityFacts:
        facts = self.entities.get(uscc)
        if facts is None:
            raise NotFound("uscc", "registered", "no market entity with this code")
        return facts

    def businesses_of(self, resident_id: str) -> tuple[str, ...]:
        """USCCs of the 个体工商户 operated by this person (their scores are the person's)."""
        return self.operated_by.get(resident_id, ())


def load_directory(warehouse: Path) -> Directory:
    """Entities and operators from the warehouse (an empty directory if it does not exist)."""
    if not warehouse.exists():
        return Directory({})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT e.uscc, e.name, e.entity_type, e.industry, e.district, e.town, e.village, "
            "CAST(e.registered_on AS VARCHAR), e.legal_rep_id, p.name "
            "FROM entities e LEFT JOIN persons p ON p.resident_id = e.legal_rep_id"
        ).fetchall()
    entities = {row[0]: EntityFacts(*row) for row in rows}
    operated: dict[str, list[str]] = {}
    for facts in entities.values():
        if facts.natural_person:
            operated.setdefault(facts.legal_rep_id, []).append(facts.uscc)
    return Directory(entities, {k: tuple(sorted(v)) for k, v in operated.items()})
