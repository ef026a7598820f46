#!/bin/sh
# Run one Criterion suite with its report in TAP on stdout (for automake's TAP
# driver); Criterion's own log goes to stderr, which lands in the .log file.
# CRITERION_JOBS bounds parallel test processes (default: Criterion's choice).
prog=$1
shift
exec "$prog" --tap=- --short-filename ${CRITERION_JOBS:+-j$CRITERION_JOBS} "$@"
