"""`./build.sh generate`: the files written from the saga's definition (saga/definition.py)."""
