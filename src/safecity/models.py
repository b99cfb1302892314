"""Every domain's tables, imported in one place so Alembic and the tests see the whole schema."""

from __future__ import annotations

from safecity.core import deadletters, jobs, outbox
from safecity.core.db import Base
from safecity.domains import domain_modules

MODELS = [outbox, deadletters, jobs, *domain_modules("models")]
metadata = Base.metadata
