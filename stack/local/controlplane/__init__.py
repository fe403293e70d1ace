"""The local control plane: one long-lived process that owns the local cloud's servers.

`come2us up` starts it (or finds it running) and asks it to bring the cloud up; `status`,
`down` and the test suite talk to it over a Unix socket in the workspace. Being the parent of
every server, it reaps them, notices crashes the moment they happen, and can restart them.
"""

from stack.local.controlplane.client import ControlPlaneClient, ControlPlaneError, spawn

__all__ = ["ControlPlaneClient", "ControlPlaneError", "spawn"]
