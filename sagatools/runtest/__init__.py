"""runtest.sh: validate saga requests, run their sagas, show what happened.

    runtest.sh FILE... [--json] [--report DIR] [--logs] [--timeout SECONDS] [--coordinator stepfunctions|durable]
               [--stage S [--region R] [--profile P]]

Without --stage the sagas run on the embedded stack; with it, on the stage's own coordinator. Every file and option
is checked before anything starts; one bad file means nothing runs. Exit status: 0 every saga ended COMMITTED or
ROLLED_BACK; 1 any needs attention or did not finish (or a process running part of a batch was killed); 2 usage
errors, unreadable or invalid requests, an unreachable stage; 74 the results could not be written to stdout; 130
interrupted (Ctrl-C); 143 terminated (SIGTERM).

`cli.py` reads the command line and writes the results, `stacks.py` runs the sagas on the embedded stack
or a stage, `runner.py` starts the executions and reads back what they did, `durable.py` and `durable_stage.py` do
the same with the durable function (embedded, on a stage), `shards.py` runs a big batch
on the embedded stack in one forked process per core.
"""
