"""Door physics for tests: the product's GPIO door simulator under the name tests use."""

from firmware_bridge.gpio_sim import GpioDoorSim as GpioDoorPhysics

__all__ = ["GpioDoorPhysics"]
