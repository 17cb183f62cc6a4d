//! `cargo xtask tidy`: checks of the repository itself, the kind no compiler makes.
//!
//! - every crate under `crates/` opens its root file (`src/lib.rs`, or `src/main.rs` for a
//!   binary-only crate) with a crate-level doc comment saying what it is for;
//! - no unfinished-work or debug macros in any `.rs` file under `crates/` or `xtask/`
//!   (clippy denies two of them too, but only in code it compiles: not in a crate that
//!   fails to build, nor behind a `cfg` that is off);
//! - the documents the project promises exist (docs/failures.md among them), and every
//!   citation of that failure catalogue in a `.rs` file (its `trap N`, or a heading's
//!   `#anchor` after the file name) names a trap or a heading it has.
//!
//! Each problem is printed as `path:line: message`, paths relative to the workspace root.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Written with `concat!` so that this file does not contain the needles it looks for.
const FORBIDDEN_MACROS: [(&str, &str); 3] = [
    (concat!("todo", "!("), "unfinished work"),
    (concat!("unimplemented", "!("), "unfinished work"),
    (concat!("dbg", "!("), "debug output"),
];

/// The documents every contributor is told to read; their absence is a failure.
const REQUIRED_FILES: [&str; 5] = [
    "README.md",
    "ARCHITECTURE.md",
    "TESTING.md",
    "docs/decisions.md",
    FAILURES,
];

/// The failure catalogue the code cites.
const FAILURES: &str = "docs/failures.md";

/// Directories scanned for `.rs` files.
const SOURCE_DIRS: [&str; 2] = ["crates", "xtask"];

/// One finding, printed as `path:line: message`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    path: String,
    line: usize,
    message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// Runs the checks and prints each problem; fails when there is any.
pub fn run(root: &Path) -> Result<(), String> {
    let report = check(root)?;
    for problem in &report.problems {
        println!("{problem}");
    }
    match report.problems.len() {
        0 => {
            eprintln!(
                "tidy: ok ({}, {} checked)",
                count(report.crates, "crate"),
                count(report.rust_files, ".rs file")
            );
            Ok(())
        }
        problems => Err(format!("tidy found {}", count(problems, "problem"))),
    }
}

/// `1 crate`, `3 crates`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[derive(Debug, Default)]
struct Report {
    problems: Vec<Problem>,
    crates: usize,
    rust_files: usize,
}

fn check(root: &Path) -> Result<Report, String> {
    let mut report = Report::default();

    for file in REQUIRED_FILES {
        if !root.join(file).is_file() {
            report.problems.push(Problem {
                path: file.to_owned(),
                line: 1,
                message: "missing: this document is required (see STYLE.md and SPEC.md)".to_owned(),
            });
        }
    }

    for crate_dir in crate_dirs(&root.join("crates"))? {
        report.crates += 1;
        check_crate_doc(root, &crate_dir, &mut report.problems)?;
    }

    let mut rust_files = Vec::new();
    for dir in SOURCE_DIRS {
        collect_rust_files(&root.join(dir), &mut rust_files)?;
    }
    rust_files.sort();
    report.rust_files = rust_files.len();
    let catalogue = root
        .join(FAILURES)
        .is_file()
        .then(|| read(&root.join(FAILURES)).map(|text| Catalogue::of(&text)))
        .transpose()?;
    for file in &rust_files {
        let text = read(file)?;
        let path = relative(root, file);
        check_forbidden_macros(&path, &text, &mut report.problems);
        if let Some(catalogue) = &catalogue {
            check_citations(&path, &text, catalogue, &mut report.problems);
        }
    }

    report.problems.sort();
    Ok(report)
}

