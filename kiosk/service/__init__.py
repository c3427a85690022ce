"""The locker service: the bank's use cases (imports no hardware, MQTT or UI library)."""
