"""Emulating AWS on this machine: the embedded stack and the moto adaptations it needs.

The only package that imports moto (tests aside); every change it makes to moto is a `Change`
(changes.py), checked when applied.
"""

from sagatools.emulation import lean_moto

lean_moto.install()  # before anything here imports moto's Step Functions interpreter
