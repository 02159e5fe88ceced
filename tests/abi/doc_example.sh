#!/usr/bin/env bash
# doc_example.sh DOC.md SOURCE.c: the C block between "<!-- minimal.c begins -->"
# and "<!-- minimal.c ends -->" in DOC.md is SOURCE.c verbatim, so the example
# that docs/plugin-abi.md shows is the one the tests build and run.
set -u
if [ "$#" -ne 2 ]; then
    echo "usage: doc_example.sh DOC.md SOURCE.c" >&2
    exit 2
fi
block=$(awk '/<!-- minimal.c begins -->/ { on = 1; next }
             /<!-- minimal.c ends -->/ { on = 0 }
             on && !/^```/ { print }' "$1")
if [ -z "$block" ]; then
    echo "$1: no <!-- minimal.c begins/ends --> block" >&2
    exit 1
fi
if ! diff -u --label "$2" --label "$1 (example block)" "$2" - <<<"$block"; then
    echo "$1: the example differs from $2; paste $2 into the block again" >&2
    exit 1
fi
