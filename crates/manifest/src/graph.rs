//! The dependency graph: closure over `requires`, install order, conflicts, cycles.
//!
//! Everything here is deterministic: sets are ordered by name, and among extensions that
//! could go next, the first by name goes first.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Catalog;
use crate::diagnostic::{Diagnostic, Spanned};
use crate::schema::Manifest;

/// Why an edge of the graph exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edge {
    Requires,
    After,
}

impl Catalog {
    /// The requested extensions and everything they require, transitively, sorted by name.
    ///
    /// An unknown name is an error with a "did you mean" hint.
    pub fn closure<S: AsRef<str>>(&self, names: &[S]) -> Result<Vec<String>, Diagnostic> {
        Ok(self.closure_set(names)?.into_iter().collect())
    }

    fn closure_set<S: AsRef<str>>(&self, names: &[S]) -> Result<BTreeSet<String>, Diagnostic> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref();
            if !self.contains(name) {
                return Err(Diagnostic::new(format!("unknown extension `{name}`"))
                    .with_hint(self.unknown_hint(name)));
            }
            stack.push(name.to_string());
        }
        while let Some(name) = stack.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(m) = self.get(&name) {
                stack.extend(m.requires.iter().map(|r| r.value.clone()));
            }
        }
        Ok(seen)
    }

    /// The install order of `requested` and their requirements: each extension after what
    /// it `requires`, and after what it names in `after` when that is in the same run;
    /// among the extensions that could go next, the first by name.
    ///
    /// Errors: an unknown name; two extensions of the run that conflict (either one
    /// declaring it); an extension of the run that conflicts with one of `installed`; a
    /// cycle (only possible through `after` edges, since the catalog rejects cycles of
    /// `requires`), printed as `a -> b -> a`.
    ///
    /// ```
    /// use em_manifest::{Catalog, Manifest};
    /// let m = |n: &str, extra: &str| Manifest::parse(
    ///     format!("{n}.toml"),
    ///     &format!("[extension]\nname = \"{n}\"\nversion = \"1\"\n{extra}"),
    /// ).unwrap();
    /// let catalog = Catalog::from_parts([
    ///     m("base", ""),
    ///     m("docker", "requires = [\"base\"]"),
    ///     m("nodejs", "requires = [\"base\"]\nafter = [\"docker\"]"),
    /// ], []).unwrap();
    /// assert_eq!(catalog.order(&["nodejs"], &[] as &[&str]).unwrap(), ["base", "nodejs"]);
    /// assert_eq!(catalog.order(&["nodejs", "docker"], &[] as &[&str]).unwrap(), ["base", "docker", "nodejs"]);
    /// ```
    pub fn order<S: AsRef<str>, I: AsRef<str>>(
        &self,
        requested: &[S],
        installed: &[I],
    ) -> Result<Vec<String>, Diagnostic> {
        let run = self.closure_set(requested)?;
        let requested: BTreeSet<&str> = requested.iter().map(AsRef::as_ref).collect();
        self.check_conflicts(&run, &requested, installed)?;

        // predecessor -> successors, with the reason of each edge.
        let mut successors: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut indegree: BTreeMap<&str, usize> = run.iter().map(|n| (n.as_str(), 0)).collect();
        for name in &run {
            let m = self.manifest(name);
            let mut before: BTreeSet<&str> = m.requires.iter().map(|r| r.value.as_str()).collect();
            before.extend(
                m.after
                    .iter()
                    .map(|a| a.value.as_str())
                    .filter(|a| run.contains(*a) && *a != name.as_str()),
            );
            for b in before {
                successors.entry(b).or_default().push(name);
                *indegree.entry(name).or_default() += 1;
            }
        }
        let mut ready: BTreeSet<&str> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| *n)
            .collect();
        let mut order = Vec::with_capacity(run.len());
        while let Some(next) = ready.pop_first() {
            order.push(next.to_string());
            for s in successors.get(next).into_iter().flatten() {
                if let Some(d) = indegree.get_mut(s) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(s);
                    }
                }
            }
        }
        if order.len() == run.len() {
            return Ok(order);
        }
        let left: BTreeSet<&str> = indegree
            .iter()
            .filter(|(_, d)| **d > 0)
            .map(|(n, _)| *n)
            .collect();
        Err(self.cycle_error(&left, true))
    }

    fn manifest(&self, name: &str) -> &Manifest {
        // Only called with names of the closure, which are all in the catalog.
        self.get(name).expect("closure names are known")
    }

    fn check_conflicts<I: AsRef<str>>(
        &self,
        run: &BTreeSet<String>,
        requested: &BTreeSet<&str>,
        installed: &[I],
    ) -> Result<(), Diagnostic> {
        let why = |name: &str| -> String {
            if requested.contains(name) {
                String::new()
            } else {
                let by: Vec<String> = run
                    .iter()
                    .filter(|n| self.manifest(n).requires_name(name))
                    .map(|n| format!("`{n}`"))
                    .collect();
                format!(" (`{name}` is required by {})", by.join(", "))
            }
        };
        for name in run {
            let m = self.manifest(name);
            for c in &m.conflicts {
                if run.contains(&c.value) && c.value != *name {
                    return Err(m
                        .error_at(
                            c.span.clone(),
                            format!(
                                "`{name}` conflicts with `{}`: they cannot be installed together",
                                c.value
                            ),
                        )
                        .with_hint(format!(
                            "install them in separate environments, or leave one of them out{}{}",
                            why(name),
                            why(&c.value)
                        )));
                }
            }
        }
        let installed: BTreeSet<&str> = installed.iter().map(AsRef::as_ref).collect();
        for name in run {
            let m = self.manifest(name);
            for c in &m.conflicts {
                if installed.contains(c.value.as_str()) && !run.contains(&c.value) {
                    return Err(m
                        .error_at(
                            c.span.clone(),
                            format!("`{name}` conflicts with `{}`, which is installed", c.value),
                        )
                        .with_hint(format!(
                            "remove it first: extension-manager remove {}",
                            c.value
                        )));
                }
            }
            for other in &installed {
                if run.contains(*other) {
                    continue;
                }
                if let Some(o) = self.get(other)
                    && let Some(c) = o.conflicts.iter().find(|c| c.value == *name)
                {
                    return Err(o
                        .error_at(
                            c.span.clone(),
                            format!("`{name}` conflicts with `{other}`, which is installed"),
                        )
                        .with_hint(format!("remove it first: extension-manager remove {other}")));
                }
            }
        }
        Ok(())
    }

    /// The extensions that require `name` directly, sorted.
    pub fn reverse_requires(&self, name: &str) -> Vec<String> {
        self.manifests()
            .filter(|m| m.requires_name(name))
            .map(|m| m.name().to_string())
            .collect()
    }

    /// The extensions that require `name` directly or transitively, sorted (what
    /// `remove --cascade` removes with it).
    pub fn dependents(&self, name: &str) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.to_string()];
        while let Some(n) = stack.pop() {
            for d in self.reverse_requires(&n) {
                if seen.insert(d.clone()) {
                    stack.push(d);
                }
            }
        }
        seen.remove(name);
        seen.into_iter().collect()
    }

    /// Every cycle of `requires` in the catalog, one error each.
    pub(crate) fn requires_cycles(&self) -> Vec<Diagnostic> {
        let all: BTreeSet<&str> = self.names().collect();
        let mut errors = Vec::new();
        let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
        for cycle in find_cycles(&all, &|n| self.targets(n, &all, false)) {
            let mut key = cycle.clone();
            key.sort();
            if reported.insert(key) {
                errors.push(self.render_cycle(&cycle, false));
            }
        }
        errors
    }

    /// The edges out of `name` ("must come after"): requires, and `after` within `within`.
    fn edges<'a>(
        &'a self,
        name: &str,
        within: &BTreeSet<&str>,
        with_after: bool,
    ) -> Vec<(&'a Spanned<String>, Edge)> {
        let Some(m) = self.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<(&Spanned<String>, Edge)> = m
            .requires
            .iter()
            .filter(|r| within.contains(r.value.as_str()))
            .map(|r| (r, Edge::Requires))
            .collect();
        if with_after {
            out.extend(
                m.after
                    .iter()
                    .filter(|a| within.contains(a.value.as_str()))
                    .map(|a| (a, Edge::After)),
            );
        }
        out.sort_by(|a, b| a.0.value.cmp(&b.0.value));
        out
    }

    fn targets(&self, name: &str, within: &BTreeSet<&str>, with_after: bool) -> Vec<String> {
        self.edges(name, within, with_after)
            .into_iter()
            .map(|(t, _)| t.value.clone())
            .collect()
    }

    fn cycle_error(&self, within: &BTreeSet<&str>, with_after: bool) -> Diagnostic {
        match find_cycles(within, &|n| self.targets(n, within, with_after))
            .into_iter()
            .next()
        {
            Some(cycle) => self.render_cycle(&cycle, with_after),
            None => Diagnostic::new("the extensions cannot be ordered"),
        }
    }

    /// `cycle` is `[a, b, c]` for a -> b -> c -> a, starting at its smallest name; the error
    /// points at the entry of `c` that names `a`.
    fn render_cycle(&self, cycle: &[String], with_after: bool) -> Diagnostic {
        let mut text = cycle.join(" -> ");
        text.push_str(&format!(" -> {}", cycle[0]));
        let last = &cycle[cycle.len() - 1];
        let first = cycle[0].as_str();
        let within: BTreeSet<&str> = cycle.iter().map(String::as_str).collect();
        let Some(m) = self.get(last) else {
            return Diagnostic::new(format!("dependency cycle: {text}"));
        };
        let closing = self
            .edges(last, &within, with_after)
            .into_iter()
            .find(|(target, _)| target.value == first);
        let uses_after = cycle.iter().enumerate().any(|(i, n)| {
            let next = &cycle[(i + 1) % cycle.len()];
            self.get(n).is_some_and(|m| !m.requires_name(next))
        });
        let hint = if uses_after {
            "`after` orders the extensions of one run, and here it makes a loop with `requires`: remove one of the entries"
        } else {
            "extensions cannot require each other in a loop: remove one of the `requires` entries"
        };
        match closing {
            Some((entry, edge)) => {
                let key = match edge {
                    Edge::Requires => "requires",
                    Edge::After => "after",
                };
                m.error_at(entry.span.clone(), format!("dependency cycle: {text}"))
                    .with_hint(format!("{hint}; this `{key}` entry of `{last}` closes it"))
            }
            None => Diagnostic::new(format!("dependency cycle: {text}")).with_hint(hint),
        }
    }
}

