"""The local runtime: NovaCron on a laptop, derived from the wiring (see ``novacron.wiring``).

One process holds a moto server with the declared resources, a Kinesis poller per stream consumer,
an HTTP gateway for the declared routes and a timer per schedule, all invoking the same handlers
that run in Lambda.
"""

from novacron.local.runtime import LocalRuntime, run

__all__ = ["LocalRuntime", "run"]
