#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install or remove extensions on a host through the extension-manager CLI."""

from __future__ import annotations

DOCUMENTATION = r"""
module: extension
short_description: Install or remove developer tooling with extension-manager
description:
  - Runs C(extension-manager --output json install|remove|plan|status) on the host, as an
    argument list (never a shell string), and turns its JSON into the task's result.
  - C(changed) is true when an extension was installed, reinstalled or removed; an extension
    already installed with the same manifest, whose validate checks pass, is left alone.
  - Check mode runs C(plan --exit-code) (exit 1 means there is install work) for
    O(state=present), and C(status) then C(remove --dry-run) for O(state=absent); nothing
    on the host changes.
  - Retries, repairs and failure classes happen inside extension-manager; the result carries
    them per extension, with a failure's message, class and hint.
version_added: "0.1.0"
author: extension-manager developers
options:
  name:
    description: Extensions by name (the manifest's file stem, C([a-z0-9][a-z0-9-]*)).
    type: list
    elements: str
  profile:
    description: Install the extensions of this profile (C(profiles.toml)). Only with O(state=present).
    type: str
  state:
    description: C(present) installs (and validates), C(absent) removes what the install added.
    type: str
    choices: [present, absent]
    default: present
  options:
    description:
      - "Extension options, as a mapping of extension to a mapping of option to value
        (C(nodejs: {version: '22'})); each becomes C(--set EXT.OPTION=VALUE)."
      - A changed option makes an installed extension reinstall (its fingerprint changes).
    type: dict
    default: {}
  force:
    description: Reinstall even when installed with the same manifest and its checks pass.
    type: bool
    default: false
  keep_going:
    description: After a failure, go on with the extensions that do not depend on it.
    type: bool
    default: false
  cascade:
    description: With O(state=absent), also remove the installed extensions that require these.
    type: bool
    default: false
  jobs:
    description: Extensions installed at once (C(--jobs)).
    type: int
  extensions_dir:
    description: More directories of manifests (C(--extensions-dir), later ones win by name).
    type: list
    elements: path
    default: []
  state_dir:
    description: Where extension-manager keeps its state (C(--state-dir)).
    type: path
  config:
    description: A config file read after the system's and the user's (C(--config)).
    type: path
  lock_timeout:
    description: How long to wait for another run's lock, e.g. C(30s) or C(10m).
    type: str
  binary:
    description: The extension-manager program; a bare name is looked up on the host's PATH.
    type: path
    default: extension-manager
notes:
  - Check mode cannot foresee a validate check that fails on the host; an installed
    extension with the same manifest is planned as C(verify) (no change), and a real run
    reinstalls it if its checks fail.
  - Supports check mode. The module never passes a shell string to the host; every value it
    passes is validated first (no name, option or value may start with C(-)).
"""

EXAMPLES = r"""
- name: Python and Node.js tooling on every dev VM
  extension_manager.core.extension:
    name: [python, nodejs]
    options:
      nodejs:
        version: "22"

- name: The web profile, going on past an independent failure
  extension_manager.core.extension:
    profile: web
    keep_going: true

- name: Take tmux-workspace out again
  extension_manager.core.extension:
    name: tmux-workspace
    state: absent
"""

RETURN = r"""
extensions:
  description: One entry per extension of the run.
  returned: always
  type: list
  elements: dict
  sample:
    - name: python
      result: failed
      attempts: 4
      retries: 3
      repairs: ["apt-get clean: ok"]
      fault: transient
      message: "apt install python3: 503 from the mirror"
      hint: null
      log: /var/lib/extension-manager/logs/20261203T081544Z-22331/python.log
changed_extensions:
  description: The extensions installed, reinstalled or removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: With O(state=absent), the extensions removed (cascade included).
  returned: when state is absent
  type: list
  elements: str
would_remove:
  description:
    - In check mode with O(state=absent), each extension C(remove) would take out
      (dependents too with O(cascade)) and its C(actions).
  returned: in check mode, when something is installed
  type: list
  elements: dict
  sample:
    - name: tmux-workspace
      actions: ["take the block `# BEGIN extension-manager tmux-workspace` out of /etc/tmux.conf", "apt purge tmux"]
plan:
  description: In check mode with O(state=present), the plan C(plan --output json) printed.
  returned: in check mode
  type: list
  elements: dict
cmd:
  description: The argument list that ran.
  returned: always
  type: list
  elements: str
exit_code:
  description:
    - Its exit code (0 ok, 1 failed, 2 bad input and nothing changed, 75 transient; for
      C(plan --exit-code), 1 is "would change").
    - Not named C(rc), which Ansible reads as failed whenever it is not 0.
  returned: always
  type: int
hint:
  description: What to do next, when extension-manager said so.
  returned: on failure, when there is one
  type: str
stderr:
  description: extension-manager's status lines.
  returned: always
  type: str
"""

import json
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

