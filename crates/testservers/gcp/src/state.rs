//! The server's state: projects, secrets and their versions, issued tokens, registered keys,
//! denied principals, the metadata server's answers and the request log; and the public views
//! tests read it through.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rsa::RsaPublicKey;

/// The state of a secret version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Readable.
    Enabled,
    /// Not readable; can be enabled again.
    Disabled,
    /// Not readable; its data is gone.
    Destroyed,
}

impl VersionState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::Destroyed => "DESTROYED",
        }
    }
}

/// A secret version as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionView {
    /// The version number (1, 2, ...).
    pub number: u64,
    /// Its state.
    pub state: VersionState,
    /// Its payload (empty once destroyed).
    pub data: Vec<u8>,
}

/// A secret as tests see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretView {
    /// The full name, with the project number (`projects/N[/locations/L]/secrets/S`).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Version aliases.
    pub version_aliases: BTreeMap<String, u64>,
    /// Pub/Sub topic names.
    pub topics: Vec<String>,
    /// The replication policy as JSON (`null` for regional secrets).
    pub replication: serde_json::Value,
    /// The versions, oldest first.
    pub versions: Vec<VersionView>,
}

impl SecretView {
    /// The payload of the newest version, if it is enabled.
    #[must_use]
    pub fn latest_data(&self) -> Option<&[u8]> {
        self.versions
            .last()
            .filter(|v| v.state == VersionState::Enabled)
            .map(|v| v.data.as_slice())
    }
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The method ([`crate::method`]).
    pub method: String,
    /// The resource name or path it addressed.
    pub resource: String,
    /// The principal of its bearer token, when it carried a valid one.
    pub principal: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
}

/// What the metadata server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataConfig {
    /// `project/project-id`.
    pub project_id: String,
    /// `instance/attributes/cluster-name` (GKE).
    pub cluster_name: String,
    /// `instance/attributes/cluster-location` (GKE).
    pub cluster_location: String,
    /// The default service account's email.
    pub service_account_email: String,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            project_id: "metadata-project".to_owned(),
            cluster_name: "test-cluster".to_owned(),
            cluster_location: "europe-west1".to_owned(),
            service_account_email: "default@metadata-project.iam.gserviceaccount.com".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) number: u64,
    pub(crate) state: VersionState,
    pub(crate) data: Vec<u8>,
    pub(crate) create_time: Timestamp,
    pub(crate) destroy_time: Option<Timestamp>,
    pub(crate) etag: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) topics: Vec<String>,
    pub(crate) version_aliases: BTreeMap<String, u64>,
    /// `None` for regional secrets.
    pub(crate) replication: Option<serde_json::Value>,
    pub(crate) create_time: Timestamp,
    pub(crate) etag: u64,
    pub(crate) versions: Vec<Version>,
}

/// Where a secret lives: project number, location (regional secrets) and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SecretKey {
    pub(crate) project: u64,
    pub(crate) location: Option<String>,
    pub(crate) id: String,
}

impl SecretKey {
    pub(crate) fn parent_name(project: u64, location: Option<&str>) -> String {
        match location {
            Some(l) => format!("projects/{project}/locations/{l}"),
            None => format!("projects/{project}"),
        }
    }

