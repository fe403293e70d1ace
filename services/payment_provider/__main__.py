"""``python -m services.payment_provider --host H --port P [--latency-ms N] [--failure-rate F]``.

The starting behaviour can be given on the command line; ``PUT /admin/behaviour`` changes it
while it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from services.common.logs import configure_logging
from services.payment_provider.app import create_app
from services.payment_provider.ledger import Behaviour

NAME = "payment-provider"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.payment_provider",
                                     description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        behaviour = Behaviour(args.latency_ms, args.failure_rate, args.error_rate)
    except ValueError as error:
        parser.error(str(error))
    configure_logging(NAME)
    uvicorn.run(create_app(behaviour=behaviour), host=args.host, port=args.port, loop="uvloop",
                http="httptools", log_config=None, access_log=False, server_header=False)


if __name__ == "__main__":
    main()
