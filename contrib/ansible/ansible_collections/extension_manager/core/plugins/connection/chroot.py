# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run tasks inside a chroot directory on the controller, with ansible-core alone."""

from __future__ import annotations

DOCUMENTATION = r"""
name: chroot
short_description: Run tasks in a chroot directory of the controller
description:
  - Runs each task's commands with C(chroot DIR /bin/sh -c ...) on the controller, and moves
    files in and out with C(dd) run inside the tree, so that a symlink in the tree can never
    point a transfer at the controller's own files.
  - Written for the tests of this collection, where community.general (whose C(chroot)
    plugin does the same) is not installed; any root-owned tree with C(/bin/sh), C(dd) and a
    Python works.
  - The controller runs it as root (chroot needs CAP_SYS_CHROOT); become is not supported.
author: extension-manager developers
version_added: "0.1.0"
options:
  chroot_dir:
    description: The tree's path on the controller.
    type: path
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_chroot_dir
  chroot_exe:
    description: The chroot program on the controller (a bare name is looked up on PATH, then in /usr/sbin).
    type: str
    default: chroot
    vars:
      - name: ansible_chroot_exe
  executable:
    description: The shell inside the tree that runs Ansible's commands.
    type: str
    default: /bin/sh
    vars:
      - name: ansible_executable
"""

import os
import shutil
import subprocess
from typing import IO

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

# dd's block size for file transfers.
BUFSIZE = 65536


class Connection(ConnectionBase):
    """Commands through chroot(8); files through dd inside the tree."""

    transport = "extension_manager.core.chroot"
    has_pipelining = True
    has_tty = False
    default_user = "root"
    # Set by ConnectionBase.__init__; declared for the type checker.
    _connected: bool

    def _connect(self) -> Connection:
        root = self.get_option("chroot_dir")
        if not os.path.isdir(root):
            raise AnsibleConnectionFailure(f"chroot directory {root!r} does not exist")
        shell = self.get_option("executable")
        if not os.path.isfile(os.path.join(root, shell.lstrip("/"))) and not os.path.islink(
            os.path.join(root, shell.lstrip("/"))
        ):
            raise AnsibleConnectionFailure(f"{root!r} has no {shell}: it is not a usable tree")
        exe = self.get_option("chroot_exe")
        # chroot is in /usr/sbin, which a user's PATH may lack even as root.
        self._chroot_exe = shutil.which(exe) or shutil.which(exe, path="/usr/sbin:/sbin") or ""
        if not self._chroot_exe:
            raise AnsibleConnectionFailure("no chroot program found on the controller")
        if not self._connected:
            display.vvv(f"ESTABLISH CHROOT CONNECTION TO {root}", host=root)
            self._connected = True
        return self

    def _argv(self, cmd: str) -> list[bytes]:
        """The controller's argv for one shell command inside the tree (no shell outside it)."""
        return [
            to_bytes(self._chroot_exe),
            to_bytes(self.get_option("chroot_dir")),
            to_bytes(self.get_option("executable")),
            b"-c",
            to_bytes(cmd, errors="surrogate_or_strict"),
        ]

    def _run(self, cmd: str, stdin: int | IO[bytes]) -> subprocess.Popen[bytes]:
        self._connect()
        display.vvv(f"EXEC {cmd}", host=self.get_option("chroot_dir"))
        return subprocess.Popen(
            self._argv(cmd),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = False
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        process = self._run(cmd, subprocess.PIPE)
        stdout, stderr = process.communicate(in_data)
        return process.returncode, stdout, stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        quoted = self._shell.quote(out_path)
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as source:
            # An empty file would leave dd waiting on a pipe; /dev/null gives it EOF.
            stdin = source if os.fstat(source.fileno()).st_size else subprocess.DEVNULL
            process = self._run(f"dd of={quoted} bs={BUFSIZE}", stdin)
            _, stderr = process.communicate()
        if process.returncode != 0:
            raise AnsibleError(f"failed to put {in_path} to {out_path}: {to_native(stderr)}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        quoted = self._shell.quote(in_path)
        process = self._run(f"dd if={quoted} bs={BUFSIZE}", subprocess.DEVNULL)
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise AnsibleError(f"failed to fetch {in_path} to {out_path}: {to_native(stderr)}")
        partial = f"{out_path}.partial"
        with open(to_bytes(partial, errors="surrogate_or_strict"), "wb") as target:
            target.write(stdout)
        os.replace(partial, out_path)

    def close(self) -> None:
        self._connected = False
