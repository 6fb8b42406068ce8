"""``novacron simulate``: a simulated online-shop estate that sends realistic metrics over remote write.

Public API: ``Estate``/``EstateSimulator`` (the model), ``parse_fault``/``Chaos`` (faults),
``RemoteWriteClient`` (the sender), ``Simulation``/``SimulationConfig`` (a run), ``register`` (the CLI).
"""

from __future__ import annotations

from novacron.simulate.cli import register, run
from novacron.simulate.estate import Estate, EstateSimulator, Scrape, ServiceSpec, default_services, traffic_factor
from novacron.simulate.faults import Chaos, Fault, FaultKind, FaultSchedule, FaultSpec, FaultSpecError, parse_fault
from novacron.simulate.remote_write import RemoteWriteClient, WriteStats
from novacron.simulate.runner import Simulation, SimulationConfig, SimulationStats

__all__ = [
    "Chaos",
    "Estate",
    "EstateSimulator",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "FaultSpec",
    "FaultSpecError",
    "RemoteWriteClient",
    "Scrape",
    "ServiceSpec",
    "Simulation",
    "SimulationConfig",
    "SimulationStats",
    "WriteStats",
    "default_services",
    "parse_fault",
    "register",
    "run",
    "traffic_factor",
]
