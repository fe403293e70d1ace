"""Run the config server: ``python -m services.config --host H --port P --repo R [...]``.

Arguments are checked and the repository is opened before the socket is bound, so a wrong
``--repo`` ends the process at once with git's explanation (exit 2) instead of a server that
answers 500 to every request. SIGTERM stops uvicorn gracefully.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from services.common.logs import configure_logging
from services.config.app import build_repository, create_app
from services.config.repository import RepositoryError
from services.config.settings import (
    DEFAULT_BUS_TOPIC,
    DEFAULT_LABEL,
    DEFAULT_PORT,
    DEFAULT_SEARCH_PATH,
    SERVICE_NAME,
    ConfigServerSettings,
)

EXIT_USAGE = 2

log = logging.getLogger("come2us.config")


def parse_arguments(argv: Sequence[str] | None = None) -> ConfigServerSettings:
    parser = argparse.ArgumentParser(prog="python -m services.config",
                                     description="Spring Cloud Config compatible server")
    parser.add_argument("--host", required=True, help="loopback address to bind")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--repo", required=True, help="path or file:// URI of a git repository")
    parser.add_argument("--search-path", default=DEFAULT_SEARCH_PATH,
                        help="folder of the repository holding the files ('' for the root)")
    parser.add_argument("--default-label", default=DEFAULT_LABEL,
                        help="branch, tag or commit served when a request names no label")
    parser.add_argument("--kafka", default=None, help="Kafka bootstrap servers of the bus")
    parser.add_argument("--bus-topic", default=DEFAULT_BUS_TOPIC)
    parser.add_argument("--platform-file", default=None,
                        help="YAML served to every application below the repository's files: "
                             "addresses and public keys the runtime derives from the stack model")
    arguments = parser.parse_args(argv)
    try:
        return ConfigServerSettings(
            host=arguments.host, port=arguments.port, repo=arguments.repo,
            search_path=arguments.search_path, default_label=arguments.default_label,
            kafka=arguments.kafka or None, bus_topic=arguments.bus_topic,
            platform_file=arguments.platform_file,
        )
    except ValidationError as error:
        parser.error(str(error))
        raise  # parser.error exits; this keeps type checkers sure of it


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_arguments(argv)
    configure_logging(SERVICE_NAME)
    try:
        repository = build_repository(settings)
        label, commit = repository.resolve(None)
    except (RepositoryError, LookupError) as error:
        print(f"config-server: cannot serve {settings.repo}: {error}", file=sys.stderr)
        return EXIT_USAGE
    log.info("serving %s/%s, default label %s at %s; bus %s", repository.uri,
             repository.search_path, label, commit,
             f"{settings.bus_topic} at {settings.kafka}" if settings.kafka else "off")
    app = create_app(settings, repository)
    # JSON logging is configured above; uvicorn must not install its own handlers. No access
    # log: clients fetch at start and on refresh, and the repository logs what it reads.
    uvicorn.run(app, host=str(settings.host), port=settings.port, log_level="info",
                access_log=False, log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
