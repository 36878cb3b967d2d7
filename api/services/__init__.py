"""What the routes call: loaded resources and the rules of the service (no HTTP here)."""
