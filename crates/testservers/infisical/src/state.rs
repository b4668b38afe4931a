//! What the server holds: projects and their environments, folders, secrets (with their
//! versions), folder imports, machine identities and the access tokens issued to them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A project.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) id: String,
    pub(crate) slug: String,
    pub(crate) environments: Vec<String>,
}

/// One secret (`type: shared`) with every value it had, oldest first.
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub(crate) id: String,
    pub(crate) values: Vec<String>,
    pub(crate) comment: String,
    pub(crate) skip_multiline_encoding: bool,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl Secret {
    pub(crate) fn value(&self) -> &str {
        self.values.last().map_or("", String::as_str)
    }
}

/// (project id, environment slug, folder path, secret key).
pub(crate) type SecretKey = (String, String, String, String);
/// (project id, environment slug, folder path).
pub(crate) type FolderKey = (String, String, String);

/// A machine identity and the credentials each login method accepts for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) jwts: BTreeSet<String>,
    pub(crate) kubernetes_tokens: BTreeSet<String>,
    pub(crate) ldap: Option<(String, String)>,
    pub(crate) denied_projects: BTreeSet<String>,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) identity: String,
    pub(crate) expires: Instant,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The method name ([`crate::method`]).
    pub method: String,
    /// The answer's status.
    pub status: u16,
    /// The name of the identity the bearer token belonged to, if any.
    pub identity: Option<String>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) projects: BTreeMap<String, Project>,
    pub(crate) folders: BTreeSet<FolderKey>,
    pub(crate) secrets: BTreeMap<SecretKey, Secret>,
    /// Folder -> the (environment, path) folders it imports, in order.
    pub(crate) imports: BTreeMap<FolderKey, Vec<(String, String)>>,
    pub(crate) identities: BTreeMap<String, Identity>,
    pub(crate) tokens: BTreeMap<String, Token>,
    pub(crate) token_ttl: Duration,
    pub(crate) calls: Vec<CallRecord>,
    counter: u64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            projects: BTreeMap::new(),
            folders: BTreeSet::new(),
            secrets: BTreeMap::new(),
            imports: BTreeMap::new(),
            identities: BTreeMap::new(),
            tokens: BTreeMap::new(),
            token_ttl: Duration::from_secs(7200),
            calls: Vec::new(),
            counter: 0,
        }
    }
}

impl State {
    pub(crate) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A new UUID-shaped id (deterministic, unique within the server).
    pub(crate) fn uuid(&mut self) -> String {
        let n = self.next();
        let h = u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let s = format!("{h:032x}");
        format!(
            "{}-{}-4{}-8{}-{}",
            &s[0..8],
            &s[8..12],
            &s[13..16],
            &s[17..20],
            &s[20..32]
        )
    }

    pub(crate) fn project_by_slug(&self, slug: &str) -> Option<&Project> {
        self.projects.values().find(|p| p.slug == slug)
    }

    /// Issues an access token for `identity`; returns it and its lifetime in seconds.
    pub(crate) fn issue_token(&mut self, identity: &str) -> (String, u64) {
        let n = self.next();
        let token = format!("inf.at.{identity}.{n:08x}");
        self.tokens.insert(
            token.clone(),
            Token {
                identity: identity.to_owned(),
                expires: Instant::now() + self.token_ttl,
            },
        );
        (token, self.token_ttl.as_secs())
    }

    /// The identity a live token belongs to.
    pub(crate) fn identity_of(&self, token: &str) -> Option<String> {
        self.tokens
            .get(token)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.identity.clone())
    }
}

/// A folder path in canonical form: leading `/`, no trailing `/`, no empty segments.
pub(crate) fn normalize_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// Whether `path` is `base` or lies below it.
pub(crate) fn is_under(path: &str, base: &str) -> bool {
    base == "/" || path == base || path.starts_with(&format!("{base}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_canonical_and_nest_by_segment() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("a//b/"), "/a/b");
        assert!(is_under("/a/b", "/a"));
        assert!(is_under("/a", "/"));
        assert!(!is_under("/ab", "/a"));
    }

    #[test]
    fn uuids_are_unique_and_shaped() {
        let mut st = State::default();
        let (a, b) = (st.uuid(), st.uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
