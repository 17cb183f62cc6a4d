//! The dependency graph: closure, order, conflicts, cycles, reverse requirements.

use em_manifest::{Catalog, Manifest};
use proptest::prelude::*;

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ext(name: &str, requires: &[&str], after: &[&str], conflicts: &[&str]) -> Manifest {
    let text = format!(
        "[extension]\nname = \"{name}\"\nversion = \"1\"\nrequires = [{}]\nafter = [{}]\nconflicts = [{}]\n",
        list(requires),
        list(after),
        list(conflicts)
    );
    Manifest::parse(format!("{name}.toml"), &text).expect("valid test manifest")
}

fn catalog(manifests: Vec<Manifest>) -> Catalog {
    Catalog::from_parts(manifests, []).unwrap_or_else(|e| panic!("{}", em_manifest::render_all(&e)))
}

const NONE: &[&str] = &[];

/// base <- python <- (jupyter, black); base <- nodejs <- playwright; docker alone.
fn sample() -> Catalog {
    catalog(vec![
        ext("base", NONE, NONE, NONE),
        ext("python", &["base"], NONE, NONE),
        ext("jupyter", &["python", "nodejs"], NONE, NONE),
        ext("black", &["python"], NONE, NONE),
        ext("nodejs", &["base"], &["docker"], NONE),
        ext("playwright", &["nodejs"], &["python"], NONE),
        ext("docker", NONE, NONE, &["podman"]),
        ext("podman", NONE, NONE, NONE),
    ])
}

#[test]
fn closure_is_transitive_and_sorted() {
    let c = sample();
    assert_eq!(
        c.closure(&["jupyter"]).expect("known"),
        ["base", "jupyter", "nodejs", "python"]
    );
    assert_eq!(c.closure(&["docker"]).expect("known"), ["docker"]);
    assert_eq!(
        c.closure(&["black", "black", "base"]).expect("known"),
        ["base", "black", "python"]
    );
}

#[test]
fn unknown_names_get_suggestions() {
    let c = sample();
    let e = c.closure(&["pyhton"]).expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "error: unknown extension `pyhton`\n  = hint: did you mean `python`?"
    );
    assert_eq!(c.suggest("node"), ["nodejs"]);
    assert_eq!(c.suggest("play"), ["playwright"]);
    assert_eq!(c.suggest("dcoker"), ["docker"]);
    assert!(c.suggest("haskell").is_empty());
    let e = c.order(&["haskell"], NONE).expect_err("unknown");
    assert!(e.hint.expect("hint").contains("extension-manager list"));
}

#[test]
fn order_puts_requirements_first_and_breaks_ties_by_name() {
    let c = sample();
    assert_eq!(
        c.order(&["jupyter"], NONE).expect("order"),
        ["base", "nodejs", "python", "jupyter"]
    );
    assert_eq!(
        c.order(&["black", "jupyter"], NONE).expect("order"),
        ["base", "nodejs", "python", "black", "jupyter"]
    );
}

#[test]
fn after_orders_only_within_the_run() {
    let c = sample();
    // playwright comes after python only when python is in the run.
    assert_eq!(
        c.order(&["playwright"], NONE).expect("order"),
        ["base", "nodejs", "playwright"]
    );
    assert_eq!(
        c.order(&["playwright", "python"], NONE).expect("order"),
        ["base", "nodejs", "python", "playwright"]
    );
    // nodejs after docker: docker (no deps) would come after base by name anyway; with
    // the edge it must precede nodejs.
    assert_eq!(
        c.order(&["nodejs", "docker"], NONE).expect("order"),
        ["base", "docker", "nodejs"]
    );
}

#[test]
fn order_does_not_depend_on_the_order_of_the_request() {
    let c = sample();
    let a = c
        .order(&["playwright", "black", "docker"], NONE)
        .expect("a");
    let b = c
        .order(&["docker", "playwright", "black"], NONE)
        .expect("b");
    assert_eq!(a, b);
}

#[test]
fn conflicts_in_one_run_name_both() {
    let c = sample();
    let e = c.order(&["docker", "podman"], NONE).expect_err("conflict");
    assert_eq!(
        e.to_string(),
        "error: `docker` conflicts with `podman`: they cannot be installed together\n --> docker.toml:6:14\n  |\n6 | conflicts = [\"podman\"]\n  |              ^^^^^^^^\n  = hint: install them in separate environments, or leave one of them out"
    );
}

#[test]
fn a_conflict_pulled_in_by_requires_says_by_whom() {
    let c = catalog(vec![
        ext("docker", NONE, NONE, &["podman"]),
        ext("podman", NONE, NONE, NONE),
        ext("buildah", &["podman"], NONE, NONE),
    ]);
    let e = c.order(&["docker", "buildah"], NONE).expect_err("conflict");
    assert!(
        e.hint
            .as_deref()
            .expect("hint")
            .ends_with("(`podman` is required by `buildah`)"),
        "{e}"
    );
}

