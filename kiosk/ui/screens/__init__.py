"""The keypad's screens, one per state; modal screens for the technician's PIN and reasons."""
