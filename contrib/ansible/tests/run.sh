#!/usr/bin/env bash
# The Ansible collection's end-to-end test, in one command (as root):
#
#   contrib/ansible/tests/run.sh
#
# It builds extension-manager, puts ansible-core in a venv (from PyPI the first time:
# this is why the test is not part of `cargo xtask ci`), makes three chroot trees whose
# Python is the controller's /usr bound read-only, and runs playbook.yml against them with
# forks=3 through the collection's own chroot connection. Everything mounted lives in a
# private mount namespace, so it vanishes when the run ends, however it ends.
#
# EM_ANSIBLE_VENV   the venv (default /var/tmp/em-ansible-venv; kept between runs)
# EM_ANSIBLE_HOSTS  how many trees (default 3)
# EM_ANSIBLE_KEEP   1: keep the trees' directory after the run
# CARGO_TARGET_DIR  respected, as cargo does
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)

if [ "${1:-}" = "--in-namespace" ]; then
    shift
    work=$1 binary=$2 venv=$3 count=$4
    hosts=()
    for i in $(seq 1 "$count"); do
        tree=$work/hosts/host$i
        mkdir -p "$tree"/{usr,dev,proc,tmp,root,srv,opt/em/bin,var/lib,var/tmp,run,etc}
        chmod 1777 "$tree/tmp" "$tree/var/tmp"
        for link in bin lib lib64 sbin; do ln -s "usr/$link" "$tree/$link"; done
        # The controller's programs and Python, read-only: the tree's own writes go to
        # /etc, /srv, /var and /opt, which are its own.
        mount --bind /usr "$tree/usr"
        mount -o remount,bind,ro "$tree/usr"
        mount --rbind /dev "$tree/dev"
        mount -t proc proc "$tree/proc"
        for f in passwd group shadow nsswitch.conf ld.so.cache os-release alternatives python3 python3.11; do
            if [ -e "/etc/$f" ] || [ -L "/etc/$f" ]; then cp -a "/etc/$f" "$tree/etc/"; fi
        done
        echo "host$i" > "$tree/etc/hostname"
        cp "$binary" "$tree/opt/em/bin/extension-manager"
        cp -r "$here/extensions" "$tree/opt/em/extensions"
        hosts+=("$tree")
    done
    inventory=$work/inventory.ini
    {
        echo "[trees]"
        for i in $(seq 1 "$count"); do echo "host$i ansible_host=${hosts[$((i - 1))]}"; done
        echo
        echo "[trees:vars]"
        echo "ansible_connection=extension_manager.core.chroot"
        echo "ansible_python_interpreter=/usr/bin/python3"
    } > "$inventory"
    export ANSIBLE_COLLECTIONS_PATH=$repo/contrib/ansible
    export ANSIBLE_FORKS=$count ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_NOCOLOR=1
    export ANSIBLE_LOCAL_TEMP=$work/ansible-local ANSIBLE_HOME=$work/ansible-home
    started=$(date +%s%N)
    "$venv/bin/ansible-playbook" -i "$inventory" -e "fetch_dir=$work/fetched" "$here/playbook.yml"
    ended=$(date +%s%N)
    # The playbook sends modules as files (put_file); pipelining sends them on stdin.
    ANSIBLE_PIPELINING=True "$venv/bin/ansible" -i "$inventory" trees -m ansible.builtin.ping
    echo "==> ansible: playbook passed on $count hosts (forks=$count) in $(((ended - started) / 1000000)) ms"
    # What landed on disk, seen from the controller: the last task removed everything the
    # install added, and left what was there before.
    for tree in "${hosts[@]}"; do
        for gone in srv/em-test/greet.conf srv/em-test/greet.ran srv/em-test/flaky.once; do
            if [ -e "$tree/$gone" ]; then echo "FAIL: $tree/$gone is still there" >&2; exit 1; fi
        done
        [ "$(cat "$tree/etc/hostname")" = "$(basename "$tree")" ] || { echo "FAIL: $tree/etc/hostname changed" >&2; exit 1; }
        /usr/bin/python3 -c 'import json, sys; sys.exit(bool(json.load(open(sys.argv[1]))["extensions"]))' \
            "$tree/var/lib/extension-manager/state.json" || { echo "FAIL: $tree: state.json still lists extensions" >&2; exit 1; }
    done
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "error: the Ansible test needs root (chroot, mount)" >&2
    echo "hint: run it as root, as the developer machines and CI are" >&2
    exit 2
fi
venv=${EM_ANSIBLE_VENV:-/var/tmp/em-ansible-venv}
count=${EM_ANSIBLE_HOSTS:-3}
if [ ! -x "$venv/bin/ansible-playbook" ]; then
    echo "==> ansible: installing ansible-core into $venv (needs PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet ansible-core
fi
version=$("$venv/bin/ansible" --version)
echo "==> ansible: ${version%%$'\n'*}"
# The module's argv and result building, then the documentation as ansible-doc reads it.
(cd "$here/.." && "$venv/bin/python" -m unittest --quiet tests/unit/test_extension.py)
for plugin in module:extension_manager.core.extension connection:extension_manager.core.chroot; do
    errors=$(ANSIBLE_COLLECTIONS_PATH=$here/.. "$venv/bin/ansible-doc" -t "${plugin%%:*}" "${plugin#*:}" 2>&1 >/dev/null) || true
    if [ -n "$errors" ]; then echo "FAIL: ansible-doc ${plugin#*:}: $errors" >&2; exit 1; fi
done
(cd "$repo" && cargo build --quiet -p extension-manager)
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$repo/$target ;; esac
binary=$target/debug/extension-manager

work=$(mktemp -d /var/tmp/em-ansible.XXXXXX)
status=0
unshare --mount --propagation private --fork -- \
    bash "$0" --in-namespace "$work" "$binary" "$venv" "$count" || status=$?
# The namespace is gone, and its mounts with it; never delete through a mount all the same.
if grep -q " $work" /proc/self/mountinfo; then
    echo "error: something is still mounted under $work; not deleting it" >&2
    exit 1
fi
if [ "${EM_ANSIBLE_KEEP:-0}" = 1 ]; then echo "==> ansible: kept $work"; else rm -rf "$work"; fi
exit "$status"
