//! `{{option}}` placeholders: finding them, and substituting option values.

use std::ops::Range;

/// A `{{...}}` found in a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Placeholder<'a> {
    /// `{{ name }}`: the range covers the braces; `name` is trimmed.
    Name { range: Range<usize>, name: &'a str },
    /// `{{` with no closing `}}`.
    Unclosed { range: Range<usize> },
}

/// Every placeholder of `text`, in order.
pub(crate) fn placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find("{{").map(|i| at + i) {
        match text[open + 2..].find("}}") {
            Some(len) => {
                let close = open + 2 + len;
                found.push(Placeholder::Name {
                    range: open..close + 2,
                    name: text[open + 2..close].trim(),
                });
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
/// the loader has already rejected them).
pub(crate) fn substitute(text: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for p in placeholders(text) {
        if let Placeholder::Name { range, name } = p
            && let Some(v) = value(name)
        {
            out.push_str(&text[at..range.start]);
            out.push_str(&v);
            at = range.end;
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
