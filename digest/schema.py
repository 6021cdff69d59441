"""The base of every schedules.yaml model, shared by ``digest.config`` and the backends
(each backend's settings live beside it in ``digest.backends.<type>``)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class StrictModel(BaseModel):
    """Frozen, and strict about unknown keys so a typo is an error, not a silent default.

    Every setting whose name ends in ``_env`` names an environment variable. A value
    that cannot be one (it holds a space, a slash, a colon...) is most likely the secret
    itself pasted in by mistake: it is refused without being echoed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _env_names(self) -> Any:
        for name in type(self).model_fields:
            value = getattr(self, name)
            named = name.endswith("_env") and isinstance(value, str)
            if named and not _ENV_NAME.fullmatch(value):
                raise ValueError(
                    f"{name} must be the name of an environment variable (letters, digits "
                    f"and '_'), not the secret itself; the value is not shown. Put the "
                    f"secret in the environment and name the variable here"
                )
        return self
