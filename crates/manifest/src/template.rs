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
}
