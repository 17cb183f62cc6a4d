//! Counters of attempts, retries, repairs and durations, rendered in the Prometheus text
//! format (for node_exporter's textfile collector or a scrape endpoint).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::events::{Event, Operation, Subscriber};

/// Upper bounds (seconds) of the duration histogram's buckets.
const BUCKETS: [f64; 11] = [
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

/// A counter family of the caller's: its help text, and a value per label set.
type CustomFamily = (String, BTreeMap<Vec<(String, String)>, u64>);

#[derive(Debug, Default)]
struct Counters {
    attempts: BTreeMap<(String, String, String), u64>,
    retries: BTreeMap<(String, String, String), u64>,
    repairs: BTreeMap<(String, String, String), u64>,
    operations: BTreeMap<(String, String, String), u64>,
    durations: BTreeMap<(String, String), Histogram>,
    circuit_open: BTreeMap<String, bool>,
    last_class: HashMap<Operation, &'static str>,
    /// Counters of the caller's own, by name.
    custom: BTreeMap<String, CustomFamily>,
}

/// A [`Subscriber`] that counts, by label, and renders Prometheus text:
///
/// `operation` is [`Operation::metric_label`]: the kind of operation and its host
/// (`apt-install`, `curl-download 127.0.0.1:8080`), never its arguments.
///
/// - `<ns>_attempts_total{<component>,operation,outcome}`: outcome is `success` or the
///   failure class (`transient`, `retry_after`, `repairable`, `permanent`, `source_exhausted`, `timeout`);
/// - `<ns>_retries_total{<component>,operation,class}`: retries, by the class of the
///   failure that caused them;
/// - `<ns>_repairs_total{<component>,repair,outcome}`: outcome `success` or `failure`;
/// - `<ns>_operations_total{<component>,operation,outcome}`: whole operations, outcome
///   `success` or why they gave up ([`crate::GiveUpReason::label`]: `permanent`,
///   `exhausted`, `source_exhausted`, `deadline`, `circuit_open`);
/// - `<ns>_operation_duration_seconds{<component>,operation}`: a histogram of whole
///   operations, first attempt to success or give-up;
/// - `<ns>_circuit_open{key}`: 1 while a circuit is open (set by the caller).
///
/// `<component>` is the label name given to [`Metrics::new`] (e.g. `adapter`).
///
/// ```
/// use std::sync::Arc;
/// use em_retry::{Metrics, Retry, RetryPolicy, Backoff, Operation};
/// let metrics = Arc::new(Metrics::new("demo", "service"));
/// let _: Result<(), _> = Retry::<String>::new(RetryPolicy::new(2).with_backoff(Backoff::None))
///     .operation(Operation::new("api", "get /users?token=s3cret"))
///     .subscribe(metrics.clone())
///     .run_blocking(|_| std::future::ready(Err("503".to_string())));
/// let text = metrics.render();
/// assert!(text.contains(r#"demo_attempts_total{service="api",operation="api-get",outcome="transient"} 2"#));
/// assert!(text.contains(r#"demo_retries_total{service="api",operation="api-get",class="transient"} 1"#));
/// assert!(text.contains(r#"demo_operations_total{service="api",operation="api-get",outcome="exhausted"} 1"#));
/// assert!(!text.contains("s3cret"));
/// ```
#[derive(Debug)]
pub struct Metrics {
    namespace: String,
    component_label: String,
    counters: Mutex<Counters>,
}

impl Metrics {
    /// Metrics named `<namespace>_...`, with the operation's component under `component_label`.
    pub fn new(namespace: impl Into<String>, component_label: impl Into<String>) -> Self {
        Metrics {
            namespace: namespace.into(),
            component_label: component_label.into(),
            counters: Mutex::new(Counters::default()),
        }
    }

    /// Sets the `circuit_open{key}` gauge.
    pub fn set_circuit_open(&self, key: &str, open: bool) {
        if let Ok(mut c) = self.counters.lock() {
            c.circuit_open.insert(key.to_string(), open);
        }
    }

    /// Adds one to the caller's own counter `<ns>_<name>{labels}` (e.g. `installs_total`
    /// with `extension` and `outcome`), rendered with `help` after the built-in families.
    pub fn increment(&self, name: &str, help: &str, labels: &[(&str, &str)]) {
        if let Ok(mut c) = self.counters.lock() {
            let family = c
                .custom
                .entry(name.to_string())
                .or_insert_with(|| (help.to_string(), BTreeMap::new()));
            let key = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            *family.1.entry(key).or_default() += 1;
        }
    }

    /// The Prometheus text exposition of everything counted so far.
    pub fn render(&self) -> String {
        let Ok(c) = self.counters.lock() else {
            return String::new();
        };
        let ns = &self.namespace;
        let comp = &self.component_label;
        let mut out = String::new();
        let mut family =
            |name: &str,
             help: &str,
             labels: [&str; 3],
             values: &BTreeMap<(String, String, String), u64>| {
                let _ = writeln!(out, "# HELP {ns}_{name} {help}");
                let _ = writeln!(out, "# TYPE {ns}_{name} counter");
                for ((a, b, c), v) in values {
                    let _ = writeln!(
                        out,
                        "{ns}_{name}{{{}=\"{}\",{}=\"{}\",{}=\"{}\"}} {v}",
                        labels[0],
                        escape(a),
                        labels[1],
                        escape(b),
                        labels[2],
                        escape(c)
                    );
                }
            };
        family(
            "attempts_total",
            "Attempts, by outcome (success or failure class).",
            [comp, "operation", "outcome"],
            &c.attempts,
        );
        family(
            "retries_total",
            "Retries, by the class of the failure that caused them.",
            [comp, "operation", "class"],
            &c.retries,
        );
        family(
            "repairs_total",
            "Repairs run between attempts, by outcome.",
            [comp, "repair", "outcome"],
            &c.repairs,
        );
        family(
            "operations_total",
            "Whole operations, by outcome (success or why they gave up).",
            [comp, "operation", "outcome"],
            &c.operations,
        );
        let name = format!("{ns}_operation_duration_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} Whole operations, from the first attempt to success or give-up."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for ((component, operation), h) in &c.durations {
            let labels = format!(
                "{comp}=\"{}\",operation=\"{}\"",
                escape(component),
                escape(operation)
            );
            for (le, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
        let _ = writeln!(
            out,
            "# HELP {ns}_circuit_open Whether the circuit of a key is open (1) or not (0)."
        );
        let _ = writeln!(out, "# TYPE {ns}_circuit_open gauge");
        for (key, open) in &c.circuit_open {
            let _ = writeln!(
                out,
                "{ns}_circuit_open{{key=\"{}\"}} {}",
                escape(key),
                u8::from(*open)
            );
        }
        for (name, (help, values)) in &c.custom {
            let _ = writeln!(out, "# HELP {ns}_{name} {help}");
            let _ = writeln!(out, "# TYPE {ns}_{name} counter");
            for (labels, v) in values {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = writeln!(out, "{ns}_{name}{{{}}} {v}", labels.join(","));
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn bump(map: &mut BTreeMap<(String, String, String), u64>, a: &str, b: &str, c: &str) {
    *map.entry((a.to_string(), b.to_string(), c.to_string()))
        .or_default() += 1;
}

impl Subscriber for Metrics {
    fn on_event(&self, event: &Event) {
        let Ok(mut c) = self.counters.lock() else {
            return;
        };
        let op = event.operation();
        // Never the whole name: package lists, paths and URLs (with their passwords) would
        // make a label per call.
        let label = op.metric_label();
        let (comp, name) = (op.component.as_str(), label.as_str());
        match event {
            Event::AttemptStarted { .. } => {}
            Event::AttemptFailed { class, .. } => {
                bump(&mut c.attempts, comp, name, class.label());
                c.last_class.insert(op.clone(), class.label());
            }
            Event::Succeeded { elapsed, .. } => {
                bump(&mut c.attempts, comp, name, "success");
                bump(&mut c.operations, comp, name, "success");
                c.last_class.remove(op);
                c.durations
                    .entry((comp.to_string(), name.to_string()))
                    .or_default()
                    .observe(*elapsed);
            }
            Event::Sleeping { .. } => {
                let class = c.last_class.get(op).copied().unwrap_or("transient");
                bump(&mut c.retries, comp, name, class);
            }
            Event::Repaired {
                repair, outcome, ..
            } => {
                let outcome = if outcome.is_ok() {
                    "success"
                } else {
                    "failure"
                };
                bump(&mut c.repairs, comp, repair, outcome);
            }
            Event::GaveUp {
                elapsed, reason, ..
            } => {
                bump(&mut c.operations, comp, name, reason.label());
                c.last_class.remove(op);
                c.durations
                    .entry((comp.to_string(), name.to_string()))
                    .or_default()
                    .observe(*elapsed);
            }
        }
    }
}
