"""信用修复 / credit repair (to be filled in: a placeholder router so that the app includes it)."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas.common import ERRORS

router = APIRouter(prefix="/v1", responses=ERRORS)
