#!/bin/sh
# Stage 2 of examples/Dockerfile (no network needed): install extensions from the bundle
# bundle.sh made in DIR, with extensions.lock beside it. One RUN (one layer) per
# extension, in the order of their requirements. `cargo xtask rootfs --offline` runs
# this same script in the chroot, inside a network namespace with only loopback.
#
#   install.sh DIR EXT...       EM: the extension-manager to run (default: on PATH)
set -eu
dir=${1:?usage: install.sh DIR EXT...}
shift
[ "$#" -gt 0 ] || { echo "usage: install.sh DIR EXT..." >&2; exit 2; }
em=${EM:-extension-manager}
cd "$dir"
exec "$em" --progress none install --offline --from "$dir/bundle" -- "$@"
