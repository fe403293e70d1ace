"""The product service's rules as plain code: no I/O, so unit tests need no database or Redis."""