#[test]
fn conflicts_with_installed_extensions_either_way() {
    let c = sample();
    let e = c.order(&["docker"], &["podman"]).expect_err("installed");
    assert_eq!(
        e.message,
        "`docker` conflicts with `podman`, which is installed"
    );
    assert_eq!(
        e.hint.as_deref(),
        Some("remove it first: extension-manager remove podman")
    );
    // podman declares nothing, but the installed docker does.
    let e = c.order(&["podman"], &["docker"]).expect_err("installed");
    assert_eq!(
        e.message,
        "`podman` conflicts with `docker`, which is installed"
    );
    assert_eq!(e.position().as_deref(), Some("docker.toml:6:14"));
    // Reinstalling what is installed is no conflict with itself.
    assert!(c.order(&["docker"], &["docker", "base"]).is_ok());
}

#[test]
fn a_cycle_through_after_is_printed() {
    let c = catalog(vec![
        ext("alpha", &["beta"], NONE, NONE),
        ext("beta", NONE, &["gamma"], NONE),
        ext("gamma", &["alpha"], NONE, NONE),
    ]);
    // Without gamma in the run, `after` has no effect.
    assert_eq!(c.order(&["alpha"], NONE).expect("order"), ["beta", "alpha"]);
    let e = c.order(&["gamma"], NONE).expect_err("cycle");
    assert_eq!(
        e.to_string(),
        "error: dependency cycle: alpha -> beta -> gamma -> alpha\n --> gamma.toml:4:13\n  |\n4 | requires = [\"alpha\"]\n  |             ^^^^^^^\n  = hint: `after` orders the extensions of one run, and here it makes a loop with `requires`: remove one of the entries; this `requires` entry of `gamma` closes it"
    );
}

#[test]
fn requires_cycles_are_rejected_by_the_catalog_each_once() {
    let errors = Catalog::from_parts(
        vec![
            ext("a", &["b"], NONE, NONE),
            ext("b", &["c"], NONE, NONE),
            ext("c", &["a", "d"], NONE, NONE),
            ext("d", &["d"], NONE, NONE),
            ext("e", &["a"], NONE, NONE),
        ],
        [],
    )
    .expect_err("cycles");
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "dependency cycle: a -> b -> c -> a",
            "dependency cycle: d -> d"
        ]
    );
}

#[test]
fn reverse_requires_and_dependents() {
    let c = sample();
    assert_eq!(c.reverse_requires("base"), ["nodejs", "python"]);
    assert_eq!(c.reverse_requires("python"), ["black", "jupyter"]);
    assert!(c.reverse_requires("jupyter").is_empty());
    assert_eq!(
        c.dependents("base"),
        ["black", "jupyter", "nodejs", "playwright", "python"]
    );
    assert_eq!(c.dependents("nodejs"), ["jupyter", "playwright"]);
}

#[test]
fn a_long_chain_does_not_overflow_the_stack() {
    let n = 2_000;
    let names: Vec<String> = (0..n).map(|i| format!("e{i:04}")).collect();
    let mut manifests: Vec<Manifest> = (0..n)
        .map(|i| {
            let req: Vec<&str> = if i + 1 < n {
                vec![names[i + 1].as_str()]
            } else {
                vec![]
            };
            ext(&names[i], &req, NONE, NONE)
        })
        .collect();
    // Close the chain into one big cycle.
    manifests.pop();
    manifests.push(ext(&names[n - 1], &[names[0].as_str()], NONE, NONE));
    let errors = Catalog::from_parts(manifests, []).expect_err("cycle");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .message
            .starts_with("dependency cycle: e0000 -> e0001 -> ")
    );
}

proptest! {
    /// On random acyclic `requires` graphs with random `after` edges (also acyclic, so that
    /// every run can be ordered): the order is the closure, every requirement and every
    /// in-run `after` comes first, and shuffling the request changes nothing.
    #[test]
    fn order_respects_every_edge(
        edges in proptest::collection::vec((0usize..12, 0usize..12, any::<bool>()), 0..40),
        request in proptest::collection::vec(0usize..12, 1..5),
    ) {
        let names: Vec<String> = (0..12).map(|i| format!("x{i:02}")).collect();
        let mut requires: Vec<Vec<&str>> = vec![Vec::new(); 12];
        let mut after: Vec<Vec<&str>> = vec![Vec::new(); 12];
        for (a, b, hard) in edges {
            // Edges go from a higher index to a lower one: acyclic by construction.
            if a > b {
                if hard { requires[a].push(&names[b]) } else { after[a].push(&names[b]) }
            }
        }
        let c = catalog((0..12).map(|i| ext(&names[i], &requires[i], &after[i], NONE)).collect());
        let request: Vec<&str> = request.iter().map(|i| names[*i].as_str()).collect();
        let order = c.order(&request, NONE).expect("acyclic");
        let mut sorted = order.clone();
        sorted.sort();
        prop_assert_eq!(&sorted, &c.closure(&request).expect("known"));
        let position = |n: &str| order.iter().position(|o| o == n);
        for (i, name) in order.iter().enumerate() {
            let idx: usize = name[1..].parse().expect("index");
            for r in &requires[idx] {
                prop_assert!(position(r).expect("in closure") < i);
            }
            for a in &after[idx] {
                if let Some(p) = position(a) {
                    prop_assert!(p < i);
                }
            }
        }
        let mut reversed = request.clone();
        reversed.reverse();
        prop_assert_eq!(order, c.order(&reversed, NONE).expect("acyclic"));
    }
}
