//! Errors a person can act on: the file, the line, a caret under the offending text, a hint.

use std::fmt;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A byte range in a manifest's text.
pub type Span = Range<usize>;

/// A value together with where it was written (a byte range in its file).
///
/// Dereferences to the value, so `requires.iter().map(|r| r.as_str())` reads as usual.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written: bytes of the file's text.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs a value with its span.
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The value, without its span.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl PartialEq<str> for Spanned<String> {
    fn eq(&self, other: &str) -> bool {
        self.value == other
    }
}

impl PartialEq<&str> for Spanned<String> {
    fn eq(&self, other: &&str) -> bool {
        self.value == *other
    }
}

/// The text of one manifest or profiles file, and the name it is shown under.
///
/// Shared (`Arc`) by everything loaded from it, so that any later stage (the catalog, the
/// planner, the CLI) can point into the file.
#[derive(Debug)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    /// A file's text, shown as `path` in diagnostics.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: path.into(),
            text: text.into(),
        })
    }

    /// The path shown in diagnostics (as given: a bundled manifest has no real file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// An error pointing at `span` of this file.
    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(message).at(self, span)
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Where a [`Diagnostic`] points: a file, a position, and the line shown with a caret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file as shown to the user.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The text of that line (without its newline).
    pub source_line: String,
    /// How many characters the caret underlines (at least 1).
    pub width: usize,
}

/// An error in a manifest, a profiles file or a request, rendered like rustc or uv:
///
/// ```text
/// error: unknown key `aptt` in an install step
///  --> nodejs.toml:12:1
///    |
/// 12 | aptt = ["nodejs"]
///    | ^^^^
///    = hint: did you mean `apt`? The action keys are apt, npm, pip, download, run, file, block
/// ```
///
/// Errors about a request rather than a file (an unknown extension on the command line,
/// a bad `--set`) have no location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, in one line.
    pub message: String,
    /// Where, when it is in a file.
    pub location: Option<Location>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error with no location and no hint.
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    /// Points the error at `span` of `file`.
    pub fn at(mut self, file: &SourceFile, span: Span) -> Self {
        let text = file.text();
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let (line, column) = file.line_column(start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let source_line = text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let width = text[start..end].chars().count().max(1);
        self.location = Some(Location {
            file: file.path().to_path_buf(),
            line,
            column,
            source_line,
            width,
        });
        self
    }

    /// Adds a hint: what to do next.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The position as `file:line:column`, when the error has one.
    pub fn position(&self) -> Option<String> {
        self.location
            .as_ref()
            .map(|l| format!("{}:{}:{}", l.file.display(), l.line, l.column))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        let gutter = match &self.location {
            Some(loc) => {
                let gutter = loc.line.to_string().len();
                let blank = "";
                // Tabs would shift the caret; show them as single spaces in both lines.
                let line = loc.source_line.replace('\t', " ");
                write!(
                    f,
                    "\n --> {}:{}:{}\n{blank:gutter$} |\n{} | {}\n{blank:gutter$} | {}{}",
                    loc.file.display(),
                    loc.line,
                    loc.column,
                    loc.line,
                    line,
                    " ".repeat(loc.column - 1),
                    "^".repeat(loc.width),
                )?;
                gutter
            }
            None => 0,
        };
        if let Some(hint) = &self.hint {
            let gutter = if self.location.is_some() { gutter } else { 1 };
            // Continuation lines of a long hint line up under its first word.
            let indent = format!("\n{:width$}", "", width = gutter + 9);
            write!(
                f,
                "\n{:gutter$} = hint: {}",
                "",
                hint.replace('\n', &indent)
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Renders several diagnostics, one blank line between them, as a user sees them.
pub fn render_all(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_spec() {
        let mut text = String::new();
        for _ in 0..11 {
            text.push_str("# filler\n");
        }
        text.push_str("aptt = [\"nodejs\"]\n");
        let file = SourceFile::new("nodejs.toml", text.clone());
        let start = text.find("aptt").expect("present");
        let d = file
            .error(start..start + 4, "unknown key `aptt` in an install step")
            .with_hint("the action keys are apt, npm, pip, download, run, file, block");
        assert_eq!(
            d.to_string(),
            "error: unknown key `aptt` in an install step\n --> nodejs.toml:12:1\n   |\n12 | aptt = [\"nodejs\"]\n   | ^^^^\n   = hint: the action keys are apt, npm, pip, download, run, file, block"
        );
    }

    #[test]
    fn columns_count_characters_and_spans_clip_to_the_line() {
        let file = SourceFile::new("x.toml", "a = \"héllo\" # é\nb = 1\n");
        let start = file.text().find('#').expect("present");
        let d = file.error(start..file.text().len(), "m");
        let loc = d.location.expect("located");
        assert_eq!((loc.line, loc.column, loc.width), (1, 13, 3));
        let end = file.error(file.text().len()..file.text().len(), "eof");
        assert_eq!(end.location.expect("located").width, 1);
    }

    #[test]
    fn without_location() {
        let d = Diagnostic::new("unknown extension `nodjs`").with_hint("did you mean `nodejs`?");
        assert_eq!(
            d.to_string(),
            "error: unknown extension `nodjs`\n  = hint: did you mean `nodejs`?"
        );
    }
}
