"""Unit tests of the extension module's argv and result building (run.sh runs them)."""

from __future__ import annotations

import sys
import unittest
from pathlib import Path
from typing import Any

MODULES = Path(__file__).resolve().parents[2] / "ansible_collections/extension_manager/core/plugins/modules"
sys.path.insert(0, str(MODULES))

import extension  # noqa: E402  (the module, imported from its directory)


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": [],
        "profile": None,
        "state": "present",
        "options": {},
        "force": False,
        "keep_going": False,
        "cascade": False,
        "jobs": None,
        "extensions_dir": [],
        "state_dir": None,
        "config": None,
        "lock_timeout": None,
        "binary": "extension-manager",
    }
    base.update(overrides)
    return base


class Argv(unittest.TestCase):
    def test_install_argv_is_a_list_with_names_after_double_dash(self) -> None:
        p = params(
            name=["python", "nodejs"],
            options={"nodejs": {"version": "22"}, "python": {"pip": True}},
            keep_going=True,
            jobs=2,
            lock_timeout="30s",
            extensions_dir=["/srv/ext"],
            state_dir="/var/lib/em",
        )
        self.assertEqual(
            extension.global_args(p) + extension.install_args(p, check=False),
            [
                "--output", "json", "--progress", "plain", "--color", "never",
                "--extensions-dir", "/srv/ext", "--state-dir", "/var/lib/em",
                "install", "--keep-going", "--jobs", "2", "--lock-timeout", "30s",
                "--set", "nodejs.version=22", "--set", "python.pip=true",
                "--", "python", "nodejs",
            ],
        )  # fmt: skip

    def test_check_mode_is_plan_exit_code_without_install_only_flags(self) -> None:
        p = params(profile="web", keep_going=True, jobs=2, force=True)
        self.assertEqual(
            extension.install_args(p, check=True),
            ["plan", "--exit-code", "--force", "--profile", "web"],
        )

    def test_names_options_and_paths_that_could_be_read_as_flags_are_refused(self) -> None:
        bad: list[dict[str, Any]] = [
            params(name=["--all"]),
            params(name=["Python"]),
            params(profile="-x"),
            params(name=["a"], options={"-x": {"v": "1"}}),
            params(name=["a"], options={"a": {"--v": "1"}}),
            params(name=["a"], options={"a": "1"}),
            params(name=["a"], jobs=0),
            params(name=["a"], lock_timeout="-1"),
        ]
        for p in bad:
            with self.subTest(p=p), self.assertRaises(extension.InputError):
                extension.install_args(p, check=False)
        with self.assertRaises(extension.InputError):
            extension.global_args(params(extensions_dir=["relative/dir"]))


class RemoveArgv(unittest.TestCase):
    def test_check_mode_is_a_dry_run_and_waits_for_no_lock(self) -> None:
        p = params(cascade=True, lock_timeout="5m")
        self.assertEqual(extension.remove_args(p, check=True), ["remove", "--dry-run", "--cascade", "--"])
        self.assertEqual(
            extension.remove_args(p, check=False), ["remove", "--cascade", "--lock-timeout", "5m", "--"]
        )


class Summary(unittest.TestCase):
    def test_failed_extension_keeps_its_why_and_splits_the_hint_off(self) -> None:
        report = {
            "name": "clash",
            "result": "failed",
            "fault": "permanent",
            "log": "/var/lib/em/logs/r/clash.log",
            "message": "/etc/x exists and is not this extension's; nothing was written   (hint: add replace = true)",
            "steps": [
                {"attempts": 3, "delays_ms": [1, 2], "failures": [["transient", "503"], ["transient", "503"]],
                 "repairs": [["apt-get clean", True]]},
                {"attempts": 1, "delays_ms": [], "failures": [["permanent", "exists"]], "repairs": []},
            ],
        }  # fmt: skip
        self.assertEqual(
            extension.extension_summary(report),
            {
                "name": "clash",
                "result": "failed",
                "attempts": 4,
                "retries": 2,
                "repairs": ["apt-get clean: ok"],
                "failures": ["transient: 503", "transient: 503", "permanent: exists"],
                "fault": "permanent",
                "message": "/etc/x exists and is not this extension's; nothing was written",
                "reason": None,
                "hint": "add replace = true",
                "log": "/var/lib/em/logs/r/clash.log",
            },
        )

    def test_up_to_date_extension_has_no_steps(self) -> None:
        summary = extension.extension_summary({"name": "a", "result": "up_to_date", "log": None, "steps": []})
        self.assertEqual((summary["attempts"], summary["retries"], summary["hint"]), (0, 0, None))


if __name__ == "__main__":
    unittest.main()
