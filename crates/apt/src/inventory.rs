//! What dpkg has installed, read in one `dpkg-query -W` call, and what `apt-get -s` says a
//! removal would take: the two facts an exact undo is built on.

use std::collections::BTreeSet;

/// The format [`crate::Apt::inventory`] asks `dpkg-query -W -f` for: the package as dpkg
/// names it (`libc6`, or `libc6:amd64` for a `Multi-Arch: same` package), its
/// architecture, and the three status letters (`ii `), separated by tabs.
pub const INVENTORY_FORMAT: &str = "${binary:Package}\t${Architecture}\t${db:Status-Abbrev}\n";

/// The packages dpkg has on the machine: unpacked or installed, including the half-done
/// states of an interrupted run (`iU`, `iF`, `iH`...). A package dpkg only remembers the
/// configuration files of (`rc`) or knows nothing of (`un`) is not in it.
///
/// Names are apt's: dpkg calls a `Multi-Arch: same` package of the machine's own
/// architecture `libssl3:amd64`, while apt's simulations (`Remv libssl3 [...]`) and
/// its arguments use `libssl3`; only a foreign architecture keeps its qualifier. The
/// machine's architecture is that of the `dpkg` package itself, read in the same call.
///
/// ```
/// use em_apt::DpkgInventory;
///
/// let inv = DpkgInventory::parse(
///     "dpkg\tamd64\tii \npython3\tamd64\tii \nlibssl3:amd64\tamd64\tii \n\
///      libc6:i386\ti386\tii \ngcc-12\tamd64\trc \nperl\tamd64\tiU \n",
/// );
/// assert!(inv.contains("python3") && inv.contains("perl"));
/// assert!(inv.contains("libssl3"), "named as apt names it");
/// assert!(!inv.contains("gcc-12"), "only its configuration files are left");
/// assert!(inv.contains_name("libc6"), "any architecture");
/// assert_eq!(inv.canonical("libssl3:amd64"), "libssl3");
/// assert_eq!(inv.canonical("libc6:i386"), "libc6:i386");
/// let before = DpkgInventory::parse("dpkg\tamd64\tii \npython3\tamd64\tii \n");
/// assert_eq!(
///     inv.added_since(&before).into_iter().collect::<Vec<_>>(),
///     ["libc6:i386", "libssl3", "perl"]
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DpkgInventory {
    packages: BTreeSet<String>,
    native: Option<String>,
}

impl DpkgInventory {
    /// Reads the lines of `dpkg-query -W -f` [`INVENTORY_FORMAT`].
    pub fn parse(text: &str) -> DpkgInventory {
        let rows: Vec<(&str, &str, &str)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let name = fields.next()?.trim();
                let arch = fields.next()?.trim();
                let status = fields.next()?;
                (!name.is_empty()).then_some((name, arch, status))
            })
            .collect();
        let native = rows
            .iter()
            .find(|(name, _, _)| *name == "dpkg" || name.starts_with("dpkg:"))
            .map(|(_, arch, _)| arch.to_string())
            .filter(|arch| !arch.is_empty());
        let mut inventory = DpkgInventory {
            packages: BTreeSet::new(),
            native,
        };
        let packages = rows
            .iter()
            .filter(|(_, _, status)| is_on_disk(status))
            .map(|(name, _, _)| inventory.canonical(name))
            .collect();
        inventory.packages = packages;
        inventory
    }

    /// `package` as apt names it: without the qualifier of the machine's own architecture
    /// (`libssl3:amd64` is `libssl3`), with any other (`libc6:i386`). State files written
    /// before names were canonical hold the qualified form; this reads both.
    pub fn canonical(&self, package: &str) -> String {
        match (&self.native, package.split_once(':')) {
            (Some(native), Some((name, arch))) if arch == native => name.to_string(),
            _ => package.to_string(),
        }
    }

    /// Whether `package` (`libc6`, `libc6:i386`, or `libssl3:amd64` on amd64) is on the
    /// machine.
    pub fn contains(&self, package: &str) -> bool {
        self.packages.contains(&self.canonical(package))
    }

    /// Whether a package called `name` is on the machine, in any architecture.
    pub fn contains_name(&self, name: &str) -> bool {
        self.packages
            .iter()
            .any(|p| p == name || p.split_once(':').is_some_and(|(n, _)| n == name))
    }

    /// What is on the machine now and was not in `before`: what happened in between added.
    pub fn added_since(&self, before: &DpkgInventory) -> BTreeSet<String> {
        self.packages
            .difference(&before.packages)
            .cloned()
            .collect()
    }

    /// Every package, as apt names it.
    pub fn packages(&self) -> &BTreeSet<String> {
        &self.packages
    }
}

