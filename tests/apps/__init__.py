"""Apps of the tests' own: a second saga the engine serves, to prove it names no app (README "Make it yours")."""
