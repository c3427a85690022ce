"""locker-kiosk-cloud: the cloud's side of the kiosk's MQTT contract (keys, signed commands)."""

__version__ = "0.1.0"
