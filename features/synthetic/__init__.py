"""Synthetic Wenzhou credit data: the three sources, their faults and the ground truth.

No real Wenzhou credit data can be published, so ``generate`` writes a delivery with the
shape, codes, volumes and faults of the real ones (one file per catalog table,
``delivery.json``, ``manifest.json``) plus ``truth/default_probability.parquet``, the true
12-month default probability of the process that drives the simulated defaults, given what
the records can reveal by the end of each month (see ``latent``) — for evaluation only.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     result = generate(GeneratorConfig(entities=500, seed=1), Path(tmp))
...     (result.out / "entities.parquet").exists(), len(result.row_counts)
(True, 20)
"""

from features.synthetic.config import GeneratorConfig
from features.synthetic.pipeline import GenerationResult, generate

__all__ = ["GenerationResult", "GeneratorConfig", "generate"]
