"""The payment service's rules, as plain classes and functions (no I/O)."""
