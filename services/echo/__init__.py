"""The echo service: a real, minimal service that says which instance answered.

Features and benchmarks use it as a stand-in for a business service whose own behaviour is not
under test: it registers with discovery like any service, so the gateway routes to it, and its
answer names the instance, zone and colour that served the request and the identity the
gateway forwarded.
"""
