#!/bin/sh
# The dev container Feature's install script: the tool that builds the image runs it as
# root with each option as an upper-case variable (EXTENSIONS, BUNDLE). An
# extension-manager binary placed beside this script is installed first; EM overrides
# which binary runs. `cargo xtask rootfs --offline --feature` runs this script in a fresh
# Debian chroot inside `unshare --net`, with BUNDLE set.
set -eu
here=$(dirname "$0")
if [ -z "${EM:-}" ] && [ -x "$here/extension-manager" ]; then
    install -m 0755 "$here/extension-manager" /usr/local/bin/extension-manager
fi
em=${EM:-extension-manager}
extensions=${EXTENSIONS:-base}
bundle=${BUNDLE:-}
# Names only: the manifest grammar's (so nothing that reads as an option).
for name in $extensions; do
    case "$name" in
        -* | *[!a-z0-9-]*)
            echo "extension-manager feature: \`$name\` is not an extension name" >&2
            exit 2
            ;;
    esac
done
# shellcheck disable=SC2086 # the names are split on purpose, and checked above
if [ -n "$bundle" ]; then
    cd "$bundle"
    exec "$em" --progress none install --offline --from "$bundle/bundle" -- $extensions
fi
exec "$em" --progress none install -- $extensions
