"""The menda keyring backend (placeholder until the backend issue lands)."""