/// The directories under `crates/` that hold a `Cargo.toml`, sorted.
fn crate_dirs(crates: &Path) -> Result<Vec<PathBuf>, String> {
    if !crates.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = read_dir(crates)?
        .into_iter()
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn check_crate_doc(
    root: &Path,
    crate_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Result<(), String> {
    let lib = crate_dir.join("src/lib.rs");
    let main = crate_dir.join("src/main.rs");
    let crate_root = if lib.is_file() {
        lib
    } else if main.is_file() {
        main
    } else {
        problems.push(Problem {
            path: relative(root, &crate_dir.join("Cargo.toml")),
            line: 1,
            message: "no src/lib.rs or src/main.rs to carry the crate-level doc comment".to_owned(),
        });
        return Ok(());
    };
    if !starts_with_crate_doc(&read(&crate_root)?) {
        problems.push(Problem {
            path: relative(root, &crate_root),
            line: 1,
            message:
                "missing crate-level doc comment (`//!`) at the top: say what this crate is for \
                      and what it is not for"
                    .to_owned(),
        });
    }
    Ok(())
}

/// Whether the first line that is neither blank nor an inner attribute (`#![deny(..)]`)
/// opens a crate doc: `//!`, `/*!` or `#![doc = ..]`.
fn starts_with_crate_doc(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty())
        .find(|line| !line.starts_with("#![") || is_doc_attribute(line))
        .is_some_and(|line| {
            line.starts_with("//!") || line.starts_with("/*!") || is_doc_attribute(line)
        })
}

fn is_doc_attribute(line: &str) -> bool {
    line.starts_with("#![doc")
}

fn check_forbidden_macros(path: &str, text: &str, problems: &mut Vec<Problem>) {
    for (index, line) in text.lines().enumerate() {
        for (needle, what) in FORBIDDEN_MACROS {
            if line.contains(needle) {
                problems.push(Problem {
                    path: path.to_owned(),
                    line: index + 1,
                    message: format!(
                        "`{needle}..)` left in the code ({what}); remove it before merging"
                    ),
                });
            }
        }
    }
}

/// What of docs/failures.md can be cited: the numbers of its traps (the numbered list under
/// `## Traps`) and the anchors of its headings.
struct Catalogue {
    traps: Vec<u32>,
    anchors: Vec<String>,
}

impl Catalogue {
    fn of(text: &str) -> Catalogue {
        let mut traps = Vec::new();
        let mut anchors = Vec::new();
        let mut in_traps = false;
        for line in text.lines() {
            if let Some(heading) = line.strip_prefix('#') {
                let heading = heading.trim_start_matches('#').trim();
                anchors.push(anchor(heading));
                in_traps = line.starts_with("## ") && heading == "Traps";
            } else if in_traps
                && let Some((number, _)) = line.split_once(". ")
                && let Ok(n) = number.parse()
            {
                traps.push(n);
            }
        }
        Catalogue { traps, anchors }
    }
}

/// The anchor GitHub gives a heading: lower case, spaces to `-`, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// Citations of the catalogue that name a trap or an anchor it does not have.
fn check_citations(path: &str, text: &str, catalogue: &Catalogue, problems: &mut Vec<Problem>) {
    for (index, line) in text.lines().enumerate() {
        for (at, _) in line.match_indices(FAILURES) {
            let after = &line[at + FAILURES.len()..];
            let missing = if let Some(rest) = after.strip_prefix(" trap ") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits
                    .parse::<u32>()
                    .ok()
                    .filter(|n| !catalogue.traps.contains(n))
                    .map(|n| format!("trap {n}"))
            } else if let Some(rest) = after.strip_prefix('#') {
                let cited: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                (!catalogue.anchors.contains(&cited)).then(|| format!("a heading `#{cited}`"))
            } else {
                None
            };
            if let Some(missing) = missing {
                problems.push(Problem {
                    path: path.to_owned(),
                    line: index + 1,
                    message: format!("cites {missing} of {FAILURES}, which has none"),
                });
            }
        }
    }
}

/// Every `.rs` file under `dir`, skipping build output (`target/`) and hidden directories.
fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    if !dir.is_dir() {
        return Ok(());
    }
    for path in read_dir(dir)? {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                collect_rust_files(&path, files)?;
            }
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        fs::read_dir(dir).map_err(|error| format!("cannot list {}: {error}", dir.display()))?;
    entries
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("cannot list {}: {error}", dir.display()))
}

