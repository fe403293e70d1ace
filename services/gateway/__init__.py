"""The COME2US API gateway (the Spring Cloud Gateway equivalent); see README.md here.

``python -m services.gateway`` runs it. With ``COME2US_GATEWAY_NATIVE=DIR`` the forwarding
path's modules are taken from a mypyc build in DIR when it matches these sources
(``services.gateway.native``); this must happen before they are imported, hence here.
"""

from __future__ import annotations

import os

if os.environ.get("COME2US_GATEWAY_NATIVE"):
    from pathlib import Path

    from services.gateway import native

    native.activate(Path(os.environ["COME2US_GATEWAY_NATIVE"]), __path__)
