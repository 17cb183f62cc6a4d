//! The archive's tree as it will land, checked lexically: every entry's place is resolved
//! through the symlinks the archive itself made, and nothing may resolve outside the root.
//!
//! Nothing here touches the disk. The walk of the real target directory (where existing
//! symlinks are refused, never followed) is in `lib.rs`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Symlink chains longer than this are refused (Linux's own limit is 40).
const MAX_LINK_DEPTH: usize = 40;

/// What an entry of the archive is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    /// A hard link to an earlier file of the archive, named by its archive path.
    HardLink(PathBuf),
}

/// A node of the tree: what lands at a resolved path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    File,
    Symlink(PathBuf),
}

/// Where an accepted entry lands, relative to the unpack root.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    /// The resolved path of the entry: no component of it is a symlink of the archive.
    pub at: PathBuf,
    /// For a hard link: the resolved path of the file it links to.
    pub link_to: Option<PathBuf>,
}

/// The resolved paths of an archive, each with its node. Keys are relative; a parent sorts
/// before its children (`PathBuf` orders by components).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tree {
    pub nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    /// Accepts the entry `name` of kind `kind`, or says why not (the caller names the
    /// entry). `Ok(None)` for an entry naming the root itself (`./`), which changes nothing.
    pub fn add(&mut self, name: &Path, kind: &Kind) -> Result<Option<Placed>, String> {
        let parts = archive_path(name)?;
        let Some((last, parents)) = parts.split_last() else {
            return match kind {
                Kind::Dir => Ok(None),
                _ => Err("names the unpack directory itself".to_string()),
            };
        };
        let parent = self.resolve(PathBuf::new(), parents, 0)?;
        for dir in parent.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            match self.nodes.get(dir) {
                None => {}
                Some(Node::Dir) => break,
                Some(_) => {
                    return Err(format!(
                        "goes through `{}`, which is not a directory",
                        dir.display()
                    ));
                }
            }
        }
        let mut dir = PathBuf::new();
        for part in parent.components() {
            dir.push(part);
            self.nodes.entry(dir.clone()).or_insert(Node::Dir);
        }
        let at = parent.join(last);
        let (node, link_to) = match kind {
            Kind::Dir => (Node::Dir, None),
            Kind::File => (Node::File, None),
            Kind::Symlink(target) => {
                self.check_link(&parent, target)?;
                (Node::Symlink(target.clone()), None)
            }
            Kind::HardLink(target) => {
                let target_parts = archive_path(target)
                    .map_err(|why| format!("is a hard link whose target {why}"))?;
                let resolved = self.resolve(PathBuf::new(), &target_parts, 0)?;
                match self.nodes.get(&resolved) {
                    Some(Node::File) if resolved != at => (Node::File, Some(resolved)),
                    _ => {
                        return Err(format!(
                            "is a hard link to `{}`, which is not a file earlier in the archive",
                            target.display()
                        ));
                    }
                }
            }
        };
        match (self.nodes.get(&at), &node) {
            (None, _) => {
                self.nodes.insert(at.clone(), node);
            }
            (Some(Node::Dir), Node::Dir) => {}
            (Some(_), _) => {
                return Err(format!(
                    "is in the archive twice (as `{}`); refusing to replace one with the other",
                    at.display()
                ));
            }
        }
        Ok(Some(Placed { at, link_to }))
    }

    /// Checks every symlink again against the whole tree: a later entry can change where an
    /// earlier link leads (`a -> b/c/..` with `b/c -> ..` added afterwards).
    pub fn finish(&self) -> Result<(), (PathBuf, String)> {
        for (at, node) in &self.nodes {
            if let Node::Symlink(target) = node {
                let parent = at.parent().unwrap_or(Path::new(""));
                self.check_link(parent, target)
                    .map_err(|why| (at.clone(), why))?;
            }
        }
        Ok(())
    }

    fn check_link(&self, parent: &Path, target: &Path) -> Result<(), String> {
        if target.has_root() {
            return Err(format!(
                "is a symlink to the absolute path `{}`",
                target.display()
            ));
        }
        if target.as_os_str().is_empty() {
            return Err("is a symlink with an empty target".to_string());
        }
        let parts: Vec<Component<'_>> = target.components().collect();
        self.resolve_components(parent.to_path_buf(), &parts, 0)
            .map(|_| ())
            .map_err(|why| format!("is a symlink to `{}`, which {why}", target.display()))
    }

    /// `parts` resolved from `base` (itself resolved), following the archive's symlinks.
    fn resolve(&self, base: PathBuf, parts: &[OsString], depth: usize) -> Result<PathBuf, String> {
        let parts: Vec<Component<'_>> = parts
            .iter()
            .map(|p| Component::Normal(p.as_os_str()))
            .collect();
        self.resolve_components(base, &parts, depth)
    }

    fn resolve_components(
        &self,
        mut at: PathBuf,
        parts: &[Component<'_>],
        depth: usize,
    ) -> Result<PathBuf, String> {
        if depth > MAX_LINK_DEPTH {
            return Err("goes through too many levels of symlinks".to_string());
        }
        for part in parts {
            match part {
                Component::CurDir => {}
                Component::ParentDir => {
                    if !at.pop() {
                        return Err("resolves outside the unpack directory".to_string());
                    }
                }
                Component::Normal(name) => {
                    at.push(name);
                    if let Some(Node::Symlink(target)) = self.nodes.get(&at) {
                        if target.has_root() {
                            return Err("resolves outside the unpack directory".to_string());
                        }
                        let parent = at.parent().unwrap_or(Path::new("")).to_path_buf();
                        let target_parts: Vec<Component<'_>> = target.components().collect();
                        at = self.resolve_components(parent, &target_parts, depth + 1)?;
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err("resolves outside the unpack directory".to_string());
                }
            }
        }
        Ok(at)
    }
}

/// The normal components of an entry's name; absolute names and `..` are refused.
pub(crate) fn archive_path(name: &Path) -> Result<Vec<OsString>, String> {
    let mut parts = Vec::new();
    for part in name.components() {
        match part {
            Component::Normal(p) => parts.push(p.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err("has a `..` component".to_string()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("is an absolute path".to_string());
            }
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(t: &str) -> Kind {
        Kind::Symlink(PathBuf::from(t))
    }

    #[test]
    fn names_with_dotdot_or_a_root_are_refused() {
        let mut tree = Tree::default();
        assert_eq!(
            tree.add(Path::new("../x"), &Kind::File),
            Err("has a `..` component".to_string())
        );
        assert_eq!(
            tree.add(Path::new("a/../../x"), &Kind::File),
            Err("has a `..` component".to_string())
        );
        assert_eq!(
            tree.add(Path::new("/etc/passwd"), &Kind::File),
            Err("is an absolute path".to_string())
        );
        assert!(tree.nodes.is_empty());
    }

    #[test]
    fn entries_land_through_links_that_stay_inside() {
        let mut tree = Tree::default();
        tree.add(Path::new("real/"), &Kind::Dir).expect("dir");
        tree.add(Path::new("l"), &link("real")).expect("link");
        let placed = tree
            .add(Path::new("l/x"), &Kind::File)
            .expect("through the link")
            .expect("placed");
        assert_eq!(placed.at, PathBuf::from("real/x"));
        tree.finish().expect("all inside");
    }

    #[test]
    fn links_out_are_refused() {
        let mut tree = Tree::default();
        assert!(tree.add(Path::new("etcl"), &link("/etc")).is_err());
        assert!(tree.add(Path::new("up"), &link("..")).is_err());
        assert!(tree.add(Path::new("a/up"), &link("../..")).is_err());
        tree.add(Path::new("a/ok"), &link("..")).expect("the root");
        assert!(tree.add(Path::new("a/ok/up"), &link("..")).is_err());
    }

    #[test]
    fn a_later_link_cannot_turn_an_earlier_one_outwards() {
        let mut tree = Tree::default();
        tree.add(Path::new("a"), &link("b/c/.."))
            .expect("lexically b");
        tree.add(Path::new("b/c"), &link("..")).expect("the root");
        assert!(tree.finish().is_err(), "a now leads to the root's parent");
    }

    #[test]
    fn hard_links_only_to_earlier_files() {
        let mut tree = Tree::default();
        assert!(
            tree.add(Path::new("h"), &Kind::HardLink("/etc/shadow".into()))
                .is_err()
        );
        assert!(
            tree.add(Path::new("h"), &Kind::HardLink("missing".into()))
                .is_err()
        );
        tree.add(Path::new("f"), &Kind::File).expect("file");
        let placed = tree
            .add(Path::new("h"), &Kind::HardLink("f".into()))
            .expect("link")
            .expect("placed");
        assert_eq!(placed.link_to, Some(PathBuf::from("f")));
    }

    #[test]
    fn duplicates_other_than_directories_are_refused() {
        let mut tree = Tree::default();
        tree.add(Path::new("d/"), &Kind::Dir).expect("dir");
        tree.add(Path::new("d"), &Kind::Dir).expect("again");
        tree.add(Path::new("f"), &Kind::File).expect("file");
        assert!(tree.add(Path::new("f"), &Kind::File).is_err());
        assert!(tree.add(Path::new("d"), &link("f")).is_err());
        assert!(tree.add(Path::new("f/x"), &Kind::File).is_err());
    }
}
