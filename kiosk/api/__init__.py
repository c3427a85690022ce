"""The local API: newline-delimited JSON over a Unix socket, spoken by the UI and the CLI."""
