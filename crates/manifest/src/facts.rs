//! Built-in facts about the machine, usable in any string of a manifest like an option:
//! `{{arch}}`, `{{deb_arch}}`, `{{os.id}}`, `{{os.codename}}`, `{{os.version_id}}`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The names of the facts. An option of the same name takes precedence in its manifest.
pub const FACTS: [&str; 5] = ["arch", "deb_arch", "os.id", "os.codename", "os.version_id"];

/// The facts of the target user of a `scope = "user"` extension: the user's login name
/// and home directory (from the passwd database, at install). A system extension that
/// uses them is refused at load.
pub const USER_FACTS: [&str; 2] = ["user", "home"];

/// The facts of this machine: `arch` as Rust and `uname -m` name it (`x86_64`, `aarch64`),
/// `deb_arch` as Debian does (`amd64`, `arm64`), and the `ID`, `VERSION_CODENAME` and
/// `VERSION_ID` of /etc/os-release (else /usr/lib/os-release). Read once. A fact the
/// machine does not have (no os-release) is absent: a manifest using it fails to resolve,
/// saying which.
pub fn facts() -> &'static BTreeMap<String, String> {
    static FACTS_OF_THIS_MACHINE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    FACTS_OF_THIS_MACHINE.get_or_init(|| {
        let os_release = std::fs::read_to_string("/etc/os-release")
            .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
            .unwrap_or_default();
        from(std::env::consts::ARCH, &os_release)
    })
}

/// The facts of a machine with architecture `arch` and os-release text `os_release`.
///
/// ```
/// let facts = em_manifest::facts_from("aarch64", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
/// assert_eq!(facts["deb_arch"], "arm64");
/// assert_eq!(facts["os.codename"], "bookworm");
/// assert_eq!(facts["os.version_id"], "12");
/// ```
pub fn from(arch: &str, os_release: &str) -> BTreeMap<String, String> {
    let deb_arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" | "i686" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    let mut facts = BTreeMap::from([
        ("arch".to_string(), arch.to_string()),
        ("deb_arch".to_string(), deb_arch.to_string()),
    ]);
    for line in os_release.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let fact = match key.trim() {
            "ID" => "os.id",
            "VERSION_CODENAME" => "os.codename",
            "VERSION_ID" => "os.version_id",
            _ => continue,
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        if !value.is_empty() {
            facts.insert(fact.to_string(), value.to_string());
        }
    }
    facts
}
