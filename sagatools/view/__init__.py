"""Showing a saga: its history folded into states, the terminal output, the HTML page, the diagram."""
