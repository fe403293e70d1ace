"""``python -m services.user --host H --port P --config-url URL --discovery-url URL …``."""

from services.common.runtime import serve
from services.user.app import MIGRATIONS, NAME, SCHEMA, build
from services.user.settings import UserSettings

if __name__ == "__main__":
    serve(NAME, UserSettings, build, schema=SCHEMA, migrations=MIGRATIONS)