/// A file's text; bytes that are not UTF-8 are replaced rather than failing the check.
fn read(path: &Path) -> Result<String, String> {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// `path` relative to the workspace root, with `/` separators, as editors link it.
fn relative(root: &Path, path: &Path) -> String {
    let path = path.strip_prefix(root).unwrap_or(path);
    path.components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    const TODO: &str = FORBIDDEN_MACROS[0].0;
    const DBG: &str = FORBIDDEN_MACROS[2].0;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "xtask-tidy-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&dir).expect("create scratch dir");
            Self(dir)
        }

        fn write(&self, path: &str, text: &str) {
            let path = self.0.join(path);
            fs::create_dir_all(path.parent().expect("file has a parent"))
                .expect("create parent dirs");
            fs::write(path, text).expect("write scratch file");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn lines(root: &Path) -> Vec<String> {
        check(root)
            .expect("check runs")
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn crate_doc_is_the_first_thing_after_inner_attributes() {
        assert!(starts_with_crate_doc("//! What it is.\nuse std::fs;\n"));
        assert!(starts_with_crate_doc(
            "\n#![deny(missing_docs)]\n//! What it is.\n"
        ));
        assert!(starts_with_crate_doc("/*! What it is. */\n"));
        assert!(starts_with_crate_doc(
            "#![doc = include_str!(\"../README.md\")]\n"
        ));
        assert!(!starts_with_crate_doc("use std::fs;\n//! Too late.\n"));
        assert!(!starts_with_crate_doc(
            "/// An item doc, not a crate doc.\nfn main() {}\n"
        ));
        assert!(!starts_with_crate_doc(""));
    }

    #[test]
    fn a_clean_repository_has_no_problems() {
        let repo = Scratch::new();
        for file in REQUIRED_FILES {
            repo.write(file, "# doc\n");
        }
        repo.write("crates/core/Cargo.toml", "[package]\n");
        repo.write("crates/core/src/lib.rs", "//! The core.\n");
        repo.write("crates/cli/Cargo.toml", "[package]\n");
        repo.write("crates/cli/src/main.rs", "//! The binary.\nfn main() {}\n");
        repo.write("xtask/src/main.rs", "//! Automation.\nfn main() {}\n");

        assert_eq!(lines(&repo.0), Vec::<String>::new());
    }

    #[test]
    fn citations_of_the_failure_catalogue_must_name_a_trap_or_heading_it_has() {
        let repo = Scratch::new();
        for file in REQUIRED_FILES {
            repo.write(file, "# doc\n");
        }
        repo.write(
            FAILURES,
            "# Failures\n\n## Traps\n\n1. **One.** Text.\n2. **Two.**\n\n## apt-get\n\n3. not a trap\n\n## A checksum mismatch (curl and wget)\n",
        );
        repo.write("crates/core/Cargo.toml", "[package]\n");
        repo.write(
            "crates/core/src/lib.rs",
            &format!(
                "//! The core ({FAILURES} trap 2, {FAILURES}#apt-get).\n// {FAILURES} trap 3\n// {FAILURES}#a-checksum-mismatch-curl-and-wget, {FAILURES}#pip\n// {FAILURES} (npm) and {FAILURES}: fine\n"
            ),
        );
        assert_eq!(
            lines(&repo.0),
            [
                format!("crates/core/src/lib.rs:2: cites trap 3 of {FAILURES}, which has none"),
                format!(
                    "crates/core/src/lib.rs:3: cites a heading `#pip` of {FAILURES}, which has none"
                ),
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path_and_line() {
        let repo = Scratch::new();
        repo.write("README.md", "# doc\n");
        repo.write("TESTING.md", "# doc\n");
        repo.write("crates/core/Cargo.toml", "[package]\n");
        repo.write(
            "crates/core/src/lib.rs",
            &format!("//! The core.\n\nfn f() {{\n    {TODO})\n}}\n"),
        );
        // src/lib.rs is the crate root when both exist: main.rs needs no crate doc then.
        repo.write("crates/core/src/main.rs", "fn main() {}\n");
        repo.write("crates/cli/Cargo.toml", "[package]\n");
        repo.write(
            "crates/cli/src/main.rs",
            &format!("fn main() {{\n    {DBG}1);\n}}\n"),
        );
        repo.write("crates/empty/Cargo.toml", "[package]\n");
        repo.write("crates/not-a-crate/notes.rs", &format!("{DBG}2);\n"));
        repo.write("crates/core/target/debug/build.rs", &format!("{TODO})\n"));
        repo.write(
            "xtask/src/main.rs",
            &format!("//! Automation.\nfn main() {{ {TODO}) }}\n"),
        );

        assert_eq!(
            lines(&repo.0),
            [
                "ARCHITECTURE.md:1: missing: this document is required (see STYLE.md and SPEC.md)".to_owned(),
                "crates/cli/src/main.rs:1: missing crate-level doc comment (`//!`) at the top: say what \
                 this crate is for and what it is not for"
                    .to_owned(),
                format!("crates/cli/src/main.rs:2: `{DBG}..)` left in the code (debug output); remove it before merging"),
                format!("crates/core/src/lib.rs:4: `{TODO}..)` left in the code (unfinished work); remove it before merging"),
                "crates/empty/Cargo.toml:1: no src/lib.rs or src/main.rs to carry the crate-level doc comment"
                    .to_owned(),
                format!("crates/not-a-crate/notes.rs:1: `{DBG}..)` left in the code (debug output); remove it before merging"),
                "docs/decisions.md:1: missing: this document is required (see STYLE.md and SPEC.md)".to_owned(),
                "docs/failures.md:1: missing: this document is required (see STYLE.md and SPEC.md)".to_owned(),
                format!("xtask/src/main.rs:2: `{TODO}..)` left in the code (unfinished work); remove it before merging"),
            ]
        );
    }
}
