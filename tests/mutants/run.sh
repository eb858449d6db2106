#!/usr/bin/env bash
# Can the chaos suite fail? Break the engine on purpose, one patch at a time, in a copy of the
# committed tree, and run the suite against it: each run must FAIL, naming what broke.
#   tests/mutants/run.sh                      # every patch here, 1,000 orders each
#   tests/mutants/run.sh lease-never-blocks   # one of them
# Each patch starts with "# expect: <the failing assert line>", the check that must catch it.
# Needs PostgreSQL and Redis as CI has them (DATABASE_URL, default below) and bin/test's .venv.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
[ -x .venv/bin/python ] || { echo "run bin/test once first (it creates .venv)" >&2; exit 2; }
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/s360_mutants}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/10}"
export CHAOS_REDIS_URL="${CHAOS_REDIS_URL:-redis://127.0.0.1:6379/9}"
export CHAOS_ORDERS="${CHAOS_ORDERS:-1000}"
status=0
for patch in tests/mutants/${1:-*}.patch; do
  name="$(basename "$patch" .patch)"
  tree="$(mktemp -d)"
  git archive HEAD | tar -x -C "$tree"
  ln -s "$ROOT/.venv" "$tree/.venv"
  (cd "$tree" && patch -p1 --quiet <"$ROOT/$patch") || { echo "$name: does not apply"; status=1; continue; }
  echo "== $name"
  # The patch's first line names the check that must catch it, as an extended regex
  # ("# expect: assert overlaps =="): a failure elsewhere (a timeout, a crash) is not a catch.
  expect="$(sed -n 's/^# expect: //p' "$patch" | head -n 1)"
  if (cd "$tree" && .venv/bin/python -m pytest -q -x --create-db -p no:cacheprovider \
      tests/test_chaos.py -k two_beats) >"$tree/out.log" 2>&1; then
    echo "$name: the suite PASSED on a broken engine"; status=1
  elif grep -E "^>" "$tree/out.log" | grep -qE -- "$expect"; then
    grep -E "^E +(AssertionError|assert)" "$tree/out.log" | head -n 2 | cut -c 1-200
    echo "$name: caught by '$expect'"
  else
    grep -E "^>|^E " "$tree/out.log" | head -n 10 | cut -c 1-200
    echo "$name: the suite failed, but not on '$expect'"; status=1
  fi
  rm -rf "$tree"
done
exit $status
