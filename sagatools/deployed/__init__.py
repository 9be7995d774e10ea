"""Talking to a deployed stage: choosing it, reading its stack, deploying its state machine."""
