"""`kiosk doctor`: is this bank healthy? One table of checks, each failure with its fix."""