/// Finds cycles by depth-first search from each node in name order; each cycle is rotated
/// to start at its smallest name. Deterministic, and finds at least one cycle when any exists.
fn find_cycles(nodes: &BTreeSet<&str>, targets: &dyn Fn(&str) -> Vec<String>) -> Vec<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: BTreeMap<String, Mark> = BTreeMap::new();
    let mut cycles = Vec::new();
    for start in nodes {
        if marks.contains_key(*start) {
            continue;
        }
        // An explicit stack of (node, its edges, next edge index) avoids recursion depth
        // limits on long chains.
        let mut path: Vec<String> = vec![start.to_string()];
        let mut stack: Vec<(Vec<String>, usize)> = vec![(targets(start), 0)];
        marks.insert(start.to_string(), Mark::Active);
        while let Some((targets_of_top, index)) = stack.last_mut() {
            if *index >= targets_of_top.len() {
                stack.pop();
                if let Some(done) = path.pop() {
                    marks.insert(done, Mark::Done);
                }
                continue;
            }
            let next = targets_of_top[*index].clone();
            *index += 1;
            match marks.get(&next) {
                Some(Mark::Active) => {
                    if let Some(at) = path.iter().position(|p| *p == next) {
                        let mut cycle = path[at..].to_vec();
                        let min = cycle
                            .iter()
                            .enumerate()
                            .min_by(|a, b| a.1.cmp(b.1))
                            .map_or(0, |(i, _)| i);
                        cycle.rotate_left(min);
                        cycles.push(cycle);
                    }
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(next.clone(), Mark::Active);
                    stack.push((targets(&next), 0));
                    path.push(next);
                }
            }
        }
    }
    cycles
}
