#!/usr/bin/env bash
# Self-contained demo on this machine: builds td, then two replicas ("laptop A" and
# "laptop B", each with its own machine key) work on one backlog, sync directly over QUIC on
# 127.0.0.1, and end with byte-identical exports. Finally the tables are rebuilt from the log.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p td-cli
TD="$PWD/target/release/td"
demo=$(mktemp -d)
mkdir -p "$demo/a" "$demo/b"
A() { echo "[A] \$ td $*" >&2; XDG_CONFIG_HOME="$demo/cfg-a" "$TD" -w "$demo/a" "$@"; }
B() { echo "[B] \$ td $*" >&2; XDG_CONFIG_HOME="$demo/cfg-b" "$TD" -w "$demo/b" "$@"; }
jid() { sed -E 's/.*"id":"([^"]+)".*/\1/'; }
key() { sed -E 's/.*"public_key":"([^"]+)".*/\1/'; }

A init; B init; echo
id=$(A create "Fix login redirect loop" -p P1 -l auth --json | jid)
A create "Document the sync protocol" -t chore
KA=$(A peer id --json | key); KB=$(B peer id --json | key)
A member add "$KB" --name laptop-b
XDG_CONFIG_HOME="$demo/cfg-a" "$TD" -w "$demo/a" peer serve --listen 127.0.0.1:0 > "$demo/serve.out" 2> "$demo/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$demo/serve.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -E 's/listening on //' "$demo/serve.out")
echo "A serves on $addr"; echo
B peer add a "$addr" --key "$KA"
B peer sync a; echo

# Offline work on both sides, including the review workflow across machines.
TD_SESSION_ID=implementer A start "$id"
TD_SESSION_ID=implementer A log "Cause: stale session cookie after OAuth callback"
TD_SESSION_ID=implementer A review "$id"
B create "Add a regression test for the redirect" -p P2
B peer sync a; echo
TD_SESSION_ID=reviewer B approve "$id"
B peer sync a; echo
A show "$id"
A list --all
A export --format snapshot > "$demo/a.json"; B export --format snapshot > "$demo/b.json"
cmp -s "$demo/a.json" "$demo/b.json" && echo "A and B hold byte-identical exports"
A rebuild
A export --format snapshot > "$demo/a2.json"
cmp -s "$demo/a.json" "$demo/a2.json" && echo "rebuild from the change log reproduced every synced table byte for byte"
kill -TERM $server; wait $server || true
echo "demo left in $demo"
