//! `{{option}}` placeholders: finding them, and substituting option values.

use std::ops::Range;

/// A `{{...}}` found in a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placeholder<'a> {
    /// `{{ name }}`: the range covers the braces; `name` is trimmed. A name is an option's
    /// or a fact's: a letter or `_`, then letters, digits, `_` and `.`.
    Name { range: Range<usize>, name: &'a str },
    /// `{{` with no closing `}}`.
    Unclosed { range: Range<usize> },
    /// `\{{`: a literal `{{` (the range covers the backslash and the braces).
    Escaped { range: Range<usize> },
}

/// Whether the text between braces names an option or a fact. Anything else (`{{.Names}}`,
/// `{{json .}}`: Go templates of docker or kubectl) is not ours and stays as written.
fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// Every placeholder of `text`, in order.
pub(crate) fn placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find("{{").map(|i| at + i) {
        if open > 0 && text.as_bytes()[open - 1] == b'\\' {
            found.push(Placeholder::Escaped {
                range: open - 1..open + 2,
            });
            at = open + 2;
            continue;
        }
        match text[open + 2..].find("}}") {
            Some(len) => {
                let close = open + 2 + len;
                let name = text[open + 2..close].trim();
                if is_name(name) {
                    found.push(Placeholder::Name {
                        range: open..close + 2,
                        name,
                    });
                }
                at = close + 2;
            }
            None => {
                found.push(Placeholder::Unclosed {
                    range: open..text.len(),
                });
                break;
            }
        }
    }
    found
}

/// `text` with each `{{name}}` replaced by `value(name)` (unknown names are left as they are:
/// the loader has already rejected them) and each `\{{` by a literal `{{`.
pub(crate) fn substitute(text: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for p in placeholders(text) {
        match p {
            Placeholder::Name { range, name } => {
                if let Some(v) = value(name) {
                    out.push_str(&text[at..range.start]);
                    out.push_str(&v);
                    at = range.end;
                }
            }
            Placeholder::Escaped { range } => {
                out.push_str(&text[at..range.start]);
                out.push_str("{{");
                at = range.end;
            }
            Placeholder::Unclosed { .. } => {}
        }
    }
    out.push_str(&text[at..]);
    out
}

/// [`substitute`] for a shell command (`run`, `unless`, `[[validate]] run`, `[[remove]]
/// run`): each value becomes one shell word, quoted when it holds anything the shell reads
/// (`shlex::try_quote`: spaces, `;`, `$`, quotes, `=`, globs ...), so that an option value is
/// data, never code. A value shlex cannot quote (a NUL byte) is refused by the caller first.
pub(crate) fn substitute_shell(text: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    substitute(text, &|name| {
        value(name).map(|v| match shlex::try_quote(&v) {
            Ok(quoted) => quoted.into_owned(),
            // Unreachable after `resolve`'s NUL check; drop the NULs rather than the quotes.
            Err(_) => format!("'{}'", v.replace('\0', "").replace('\'', r"'\''")),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_substitutes() {
        let t = "node@{{version}} {{ flag }}{{";
        let p = placeholders(t);
        assert_eq!(
            p,
            vec![
                Placeholder::Name {
                    range: 5..16,
                    name: "version"
                },
                Placeholder::Name {
                    range: 17..27,
                    name: "flag"
                },
                Placeholder::Unclosed { range: 27..29 },
            ]
        );
        let s = substitute("a {{version}} b {{x}} {{ version }}", &|n| {
            (n == "version").then(|| "22".to_string())
        });
        assert_eq!(s, "a 22 b {{x}} 22");
        assert_eq!(substitute("plain", &|_| None), "plain");
    }

    #[test]
    fn go_templates_and_escaped_braces_are_literal() {
        let v = |n: &str| (n == "v").then(|| "1".to_string());
        assert!(placeholders("docker ps --format '{{.Names}} {{json .}}'").is_empty());
        assert_eq!(
            substitute("docker ps --format '{{.Names}}' # {{v}}", &v),
            "docker ps --format '{{.Names}}' # 1"
        );
        assert_eq!(substitute(r"echo \{{v}} {{v}}", &v), "echo {{v}} 1");
        assert_eq!(
            placeholders(r"\{{"),
            vec![Placeholder::Escaped { range: 0..3 }],
            "an escaped `{{` needs no closing braces"
        );
    }

    #[test]
    fn shell_values_are_single_quoted_words() {
        let value = |v: &'static str| move |_: &str| Some(v.to_string());
        for (v, want) in [
            ("22", "echo 22"),
            ("1; touch /tmp/pwned #", "echo '1; touch /tmp/pwned #'"),
            ("$(id)", "echo '$(id)'"),
            ("it's", "echo \"it's\""),
            ("\"$HOME\"", "echo '\"$HOME\"'"),
            ("X=1", "echo 'X=1'"),
            ("", "echo ''"),
            ("/opt/a b", "echo '/opt/a b'"),
        ] {
            assert_eq!(substitute_shell("echo {{v}}", &value(v)), want, "{v:?}");
        }
    }
}
