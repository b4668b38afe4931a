//! Conjur resource identifiers and URLs.

use reqwest::Url;

/// `conjur-api-go`'s `makeFullID`: `id`, `kind:id` or `account:kind:id` made fully qualified.
/// An id of three parts whose account or kind differ from the expected ones is taken as a
/// plain identifier that holds colons.
pub(crate) fn full_id(account: &str, kind: &str, id: &str) -> String {
    let parts: Vec<&str> = id.splitn(3, ':').collect();
    let tokens: [&str; 3] = match parts.as_slice() {
        [one] => [account, kind, *one],
        [k, i] => [account, *k, *i],
        [a, k, i] => [*a, *k, *i],
        _ => [account, kind, id],
    };
    if (!account.is_empty() && account != tokens[0]) || (!kind.is_empty() && kind != tokens[1]) {
        return format!("{account}:{kind}:{id}");
    }
    tokens.join(":")
}

/// The parts of a fully qualified id.
pub(crate) fn split_full(full: &str) -> (&str, &str, &str) {
    let mut parts = full.splitn(3, ':');
    let a = parts.next().unwrap_or_default();
    let k = parts.next().unwrap_or_default();
    let i = parts.next().unwrap_or_default();
    (a, k, i)
}

/// The identifier of a fully qualified id (upstream's `trimConjurResourceName`).
pub(crate) fn identifier(full: &str) -> &str {
    full.splitn(3, ':').last().unwrap_or(full)
}

/// `base` with these path segments appended, each percent-encoded (a `/` inside a segment is
/// `%2F`, as Conjur expects for identifiers and logins).
pub(crate) fn url(base: &Url, segments: &[&str]) -> Result<Url, String> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| format!("url {base} cannot be a base URL"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn full_ids_follow_conjur_api_go() {
        assert_eq!(
            full_id("org", "variable", "db/pass"),
            "org:variable:db/pass"
        );
        assert_eq!(full_id("org", "variable", "variable:db"), "org:variable:db");
        assert_eq!(
            full_id("org", "variable", "org:variable:db"),
            "org:variable:db"
        );
        // A colon inside the identifier.
        assert_eq!(full_id("org", "variable", "a:b:c"), "org:variable:a:b:c");
        assert_eq!(full_id("org", "variable", "host:x"), "org:variable:host:x");
        assert_eq!(split_full("org:variable:a:b"), ("org", "variable", "a:b"));
        assert_eq!(identifier("org:variable:db/pass"), "db/pass");
    }

    #[test]
    fn urls_escape_slashes_inside_segments() {
        let base = Url::parse("https://conjur.example.com/api/").unwrap();
        let u = url(&base, &["secrets", "org", "variable", "db/pass word"]).unwrap();
        assert_eq!(
            u.as_str(),
            "https://conjur.example.com/api/secrets/org/variable/db%2Fpass%20word"
        );
    }
}
