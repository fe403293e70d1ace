"""``python -m services.product --host H --port P --config-url URL --discovery-url URL …``."""

from __future__ import annotations

from services.common.runtime import serve
from services.product.app import MIGRATIONS, NAME, SCHEMA, build
from services.product.settings import ProductSettings

if __name__ == "__main__":
    serve(NAME, ProductSettings, build, schema=SCHEMA, migrations=MIGRATIONS)
