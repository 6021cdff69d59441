"""The base of every schedules.yaml model, shared by ``digest.config`` and the backends
(each backend's settings live beside it in ``digest.backends.<type>``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, and strict about unknown keys so a typo is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
