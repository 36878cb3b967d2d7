"""信易贷预授信、信易批、信易租 / pre-approval and eligibility (to be filled in: a placeholder router so that the app includes it)."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas.common import ERRORS

router = APIRouter(prefix="/v1", responses=ERRORS)
