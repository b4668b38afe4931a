//! Matching remote keys for `dataFrom[].find`: by name regexp, by tags and by path prefix.

use std::collections::BTreeMap;

use eso_api::ExternalSecretFind;
use regex::Regex;

use crate::ProviderError;

/// A compiled `find` request that providers apply to candidate keys.
#[derive(Debug, Clone)]
pub struct FindMatcher {
    name: Option<Regex>,
    tags: BTreeMap<String, String>,
    path: Option<String>,
}

impl FindMatcher {
    /// Compiles a `find` request. An invalid regexp is an invalid request.
    pub fn new(find: &ExternalSecretFind) -> Result<Self, ProviderError> {
        let name = match find.name.as_ref().and_then(|n| n.regexp.as_deref()) {
            Some(re) => Some(Regex::new(re).map_err(|e| {
                ProviderError::invalid_request(format!(
                    "find.name.regexp {re:?} is not a valid regular expression"
                ))
                .with_source(e)
            })?),
            None => None,
        };
        Ok(Self {
            name,
            tags: find.tags.clone(),
            path: find.path.clone().filter(|p| !p.is_empty()),
        })
    }

    /// Whether a name regexp was given.
    #[must_use]
    pub fn has_name(&self) -> bool {
        self.name.is_some()
    }

    /// Whether tags were given.
    #[must_use]
    pub fn has_tags(&self) -> bool {
        !self.tags.is_empty()
    }

    /// The path prefix, if given.
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Whether the key matches the name regexp (true when none was given). Like Go's
    /// `MatchString`, the expression matches anywhere in the key unless anchored.
    #[must_use]
    pub fn matches_name(&self, key: &str) -> bool {
        self.name.as_ref().is_none_or(|re| re.is_match(key))
    }

    /// Whether the key lies under the path prefix (true when none was given).
    #[must_use]
    pub fn matches_path(&self, key: &str) -> bool {
        self.path.as_deref().is_none_or(|p| key.starts_with(p))
    }

    /// Whether every requested tag is present with the requested value.
    #[must_use]
    pub fn matches_tags(&self, tags: &BTreeMap<String, String>) -> bool {
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_api::FindName;

    #[test]
    fn matches_by_name_path_and_tags() {
        let find = ExternalSecretFind {
            path: Some("app/".into()),
            name: Some(FindName {
                regexp: Some("^app/db-.*".into()),
            }),
            tags: [("env".to_owned(), "prod".to_owned())].into(),
            ..ExternalSecretFind::default()
        };
        let m = FindMatcher::new(&find).unwrap();
        assert!(m.matches_name("app/db-password"));
        assert!(!m.matches_name("app/api-key"));
        assert!(m.matches_path("app/x"));
        assert!(!m.matches_path("other/x"));
        let tags: BTreeMap<_, _> = [
            ("env".to_owned(), "prod".to_owned()),
            ("team".to_owned(), "a".to_owned()),
        ]
        .into();
        assert!(m.matches_tags(&tags));
        assert!(!m.matches_tags(&BTreeMap::new()));
    }

    #[test]
    fn unanchored_regexp_matches_anywhere() {
        let find = ExternalSecretFind {
            name: Some(FindName {
                regexp: Some("db".into()),
            }),
            ..Default::default()
        };
        assert!(
            FindMatcher::new(&find)
                .unwrap()
                .matches_name("prod-db-pass")
        );
    }

    #[test]
    fn invalid_regexp_is_an_invalid_request() {
        let find = ExternalSecretFind {
            name: Some(FindName {
                regexp: Some("(".into()),
            }),
            ..Default::default()
        };
        let err = FindMatcher::new(&find).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidRequest);
    }
}
