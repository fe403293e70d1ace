"""The user service's rules, as plain classes and functions: no HTTP, no SQL, no Redis."""
