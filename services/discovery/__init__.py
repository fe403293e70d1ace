"""Service discovery: a Eureka-compatible registry server (Spring Cloud Netflix Eureka Server).

Java and Python Eureka clients (py-eureka-client, our `services.common.eureka`) register,
heartbeat and fetch the registry here over Eureka's REST API; two servers replicate to each
other so either can answer. Run it with ``python -m services.discovery --help``.
"""
