use url::Url;

use super::ParseError;

/// Longest `return_to` we keep: it is stored with the flow and put into a `Location`.
const MAX_LEN: usize = 2048;

/// Where a browser may be sent back after signing in: a URL on the `WEB_RETURN_URLS`
/// allow-list. Compared as parsed URLs (scheme, host, port, path at a `/` boundary), never
/// as strings, so `https://good.example.com.evil.com`, `https://good.example.com@evil.com`
/// and friends are what they are: other hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(Url);

impl ReturnTo {
    pub fn parse(raw: &str, allowed: &[Url]) -> Result<Self, ParseError> {
        let refused = || ParseError::new("return_to is not an allowed return URL");
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(refused());
        }
        let url = Url::parse(raw).map_err(|_| refused())?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(refused());
        }
        if allowed.iter().any(|entry| matches_entry(&url, entry)) {
            Ok(Self(url))
        } else {
            Err(refused())
        }
    }

    /// A URL stored by an earlier request, which checked it.
    pub fn trusted(raw: &str) -> Result<Self, ParseError> {
        Url::parse(raw)
            .map(Self)
            .map_err(|_| ParseError::new("stored return_to is not a URL"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// This URL with `name=value` appended to its query; other parameters and the
    /// fragment are kept.
    pub fn with_param(&self, name: &str, value: &str) -> String {
        let mut url = self.0.clone();
        url.query_pairs_mut().append_pair(name, value);
        url.into()
    }
}

fn matches_entry(url: &Url, entry: &Url) -> bool {
    if url.scheme() != entry.scheme()
        || url.host() != entry.host()
        || url.port_or_known_default() != entry.port_or_known_default()
    {
        return false;
    }
    let prefix = entry.path().trim_end_matches('/');
    let path = url.path();
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> Vec<Url> {
        entries.iter().map(|e| Url::parse(e).unwrap()).collect()
    }

    #[test]
    fn urls_under_an_entry_are_allowed() {
        let list = allow(&["https://good.example.com/app", "http://localhost:3000/"]);
        for ok in [
            "https://good.example.com/app",
            "https://good.example.com/app/",
            "https://good.example.com/app/done?x=1#top",
            "https://good.example.com:443/app/x",
            "https://GOOD.example.com/app",
            "http://localhost:3000/anything",
        ] {
            assert!(ReturnTo::parse(ok, &list).is_ok(), "{ok} should be allowed");
        }
    }

    #[test]
    fn look_alikes_are_refused() {
        let list = allow(&["https://good.example.com/app"]);
        for bad in [
            "https://good.example.com.evil.com/app",
            "https://good.example.com@evil.com/app",
            "https://user:pw@good.example.com/app",
            "//evil.com/app",
            "/app",
            "https://good.example.com:8443/app",
            "http://good.example.com/app",
            "https://good.example.com/application",
            "https://good.example.com/other",
            "https://good.example.com\\@evil.com/app",
            "https://evil.com\\@good.example.com/app",
            "https://good.example.com%2F@evil.com/app",
            "https://good.example.com/app/../admin",
            "https://good.example.com/app%2F..%2F..%2Fadmin",
            "javascript:alert(1)//good.example.com/app",
            "",
        ] {
            assert!(
                ReturnTo::parse(bad, &list).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn the_ticket_is_added_keeping_query_and_fragment() {
        let list = allow(&["https://good.example.com/"]);
        let url = ReturnTo::parse("https://good.example.com/done?a=1#frag", &list).unwrap();
        assert_eq!(
            url.with_param("ticket", "T"),
            "https://good.example.com/done?a=1&ticket=T#frag"
        );
    }
}
