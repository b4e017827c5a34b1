#!/usr/bin/env bash
# Self-contained demo: builds td, creates a throwaway project and walks it through td's
# workflow with two sessions, then proves the tables are a pure function of the change log.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p td-cli
TD="$PWD/target/release/td"
demo=$(mktemp -d)
export XDG_CONFIG_HOME="$demo/config"
mkdir -p "$demo/project"
cd "$demo/project"
run() { echo "\$ td $*"; "$TD" "$@"; echo; }

run init
id=$("$TD" create "Fix login redirect loop" -p P1 -l auth,web --json | sed -E 's/.*"id":"([^"]+)".*/\1/')
run create "Document the sync protocol" -t chore
run list
export TD_SESSION_ID=implementer
run start "$id"
run log "Cause: stale session cookie after OAuth callback"
run log --decision "Clear the cookie in the callback handler"
run review "$id"
echo "# the implementer may not approve its own work:"
"$TD" approve "$id" || true
echo
export TD_SESSION_ID=reviewer
run approve "$id"
run show "$id"
unset TD_SESSION_ID
run status
"$TD" export --format json > "$demo/before.json"
run rebuild
"$TD" export --format json > "$demo/after.json"
if cmp -s "$demo/before.json" "$demo/after.json"; then
  echo "rebuild from the change log reproduced every synced table byte for byte"
else
  echo "rebuild differs!" >&2; exit 1
fi
echo "demo project left in $demo/project"
