"""attention.sh: the operator's half of a stuck saga: list the sagas that need attention, show one,
resolve them (the compensations again, by the stage's coordinator), keeping the record.

    attention.sh list    --stage S [--region R] [--profile P] [--json] [--all]
    attention.sh show    ID --stage S ... [--json]
    attention.sh resolve ID... --stage S ... [--json] [--keep-faults] [--roll-back] [--report DIR]
    attention.sh close   ID --reason TEXT --stage S ... [--json]

A resolution is an execution named <saga_id>-resolve-<n> of the stage's resolution state machine
(statemachine/resolve-stuck.asl.json) or, on a stage coordinated by the durable function, of that function
(coordinators.py); the resolution itself closes or keeps the saga's attention records, so one started from the
console does the same. A saga left unfinished past its pivot (forward
recovery) is finished forward, or with --roll-back undone whole; a stuck compensation is run again.
Exit status as runtest.sh's: 0 done (or nothing to do), 1 a saga still needs attention, 2 usage errors,
unknown sagas and refused commands (the saga, or for close a resolution, still running; another
call's resolution took the saga the other way, or closed it by hand), 130 interrupted, 143 terminated.
resolve and close first claim the saga (claim.py), so of two calls at once one acts.

`cli.py` reads the command line, `coordinators.py` reaches the stage's state machines or durable function,
`stage_view.py` reads a saga from the stage, `claim.py` says who acts on
a saga next, `resolver.py` starts and follows resolutions (and closes records by hand), `printing.py` writes
what a person reads.
"""
