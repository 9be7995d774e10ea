"""Emulating AWS on this machine: the embedded stack and the moto adaptations it needs.

The only package that imports moto (tests aside); `seams.py` lists every moto internal it touches.
"""
