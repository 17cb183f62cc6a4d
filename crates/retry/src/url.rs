//! The one URL splitter of the workspace: the parts of a URL that circuit keys, messages,
//! preflight and the manifest and configuration checks look at.
//!
//! Deliberately small (no percent-decoding, no normalisation, no IDNA): every caller wants
//! the scheme as written, the authority (`host`, `host:port`, `[v6]:port`) without user
//! info, or the bare host name. It lives in em-retry because every crate of ours depends on
//! it and a circuit breaker is keyed by the host it returns; the `url` crate would pull in
//! idna and the ICU tables for this (docs/decisions.md).

/// A URL split into the parts we look at. Text without `://` is taken as an authority with
/// an optional path (`cdrom:[Debian]/` has the authority `cdrom:[Debian]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// The scheme as written (`HTTPS` stays `HTTPS`); `None` without `://`.
    pub scheme: Option<&'a str>,
    /// The user info before the authority's last `@`, when there is one.
    pub userinfo: Option<&'a str>,
    /// `host`, `host:port` or `[v6]:port`, without the user info; may be empty.
    pub authority: &'a str,
    /// The path, query and fragment: empty, or starting with `/`, `?` or `#`.
    pub rest: &'a str,
}

/// Splits `url` at its first `://`, then the authority at the first `/`, `?` or `#`, then
/// the user info at the authority's last `@`.
///
/// ```
/// use em_retry::url::split;
///
/// let u = split("https://user:pw@mirror.example.org:8443/x?y");
/// assert_eq!(u.scheme, Some("https"));
/// assert_eq!(u.userinfo, Some("user:pw"));
/// assert_eq!(u.authority, "mirror.example.org:8443");
/// assert_eq!(u.rest, "/x?y");
/// assert_eq!(u.host(), "mirror.example.org");
/// assert_eq!(u.port(), Some("8443"));
/// ```
pub fn split(url: &str) -> UrlParts<'_> {
    let (scheme, after) = match url.split_once("://") {
        Some((scheme, after)) => (Some(scheme), after),
        None => (None, url),
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (userinfo_and_authority, rest) = after.split_at(end);
    let (userinfo, authority) = match userinfo_and_authority.rsplit_once('@') {
        Some((userinfo, authority)) => (Some(userinfo), authority),
        None => (None, userinfo_and_authority),
    };
    UrlParts {
        scheme,
        userinfo,
        authority,
        rest,
    }
}

/// `host[:port]` of a URL, without user info: the key of its circuit breaker.
///
/// ```
/// assert_eq!(em_retry::url::authority("http://u@127.0.0.1:8080/f"), "127.0.0.1:8080");
/// ```
pub fn authority(url: &str) -> &str {
    split(url).authority
}

/// The URL at the start of `text` (a message or a command line), cut where such a URL
/// ends: at whitespace, a quote, `<`, `>` or a backtick.
///
/// ```
/// assert_eq!(em_retry::url::leading("http://h/x' failed"), "http://h/x");
/// ```
pub fn leading(text: &str) -> &str {
    let end = text
        .find(|c: char| c.is_whitespace() || "'\"<>`".contains(c))
        .unwrap_or(text.len());
    &text[..end]
}

impl<'a> UrlParts<'a> {
    /// The host without port or IPv6 brackets: `::1` of `[::1]:80`, `h` of `h:8080`.
    pub fn host(&self) -> &'a str {
        let authority = self.authority;
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or_default();
        }
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    }

    /// The port as written, when the authority has one (`8080` of `h:8080`, `80` of
    /// `[::1]:80`); it may be empty or not a number (`h:`).
    pub fn port(&self) -> Option<&'a str> {
        let authority = self.authority;
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split_once(']')?.1.strip_prefix(':');
        }
        authority.rsplit_once(':').map(|(_, port)| port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (Option<&str>, Option<&str>, &str, &str) {
        let u = split(url);
        (u.scheme, u.userinfo, u.authority, u.rest)
    }

    #[test]
    fn the_parts_of_ordinary_urls() {
        assert_eq!(
            parts("https://example.org/a/b"),
            (Some("https"), None, "example.org", "/a/b")
        );
        assert_eq!(
            parts("http://127.0.0.1:8080"),
            (Some("http"), None, "127.0.0.1:8080", "")
        );
        assert_eq!(parts("https://h?q=1"), (Some("https"), None, "h", "?q=1"));
        assert_eq!(parts("https://h#f"), (Some("https"), None, "h", "#f"));
    }

    #[test]
    fn user_info_is_split_at_the_last_at_sign_of_the_authority() {
        assert_eq!(
            parts("https://u:p@w@h:1/x@y"),
            (Some("https"), Some("u:p@w"), "h:1", "/x@y")
        );
        assert_eq!(parts("https://@h/"), (Some("https"), Some(""), "h", "/"));
        assert_eq!(parts("https://u@/x"), (Some("https"), Some("u"), "", "/x"));
    }

    #[test]
    fn ipv6_hosts_and_ports() {
        let u = split("http://[::1]:18765/simple/");
        assert_eq!(u.authority, "[::1]:18765");
        assert_eq!(u.host(), "::1");
        assert_eq!(u.port(), Some("18765"));
        let bare = split("http://[::1]/");
        assert_eq!((bare.host(), bare.port()), ("::1", None));
        let plain = split("https://h:8443");
        assert_eq!((plain.host(), plain.port()), ("h", Some("8443")));
        let none = split("https://h");
        assert_eq!((none.host(), none.port()), ("h", None));
        assert_eq!(split("https://h:/").port(), Some(""));
    }

    #[test]
    fn the_scheme_is_kept_as_written_and_may_be_missing() {
        assert_eq!(
            parts("HTTPS://Example.org/X"),
            (Some("HTTPS"), None, "Example.org", "/X")
        );
        assert_eq!(
            parts("cdrom:[Debian]/"),
            (None, None, "cdrom:[Debian]", "/")
        );
        assert_eq!(parts("h:80"), (None, None, "h:80", ""));
        assert_eq!(parts(""), (None, None, "", ""));
        assert_eq!(parts("https://"), (Some("https"), None, "", ""));
        assert_eq!(parts("https:///x"), (Some("https"), None, "", "/x"));
    }

    #[test]
    fn a_url_in_a_text_ends_at_whitespace_or_a_quote() {
        assert_eq!(leading("https://h/x y"), "https://h/x");
        assert_eq!(leading("https://h/x'"), "https://h/x");
        assert_eq!(leading("https://h/x\"; z"), "https://h/x");
        assert_eq!(leading("<https://h/x>"), "");
        assert_eq!(leading("https://h:1"), "https://h:1");
    }
}
