"""Workstation and CI tooling: the embedded stack, the runner and its output. Never deployed."""
