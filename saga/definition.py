"""The one setting: the app this engine serves.

The saga is the app's definition (trip/definition.py): the generated handlers, the state machines and the
template (`./build.sh generate`), runtest.sh and attention.sh all follow it. To serve another app, name its
definition here and run `./build.sh generate`.
"""

from trip.definition import SAGA

__all__ = ["SAGA"]