# Extension and option names, as em-manifest accepts them; nothing here can start with `-`.
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
OPTION = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Step messages carry their hint inline: "... (hint: add replace = true ...)".
INLINE_HINT = re.compile(r"\(hint: (.*)\)\s*$", re.DOTALL)
# `plan --exit-code`: 0 nothing to do, 1 install work to do.
PLAN_UP_TO_DATE = 0
PLAN_HAS_WORK = 1


class InputError(ValueError):
    """A parameter the CLI must never see."""


def global_args(params: dict[str, Any]) -> list[str]:
    """The options every subcommand takes, after the binary."""
    argv = ["--output", "json", "--progress", "plain", "--color", "never"]
    for directory in params["extensions_dir"]:
        argv += ["--extensions-dir", checked_path(directory, "extensions_dir")]
    if params["state_dir"]:
        argv += ["--state-dir", checked_path(params["state_dir"], "state_dir")]
    if params["config"]:
        argv += ["--config", checked_path(params["config"], "config")]
    return argv


def checked_path(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise InputError(f"{what}: {path!r} is not an absolute path")
    return path


def checked_names(names: list[str]) -> list[str]:
    for name in names:
        if not NAME.match(name):
            raise InputError(
                f"name: {name!r} is not an extension name ([a-z0-9][a-z0-9-]*, the manifest's file stem)"
            )
    return names


def set_args(options: dict[str, Any]) -> list[str]:
    """`--set EXT.OPTION=VALUE` for each option, sorted so that argv is stable."""
    argv: list[str] = []
    for extension in sorted(options):
        values = options[extension]
        checked_names([extension])
        if not isinstance(values, dict):
            raise InputError(f"options.{extension}: expected a mapping of option to value")
        for option in sorted(values):
            if not OPTION.match(option):
                raise InputError(f"options.{extension}: {option!r} is not an option name")
            value = values[option]
            if isinstance(value, bool):
                value = "true" if value else "false"
            argv += ["--set", f"{extension}.{option}={value}"]
    return argv


def selection_args(params: dict[str, Any]) -> list[str]:
    """What to act on: a profile or names, after `--` so that no name is read as an option."""
    argv: list[str] = []
    if params["profile"]:
        if not NAME.match(params["profile"]):
            raise InputError(f"profile: {params['profile']!r} is not a profile name")
        argv += ["--profile", params["profile"]]
    names = checked_names(params["name"])
    return argv + (["--"] + names if names else [])


def install_args(params: dict[str, Any], check: bool) -> list[str]:
    argv = ["plan", "--exit-code"] if check else ["install"]
    if params["force"]:
        argv.append("--force")
    if not check:
        if params["keep_going"]:
            argv.append("--keep-going")
        if params["jobs"] is not None:
            if params["jobs"] < 1:
                raise InputError("jobs: takes a whole number of at least 1")
            argv += ["--jobs", str(params["jobs"])]
        if params["lock_timeout"]:
            argv += lock_args(params["lock_timeout"])
    return argv + set_args(params["options"]) + selection_args(params)


def lock_args(timeout: str) -> list[str]:
    if not re.match(r"^[0-9]+(ms|s|m|h)?$", timeout):
        raise InputError(f"lock_timeout: {timeout!r} is not a duration such as 30s or 10m")
    return ["--lock-timeout", timeout]


def extension_summary(report: dict[str, Any]) -> dict[str, Any]:
    """One extension of an install report: its outcome, attempts, retries, repairs, why."""
    steps = report.get("steps") or []
    message = report.get("message")
    hint = None
    found = INLINE_HINT.search(message) if message else None
    if message and found:
        hint = found.group(1)
        message = message[: found.start()].rstrip()
    return {
        "name": report["name"],
        "result": report["result"],
        "attempts": sum(step.get("attempts", 0) for step in steps),
        # One delay before each retry.
        "retries": sum(len(step.get("delays_ms") or []) for step in steps),
        "repairs": [
            f"{name}: {'ok' if ok else 'failed'}" for step in steps for name, ok in step.get("repairs") or []
        ],
        "failures": [f"{cls}: {why}" for step in steps for cls, why in step.get("failures") or []],
        "fault": report.get("fault"),
        "message": message,
        "reason": report.get("reason"),
        "hint": hint,
        "log": report.get("log"),
    }


def parse_json(module: AnsibleModule, cmd: list[str], rc: int, out: str, err: str) -> dict[str, Any]:
    try:
        document = json.loads(out)
    except ValueError:
        module.fail_json(
            msg=f"extension-manager printed no JSON (exit {rc}); is {cmd[0]} the extension-manager binary?",
            cmd=cmd,
            exit_code=rc,
            stdout=out,
            stderr=err,
        )
    if not isinstance(document, dict):
        module.fail_json(msg="extension-manager printed JSON that is not an object", cmd=cmd, exit_code=rc, stdout=out)
    return document


def fail_on_error(module: AnsibleModule, document: dict[str, Any], result: dict[str, Any]) -> None:
    """Exit 2 and friends: the CLI refused the request and changed nothing."""
    error = document.get("error")
    if error:
        module.fail_json(msg=error.get("message"), hint=error.get("hint"), unmet=error.get("unmet"), **result)


def present(module: AnsibleModule, binary: str, params: dict[str, Any]) -> None:
    check = module.check_mode
    cmd = [binary] + global_args(params) + install_args(params, check)
    rc, out, err = module.run_command(cmd)
    document = parse_json(module, cmd, rc, out, err)
    result: dict[str, Any] = {"cmd": cmd, "exit_code": rc, "stderr": err, "changed": False}
    fail_on_error(module, document, result)
    if check:
        plan = document.get("plan") or []
        work = [entry["name"] for entry in plan if entry.get("action") != "verify"]
        if rc not in (PLAN_UP_TO_DATE, PLAN_HAS_WORK) or (rc == PLAN_HAS_WORK) != bool(work):
            module.fail_json(msg=f"plan --exit-code ended with {rc} for the plan it printed", plan=plan, **result)
        module.exit_json(plan=plan, changed_extensions=work, extensions=[], **{**result, "changed": bool(work)})
    extensions = [extension_summary(entry) for entry in document.get("extensions") or []]
    changed = [entry["name"] for entry in extensions if entry["result"] == "installed"]
    result.update(extensions=extensions, changed_extensions=changed, changed=bool(changed))
    if rc != 0:
        failed = [entry for entry in extensions if entry["result"] == "failed"]
        why = "; ".join(f"{entry['name']}: {entry['message']}" for entry in failed) or err.strip()
        hints = [entry["hint"] for entry in failed if entry["hint"]]
        module.fail_json(msg=f"extension-manager install failed (exit {rc}): {why}", hint="; ".join(hints) or None, **result)
    module.exit_json(**result)


def absent(module: AnsibleModule, binary: str, params: dict[str, Any]) -> None:
    if params["profile"]:
        raise InputError("profile: state=absent takes names only (name: [...])")
    names = checked_names(params["name"])
    status_cmd = [binary] + global_args(params) + ["status", "--"] + names
    rc, out, err = module.run_command(status_cmd)
    document = parse_json(module, status_cmd, rc, out, err)
    result: dict[str, Any] = {"cmd": status_cmd, "exit_code": rc, "stderr": err, "changed": False}
    fail_on_error(module, document, result)
    # status prints "-" for an extension that is not installed; removing one is an error.
    installed = [entry["name"] for entry in document.get("extensions") or [] if entry.get("state") != "-"]
    if not installed:
        module.exit_json(removed=[], changed_extensions=[], extensions=[], **result)
    cmd = [binary] + global_args(params) + remove_args(params, module.check_mode) + installed
    rc, out, err = module.run_command(cmd)
    document = parse_json(module, cmd, rc, out, err)
    result = {"cmd": cmd, "exit_code": rc, "stderr": err, "extensions": []}
    if module.check_mode:
        # `remove --dry-run`: what would go (dependents too, with cascade), and how.
        would_remove = document.get("would_remove") or []
        result.update(removed=[], would_remove=would_remove, changed=False)
        fail_on_error(module, document, result)
        changed = [entry["name"] for entry in would_remove]
        module.exit_json(**{**result, "changed_extensions": changed, "changed": bool(changed)})
    removed = list(document.get("removed") or [])
    result.update(removed=removed, changed_extensions=removed, changed=bool(removed))
    fail_on_error(module, document, result)
    if rc != 0 or document.get("failed"):
        module.fail_json(msg=f"extension-manager remove failed (exit {rc})", **result)
    module.exit_json(**result)


def remove_args(params: dict[str, Any], check: bool) -> list[str]:
    """`remove` (`--dry-run` in check mode), up to the `--` before the names."""
    argv = ["remove"]
    if check:
        argv.append("--dry-run")
    if params["cascade"]:
        argv.append("--cascade")
    if params["lock_timeout"] and not check:
        argv += lock_args(params["lock_timeout"])
    return argv + ["--"]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "list", "elements": "str"},
            "profile": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "options": {"type": "dict", "default": {}},
            "force": {"type": "bool", "default": False},
            "keep_going": {"type": "bool", "default": False},
            "cascade": {"type": "bool", "default": False},
            "jobs": {"type": "int"},
            "extensions_dir": {"type": "list", "elements": "path", "default": []},
            "state_dir": {"type": "path"},
            "config": {"type": "path"},
            "lock_timeout": {"type": "str"},
            "binary": {"type": "path", "default": "extension-manager"},
        },
        supports_check_mode=True,
    )
    params = module.params
    params["name"] = params["name"] or []
    if not params["name"] and not params["profile"]:
        module.fail_json(msg="name or profile: say which extensions (name: [python] or profile: web)")
    binary = params["binary"]
    if "/" not in binary:
        binary = module.get_bin_path(binary, required=True)
    try:
        if params["state"] == "present":
            present(module, binary, params)
        else:
            absent(module, binary, params)
    except InputError as error:
        module.fail_json(msg=str(error), changed=False)


if __name__ == "__main__":
    main()
