//! The target user of `scope = "user"` extensions: who `--user NAME` (or the sudo caller,
//! or the user running us) is, from the passwd database, and how their commands run.
//!
//! The account is looked up with `getpwnam_r` and `getgrouplist` (so that NSS sources such
//! as LDAP count, not only /etc/passwd), once, before anything runs; a command of theirs
//! gets [`em_exec::RunAs`] from it.

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use em_manifest::TargetUser;

/// A user account, as the passwd database has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub home: PathBuf,
    /// The login shell.
    pub shell: PathBuf,
    /// Every group of the user (primary first), as `initgroups` would set them.
    pub groups: Vec<u32>,
}

impl Account {
    /// What a manifest's `{{user}}` and `{{home}}` become.
    pub fn target(&self) -> TargetUser {
        TargetUser {
            name: self.name.clone(),
            home: self.home.display().to_string(),
            uid: self.uid,
            gid: self.gid,
        }
    }

    /// How a command of this user runs.
    pub fn run_as(&self) -> em_exec::RunAs {
        em_exec::RunAs {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.clone(),
            name: self.name.clone(),
            home: self.home.clone(),
        }
    }

    /// How a command of `target` runs: its account looked up again, with all its groups;
    /// a user that vanished or changed since planning still runs as the uid and gid the
    /// plan saw (a run that then cannot start), never as root.
    pub fn run_as_target(target: &TargetUser) -> em_exec::RunAs {
        Account::of(target)
            .map(|a| a.run_as())
            .unwrap_or_else(|_| em_exec::RunAs {
                uid: target.uid,
                gid: target.gid,
                groups: vec![target.gid],
                name: target.name.clone(),
                home: target.home.clone().into(),
            })
    }

    /// The account of a resolved manifest's target user (looked up again: the manifest
    /// carries only what its strings need).
    pub fn of(target: &TargetUser) -> Result<Account, String> {
        let account = lookup(&target.name)?;
        if account.uid != target.uid {
            return Err(format!(
                "the user `{}` changed while extension-manager ran (uid {} then {})",
                target.name, target.uid, account.uid
            ));
        }
        Ok(account)
    }
}

/// Checks a user name: `[a-z_][a-z0-9_-]*` (a trailing `$` allowed), at most 32 bytes,
/// what `useradd` accepts by default. A name starting with `-` never reaches a tool.
pub fn check_name(name: &str) -> Result<(), String> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let mut chars = body.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok || name.len() > 32 {
        return Err(format!(
            "`{name}` is not a user name (hint: user names match [a-z_][a-z0-9_-]*, e.g. --user alice)"
        ));
    }
    Ok(())
}

