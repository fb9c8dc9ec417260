"""The local Case Management emulator: a columnar case store behind an HTTP server."""
