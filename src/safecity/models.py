"""Every domain's tables, imported in one place so Alembic and the tests see the whole schema."""

from __future__ import annotations

from safecity.accounts import models as accounts_models
from safecity.alerts import models as alerts_models
from safecity.audit import models as audit_models
from safecity.cameras import models as cameras_models
from safecity.core.db import Base

metadata = Base.metadata

__all__ = ["accounts_models", "alerts_models", "audit_models", "cameras_models", "metadata"]