/// Looks `name` up in the passwd database, with the user's groups.
pub fn lookup(name: &str) -> Result<Account, String> {
    check_name(name)?;
    let c_name = CString::new(name).map_err(|_| format!("`{name}` is not a user name"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwnam_r writes into it and
    // into `buf` (whose length it is told), and `result` says whether it found the user.
    #[allow(unsafe_code)]
    let (pw, found) = unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc != 0 {
            return Err(format!(
                "cannot look up the user `{name}`: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        (pw, !result.is_null())
    };
    if !found {
        return Err(format!(
            "there is no user `{name}` on this machine (hint: create it first with `useradd -m {name}`, or pass another --user)"
        ));
    }
    // SAFETY: getpwnam_r succeeded, so pw_dir and pw_shell point at NUL-terminated
    // strings inside `buf`, which is still alive.
    #[allow(unsafe_code)]
    let (home, shell) = unsafe {
        (
            CStr::from_ptr(pw.pw_dir).to_string_lossy().into_owned(),
            CStr::from_ptr(pw.pw_shell).to_string_lossy().into_owned(),
        )
    };
    if !home.starts_with('/') || home.split('/').any(|c| c == "..") {
        return Err(format!(
            "the home of `{name}` is `{home}`, not an absolute path (hint: fix it with `usermod -d`)"
        ));
    }
    Ok(Account {
        name: name.to_string(),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        home: PathBuf::from(home),
        shell: PathBuf::from(shell),
        groups: groups(&c_name, pw.pw_gid),
    })
}

/// The groups of the user (`getgrouplist`), primary first; just the primary on failure.
fn groups(name: &CStr, gid: u32) -> Vec<u32> {
    let mut count: libc::c_int = 64;
    for _ in 0..4 {
        let mut list = vec![0 as libc::gid_t; usize::try_from(count).unwrap_or(64)];
        let mut n = count;
        // SAFETY: `list` has room for `n` entries, as getgrouplist is told; it sets `n` to
        // the number it needs when that is more.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, list.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            list.truncate(usize::try_from(n).unwrap_or(0));
            return list;
        }
        count = n.max(count * 2);
    }
    vec![gid]
}

/// Whom `scope = "user"` extensions are for, given `--user` (`flag`), our effective uid,
/// our own login name (when not root) and `SUDO_USER`: `--user` when given; else, run as
/// a non-root user, that user (no switching needed); else, under sudo, the user who ran
/// sudo. `Ok(None)`: root with neither (fine unless a user extension is in the run).
///
/// ```
/// use em_install::user::target_name;
/// assert_eq!(target_name(Some("alice"), 0, None, Some("bob")).unwrap().as_deref(), Some("alice"));
/// assert_eq!(target_name(None, 0, None, Some("bob")).unwrap().as_deref(), Some("bob"));
/// assert_eq!(target_name(None, 1000, Some("carol"), None).unwrap().as_deref(), Some("carol"));
/// assert_eq!(target_name(None, 0, None, None).unwrap(), None);
/// assert!(target_name(Some("-rf"), 0, None, None).is_err());
/// assert!(target_name(Some("bob"), 1000, Some("carol"), None).is_err(), "only root switches");
/// ```
pub fn target_name(
    flag: Option<&str>,
    euid: u32,
    me: Option<&str>,
    sudo_user: Option<&str>,
) -> Result<Option<String>, String> {
    if let Some(name) = flag {
        check_name(name)?;
        if euid != 0 && me != Some(name) {
            return Err(format!(
                "--user {name} needs root: only root can install as another user (hint: run it with sudo)"
            ));
        }
        return Ok(Some(name.to_string()));
    }
    if euid != 0 {
        return Ok(me.map(str::to_string));
    }
    match sudo_user.filter(|u| !u.is_empty() && *u != "root") {
        Some(u) => {
            check_name(u)?;
            Ok(Some(u.to_string()))
        }
        None => Ok(None),
    }
}

/// [`target_name`] for this process: our euid, our login name and `SUDO_USER`.
pub fn target_name_here(flag: Option<&str>) -> Result<Option<String>, String> {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    let me = (euid != 0).then(|| own_name(euid)).flatten();
    let sudo = std::env::var("SUDO_USER").ok();
    target_name(flag, euid, me.as_deref(), sudo.as_deref())
}

/// The login name of `uid` (`getpwuid_r`).
fn own_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: as in `lookup`: out-parameters of the right size; pw_name points into `buf`.
    #[allow(unsafe_code)]
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            uid,
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null())
            .then(|| CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned())
    }
}

/// The hint when a user extension is in a run as root with no target user.
pub const NO_TARGET_HINT: &str = "user extensions install into one user's home: pass --user NAME (under sudo, the user who ran sudo is the default)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_lookup() {
        for bad in ["", "-x", "Alice", "a b", "a/b", "1abc", &"a".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
            assert!(lookup(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "_svc", "a-b_c1", "machine$"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn root_is_found_with_its_home_and_groups() {
        let root = lookup("root").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.home.is_absolute());
        assert_eq!(root.groups.first(), Some(&0));
        let err = lookup("no-such-user-em").expect_err("absent");
        assert!(err.contains("no user `no-such-user-em`"), "{err}");
    }

    #[test]
    fn the_target_follows_flag_then_self_then_sudo() {
        assert_eq!(
            target_name(None, 0, None, Some("root")).expect("ok"),
            None,
            "sudo from root is root"
        );
        assert_eq!(
            target_name(Some("carol"), 1000, Some("carol"), None).expect("ok"),
            Some("carol".into())
        );
        assert!(target_name(None, 0, None, Some("-evil")).is_err());
    }
}
