"""The order service's rules, as plain classes and functions (no I/O)."""
