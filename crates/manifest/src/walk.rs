//! The walk over toml's spanned tree that the manifest loader and em-install's
//! configuration reader share: find a key, say what type a value is, and report errors at
//! the exact key or value (file:line:column, a caret, a hint), collecting all of them.
//!
//! Public because the configuration (`em_install::config`) is read the same way and must
//! report its errors in the same form; each reader adds its own typed readers on top.

use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, SourceFile, Span};
use crate::grammar;

/// A value of the tree with its span.
pub type Value<'i> = toml::Spanned<DeValue<'i>>;

/// The value of `key` in `table`.
pub fn find<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}

/// Where `key` itself is written in `table`.
pub fn key_span(table: &DeTable<'_>, key: &str) -> Option<Span> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(k, _)| k.span())
}

/// "a string", "an integer", ...: what a value is, for messages.
pub fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// `rest`, preceded by "did you mean `x`?" when a candidate is close to `word`.
pub fn guess_hint<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    rest: &str,
) -> String {
    match grammar::closest(word, candidates) {
        Some(c) if rest.is_empty() => format!("did you mean `{c}`?"),
        Some(c) => format!("did you mean `{c}`? {}", capitalize(rest)),
        None => rest.to_string(),
    }
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The walk of one file: every error found goes to `errors`, in the file's terms.
pub struct TomlWalk<'f> {
    /// The file walked.
    pub file: &'f SourceFile,
    /// The errors found so far.
    pub errors: Vec<Diagnostic>,
}

impl<'f> TomlWalk<'f> {
    /// A walk of `file` without errors yet.
    pub fn new(file: &'f SourceFile) -> Self {
        TomlWalk {
            file,
            errors: Vec::new(),
        }
    }

    /// An error at `span`; an empty `hint` adds none.
    pub fn push(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        let hint = hint.into();
        let d = self.file.error(span, message);
        self.errors.push(if hint.is_empty() {
            d
        } else {
            d.with_hint(hint)
        });
    }

    /// "`key` must be EXPECTED, not a TYPE", at the value.
    pub fn type_error(&mut self, key: &str, expected: &str, v: &Value<'_>, hint: &str) {
        self.push(
            v.span(),
            format!("`{key}` must be {expected}, not {}", a_type(v.get_ref())),
            hint,
        );
    }

    /// Reports keys of `table` not in `allowed`, in the order written, each with a guess
    /// among `allowed` before `hint`; `what` reads "in `[extension]`".
    pub fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str, hint: &str) {
        let mut unknown: Vec<_> = table
            .iter()
            .filter(|(k, _)| !allowed.contains(&k.get_ref().as_ref()))
            .map(|(k, _)| (k.span(), k.get_ref().to_string()))
            .collect();
        unknown.sort_by_key(|(span, _)| span.start);
        for (span, key) in unknown {
            self.push(
                span,
                format!("unknown key `{key}` {what}"),
                guess_hint(&key, allowed.iter().copied(), hint),
            );
        }
    }

    /// The table `key` of `table` and where it is written; another type is an error with
    /// `hint`.
    pub fn table<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        key: &str,
        hint: &str,
    ) -> Option<(&'t DeTable<'i>, Span)> {
        let v = find(table, key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some((t, v.span())),
            _ => {
                self.type_error(key, "a table", v, hint);
                None
            }
        }
    }

    /// The duration string `key` of `table` (`"500ms"`, `"2s"`, `"1h30m"`) and where it is
    /// written. A number is an error whose hint `number_hint` makes from its digits; another
    /// type one with `hint`.
    pub fn duration(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        number_hint: impl Fn(&str) -> String,
        hint: &str,
    ) -> Option<(Duration, Span)> {
        let v = find(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => match em_retry::parse_duration(s) {
                Ok(d) => Some((d, v.span())),
                Err(hint) => {
                    self.push(
                        v.span(),
                        format!("`{key}` is not a duration: \"{s}\""),
                        hint,
                    );
                    None
                }
            },
            DeValue::Integer(i) => {
                self.push(
                    v.span(),
                    format!("`{key}` must be a duration string, not a number"),
                    number_hint(i.as_str()),
                );
                None
            }
            _ => {
                self.type_error(key, "a duration string", v, hint);
                None
            }
        }
    }
}
