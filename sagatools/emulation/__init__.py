"""Emulating AWS on this machine: the embedded stack and the moto adaptations it needs.

The only package that imports moto (tests aside); `seams/` lists every moto internal it touches.
"""

from sagatools.emulation import lean_moto

lean_moto.install()  # before anything here imports moto's Step Functions interpreter
