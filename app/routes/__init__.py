"""HTTP routers, one per protocol: each parses its own wire format and calls the core."""
