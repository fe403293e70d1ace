"""The local ALB: HAProxy as the data plane, driven from the model over its runtime API.

`targets` is the contract its users program against (and an in-memory fake of it); `config`
renders haproxy.cfg from the model; `runtime_api` talks to HAProxy's admin socket; `balancer`
turns ALB operations into runtime-API commands; `component` runs HAProxy as a node of the
local cloud; `access_log` reads back the JSON access log.
"""
