"""The user service's HTTP layer: thin routes that translate between JSON and the domain."""
