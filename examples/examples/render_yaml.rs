//! Render the Secret an ExternalSecret produces, offline, from a YAML string: what
//! `sync-once render` does, in a few lines of your own tool (a deploy tool that renders Secrets
//! before applying a release, a CI check of ExternalSecrets in a pull request).
//!
//! ```sh
//! cargo run -p eso-examples --example render_yaml
//! ```

use anyhow::{Context as _, bail};
use eso_core::{ManifestSet, render_all};

/// A store of the built-in `fake` provider (its data sits in the spec, so no server is needed)
/// and an ExternalSecret that reads two keys from it and templates them into a connection URL
/// (with a template, only the templated keys are written, as upstream does).
const MANIFESTS: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: fake-store
spec:
  provider:
    fake:
      data:
        - key: /db/user
          value: app
        - key: /db/password
          value: s3cr3t
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
spec:
  secretStoreRef:
    name: fake-store
  target:
    name: db-credentials
    template:
      data:
        url: "postgres://{{ .user }}:{{ .password }}@db:5432/app"
  data:
    - secretKey: user
      remoteRef:
        key: /db/user
    - secretKey: password
      remoteRef:
        key: /db/password
"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Objects without a namespace go to "default".
    let mut set = ManifestSet::new("default");
    let errors = set.add_text("inline.yaml", MANIFESTS);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        bail!("{} manifest error(s)", errors.len());
    }

    for rendered in render_all(&set, &eso_providers::builtin()).await {
        // A failure names the file, the ExternalSecret, the store, the provider and the key.
        let secret = rendered
            .result
            .map_err(|e| anyhow::anyhow!("{}: {}", rendered.external_secret, e.chain()))?
            .context("the policies say no Secret is written")?;
        println!(
            "ExternalSecret {} renders Secret {:?}:",
            rendered.external_secret,
            secret.metadata.name.as_deref().unwrap_or_default()
        );
        for (key, value) in secret.data.iter().flatten() {
            println!("  {key}: {}", String::from_utf8_lossy(&value.0));
        }
    }
    Ok(())
}
