"""The trip's own tests: its request rules and its steps' work, whatever app the engine serves."""
