"""`kiosk ui`: the keypad screen, a client of the daemon's local API (no secrets, no files)."""
