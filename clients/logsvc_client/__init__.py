"""logsvc client library (placeholder; the client helper fills this in)."""
