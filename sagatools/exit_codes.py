"""Every command's exit codes, the scripts' and ./build.sh's Python parts alike. Imports nothing: the entry
point (sagatools/entry.py) reads them before its signal handlers are in place."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SAGA_FAILED = EXIT_FAILED  # runtest.sh and attention.sh: a saga needs attention or did not end
# attention.sh: a command refused as an unknown saga is (a saga whose saga or resolution still runs; a saga
# another call resolved the other way or closed by hand)
EXIT_REFUSED = EXIT_USAGE
EXIT_NOT_DELIVERED = 74  # sysexits' EX_IOERR: the sagas ran, their results could not be written
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