/// The second letter of dpkg's status abbreviation is the current state: `n` not
/// installed, `c` only its configuration files; every other one (`i`nstalled, `U`npacked,
/// `F`ailed config, `H`alf installed, `W`/`t` triggers) has files on disk.
fn is_on_disk(status: &str) -> bool {
    !matches!(
        status.chars().nth(1),
        None | Some('n') | Some('c') | Some(' ')
    )
}

/// The packages a simulated `apt-get -s remove|purge|autoremove` would take away: its
/// `Remv NAME [VERSION]` and `Purg NAME [VERSION]` lines.
///
/// ```
/// let text = "NOTE: This is only a simulation!\nRemv libuv1 [1.44.2-1]\nPurg nodejs [18.19.0]\n";
/// let gone = em_apt::parse_simulated_removals(text);
/// assert_eq!(gone.into_iter().collect::<Vec<_>>(), ["libuv1", "nodejs"]);
/// ```
pub fn parse_simulated_removals(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("Remv ")
                .or_else(|| line.strip_prefix("Purg "))?;
            rest.split_whitespace().next().map(str::to_string)
        })
        .collect()
}

/// A line of apt's `APT::Status-Fd` output, as a short progress text: `dlstatus:` (the
/// download) and `pmstatus:` (dpkg's work) lines are `KIND:PACKAGE:PERCENT:DESCRIPTION`.
/// `None` for any other line (apt's usual output, interleaved with them on stdout).
///
/// ```
/// assert_eq!(
///     em_apt::status_fd_line("pmstatus:jq:42.8571:Unpacking jq (amd64)").as_deref(),
///     Some("43% Unpacking jq (amd64)")
/// );
/// assert_eq!(
///     em_apt::status_fd_line("dlstatus:3:20.6:Retrieving file 3 of 9").as_deref(),
///     Some("downloading 21% Retrieving file 3 of 9")
/// );
/// assert_eq!(em_apt::status_fd_line("Setting up jq (1.6-2.1) ..."), None);
/// ```
pub fn status_fd_line(line: &str) -> Option<String> {
    let (kind, rest) = line.split_once(':')?;
    let phase = match kind {
        "dlstatus" => "downloading ",
        "pmstatus" => "",
        _ => return None,
    };
    let mut fields = rest.splitn(3, ':');
    let _package = fields.next()?;
    let percent: f64 = fields.next()?.trim().parse().ok()?;
    let description = fields.next().unwrap_or("").trim();
    Some(format!(
        "{phase}{:.0}% {description}",
        percent.clamp(0.0, 100.0)
    ))
}

/// apt's line while it waits for dpkg's lock (`Waiting for cache lock: Could not get lock
/// /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)...`), as a short
/// text naming the holder. `None` for any other line.
///
/// ```
/// let line = "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. \
///             It is held by process 4242 (apt-get)... 5s";
/// assert_eq!(
///     em_apt::lock_wait_line(line).as_deref(),
///     Some("dpkg's lock is held by process 4242 (apt-get)")
/// );
/// assert_eq!(em_apt::lock_wait_line("Reading package lists..."), None);
/// ```
pub fn lock_wait_line(line: &str) -> Option<String> {
    let rest = &line[line.find("Waiting for cache lock")?..];
    match rest.find("held by process ") {
        Some(at) => {
            let holder = rest[at + "held by ".len()..].trim_end_matches(|c: char| {
                c.is_ascii_digit() || c == '.' || c == 's' || c.is_whitespace()
            });
            let holder = holder.split("...").next().unwrap_or(holder).trim();
            Some(format!("dpkg's lock is held by {holder}"))
        }
        None => Some("dpkg's lock is held by another process".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_keeps_what_has_files_on_disk() {
        let inv = DpkgInventory::parse(
            "a\tall\tii \nb\tamd64\tiU \nc\tamd64\trc \nd\t\tun \ne\tall\tiF \nf\tamd64\thi \nbroken line\n\tall\tii \n",
        );
        let names: Vec<&str> = inv.packages().iter().map(String::as_str).collect();
        assert_eq!(names, ["a", "b", "e", "f"]);
    }

    #[test]
    fn simulation_lines_other_than_removals_are_ignored() {
        let text = "Reading package lists...\nThe following packages will be REMOVED:\n  nodejs\nRemv nodejs [18]\nInst x (1 stable)\n";
        assert_eq!(
            parse_simulated_removals(text),
            BTreeSet::from(["nodejs".to_string()])
        );
    }
}
