"""The cloud link: MQTT up (status, state, events from the outbox) and signed commands down."""
