"""`kiosk run`: the daemon that alone owns the ledger and the lock bus."""