    pub(crate) fn name(&self) -> String {
        format!(
            "{}/secrets/{}",
            Self::parent_name(self.project, self.location.as_deref()),
            self.id
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    pub(crate) principal: String,
    pub(crate) expires: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct RegisteredKey {
    pub(crate) email: String,
    pub(crate) public: RsaPublicKey,
    pub(crate) revoked: bool,
}

/// Everything the server holds.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) projects: BTreeMap<String, u64>,
    pub(crate) secrets: BTreeMap<SecretKey, Secret>,
    pub(crate) tokens: HashMap<String, IssuedToken>,
    /// Service-account keys by key id.
    pub(crate) keys: HashMap<String, RegisteredKey>,
    pub(crate) denied: BTreeSet<String>,
    pub(crate) aws_keys: HashMap<String, String>,
    pub(crate) token_lifetime: Duration,
    pub(crate) metadata: MetadataConfig,
    pub(crate) calls: Vec<CallRecord>,
    /// The page size of list calls that name none (Google's is large; tests make it small).
    pub(crate) default_page_size: usize,
    /// What `GET /external/token` answers (a stand-in for an external identity provider).
    pub(crate) external_token: Option<String>,
    last_time: Timestamp,
    counter: u64,
}

impl Default for State {
    fn default() -> Self {
        Self {
            projects: BTreeMap::new(),
            secrets: BTreeMap::new(),
            tokens: HashMap::new(),
            keys: HashMap::new(),
            denied: BTreeSet::new(),
            aws_keys: HashMap::new(),
            token_lifetime: Duration::from_secs(3600),
            metadata: MetadataConfig::default(),
            calls: Vec::new(),
            default_page_size: 25_000,
            external_token: None,
            last_time: Timestamp::UNIX_EPOCH,
            counter: 0,
        }
    }
}

impl State {
    /// The number of a project given by id or number; unknown ids are registered.
    pub(crate) fn project_number(&mut self, project: &str) -> u64 {
        if let Ok(n) = project.parse::<u64>()
            && self.projects.values().any(|v| *v == n)
        {
            return n;
        }
        if let Some(n) = self.projects.get(project) {
            return *n;
        }
        let n = 100_000_000_000 + 1_001 * (self.projects.len() as u64 + 1);
        self.projects.insert(project.to_owned(), n);
        n
    }

    /// A strictly increasing time, so that creation times order versions.
    pub(crate) fn now(&mut self) -> Timestamp {
        let now = Timestamp::now();
        let micros = now
            .as_microsecond()
            .max(self.last_time.as_microsecond() + 1);
        let t = Timestamp::from_microsecond(micros).unwrap_or(now);
        self.last_time = t;
        t
    }

    /// A fresh number for etags and token names.
    pub(crate) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Issues an access token for `principal`, valid for the configured lifetime.
    pub(crate) fn issue_token(&mut self, principal: &str) -> (String, Duration) {
        let n = self.next();
        let mut random = [0u8; 16];
        // The token only has to be unique within this server; the counter already is.
        let _ = getrandom::fill(&mut random);
        let token = format!(
            "ya29.test-{n}-{}",
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let lifetime = self.token_lifetime;
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                principal: principal.to_owned(),
                expires: Instant::now() + lifetime,
            },
        );
        (token, lifetime)
    }

    /// The principal of a valid access token.
    pub(crate) fn token_principal(&self, token: &str) -> Option<String> {
        self.tokens
            .get(token)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.principal.clone())
    }

    pub(crate) fn view(&self, key: &SecretKey) -> Option<SecretView> {
        let s = self.secrets.get(key)?;
        Some(SecretView {
            name: key.name(),
            labels: s.labels.clone(),
            annotations: s.annotations.clone(),
            version_aliases: s.version_aliases.clone(),
            topics: s.topics.clone(),
            replication: s.replication.clone().unwrap_or(serde_json::Value::Null),
            versions: s
                .versions
                .iter()
                .map(|v| VersionView {
                    number: v.number,
                    state: v.state,
                    data: v.data.clone(),
                })
                .collect(),
        })
    }
}

/// RFC 3339 with microseconds, as Google writes timestamps.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_get_stable_numbers_and_accept_them() {
        let mut s = State::default();
        let a = s.project_number("p1");
        assert_eq!(s.project_number("p1"), a);
        assert_eq!(s.project_number(&a.to_string()), a);
        assert_ne!(s.project_number("p2"), a);
    }

    #[test]
    fn times_increase_and_format_like_google() {
        let mut s = State::default();
        let a = s.now();
        let b = s.now();
        assert!(b > a);
        let text = rfc3339(Timestamp::from_second(0).unwrap());
        assert_eq!(text, "1970-01-01T00:00:00.000000Z");
    }
}
