#!/bin/sh
# Stage 1 of examples/Dockerfile (the one with a network): lock the extensions unless
# DIR already holds a reviewed extensions.lock, then bundle every payload of the lock
# into DIR/bundle. `cargo xtask rootfs --offline` runs this same script on the host.
#
#   bundle.sh DIR EXT...        EM: the extension-manager to run (default: on PATH)
set -eu
dir=${1:?usage: bundle.sh DIR EXT...}
shift
[ "$#" -gt 0 ] || { echo "usage: bundle.sh DIR EXT..." >&2; exit 2; }
em=${EM:-extension-manager}
cd "$dir"
if [ ! -f extensions.lock ]; then
    "$em" --progress none lock -- "$@"
fi
exec "$em" --progress none bundle bundle -- "$@"
