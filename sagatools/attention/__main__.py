"""attention.sh's entry point (see sagatools/entry.py for how signals are handled from the first instant)."""

if __name__ == "__main__":
    from importlib import import_module

    from sagatools.entry import run_guarded

    run_guarded("attention", lambda: import_module("sagatools.attention.cli").main)
