//! The server's fidelity, checked with Microsoft's own clients: `tests/fidelity.py` drives
//! it with azure-identity (client secret, client certificate, workload identity, managed
//! identity through IMDS) and azure-keyvault-secrets, -keys and -certificates (every
//! operation the azurekv provider uses: get by name and version, list with paging, set with
//! tags, content type and expiry, soft delete, recover, purge, key import, certificate
//! import of PKCS#12, 404s, the 409 of a soft-deleted name, and a 429 with Retry-After).
//!
//! The Python interpreter comes from `$ESO_PYTHON`, else `.venv-emu/bin/python` at the
//! repository root; the test fails with the pip command when the packages are missing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use eso_test_support::python::Needs;
use eso_testserver_azure::{AzureTestServer, Fault, Kind, Listener, SecretSeed, pki};

const PACKAGES: &str = "'azure-identity==1.27.0' 'azure-keyvault-secrets==4.12.0' \
                        'azure-keyvault-keys==4.11.3' 'azure-keyvault-certificates==4.12.0'";

fn python() -> PathBuf {
    Needs::emu(
        "Microsoft's Azure clients",
        "import azure.identity, azure.keyvault.secrets, azure.keyvault.keys, azure.keyvault.certificates",
        PACKAGES,
    )
    .python()
}

#[test]
fn microsofts_python_clients_round_trip_every_operation_the_provider_uses() {
    let python = python();
    let server = AzureTestServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    server.add_client_secret("sp-app", "s3cret");
    let client_cert = pki::self_signed("sp-cert-app", true).unwrap();
    std::fs::write(d.join("client.pem"), client_cert.combined_pem()).unwrap();
    server.add_client_certificate("cert-app", &client_cert.cert_pem);
    let issuer = "https://oidc.cluster.test";
    server.add_federated_credential("wi-app", issuer, "system:serviceaccount:apps:reader");
    let jwt = eso_testserver_azure::service_account_jwt(
        issuer,
        "apps",
        "reader",
        &["api://AzureADTokenExchange".to_owned()],
    );
    std::fs::write(d.join("sa-token"), jwt).unwrap();
    server.add_managed_identity("mi-default");
    server.add_managed_identity("mi-app");

    server.set_secret_with("seeded", SecretSeed::new("seeded-value").tag("env", "prod"));
    server.set_secret_with("disabled", SecretSeed::new("x").disabled());
    server.set_secret("throttled", "after-429");
    let pages = 30;
    for i in 0..pages {
        server.set_secret(&format!("page-{i}"), "p");
    }
    server.inject(Fault::vault("/secrets/throttled", 429).retry_after(1));

    std::fs::write(d.join("rsa.pem"), pki::private_key(true, false).unwrap()).unwrap();
    std::fs::write(d.join("ec.pem"), pki::private_key(false, false).unwrap()).unwrap();
    let pushed = pki::self_signed("pushed.example", true).unwrap();
    std::fs::write(d.join("cert.p12"), pushed.pkcs12(false).unwrap()).unwrap();
    std::fs::write(d.join("cert.der"), pushed.cert_der().unwrap()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fidelity.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("VAULT_URL", server.vault_url())
        .env("AUTHORITY", server.authority_host())
        .env("TENANT", server.tenant())
        .env("SP_CLIENT_ID", "sp-app")
        .env("SP_SECRET", "s3cret")
        .env("CERT_CLIENT_ID", "cert-app")
        .env("CERT_PEM", d.join("client.pem"))
        .env("WI_CLIENT_ID", "wi-app")
        .env("WI_TOKEN_FILE", d.join("sa-token"))
        .env("MI_CLIENT_ID", "mi-app")
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", server.imds_base())
        .env("RSA_KEY_PEM", d.join("rsa.pem"))
        .env("EC_KEY_PEM", d.join("ec.pem"))
        .env("P12", d.join("cert.p12"))
        .env("CERT_DER", d.join("cert.der"))
        .env("SECRET_COUNT", (pages + 3).to_string())
        .env("REQUESTS_CA_BUNDLE", server.ca_file())
        .env("SSL_CERT_FILE", server.ca_file())
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ALL OK"),
        "fidelity.py failed:\n{stdout}\n{stderr}"
    );

    // What the clients did, seen from the server.
    let log = server.requests();
    // Each Key Vault client first sends a request without a token and follows the challenge.
    assert!(
        log.iter()
            .any(|r| r.listener == Listener::Vault && !r.authorized),
        "the clients never met the bearer challenge"
    );
    // Token requests went through both the login endpoint and IMDS.
    assert!(
        server.count(
            Listener::Login,
            "POST",
            &format!("/{}/oauth2/v2.0/token", server.tenant())
        ) >= 4
    );
    assert!(server.count(Listener::Imds, "GET", "/metadata/identity/oauth2/token") >= 1);
    // The SDK followed nextLink to a second page.
    assert!(
        log.iter()
            .filter(|r| r.listener == Listener::Vault && r.path == "/secrets" && r.authorized)
            .count()
            >= 2
    );
    let versions: std::collections::BTreeSet<_> =
        log.iter().filter_map(|r| r.api_version.clone()).collect();
    println!("api-versions the clients used: {versions:?}");
    assert_eq!(server.secret_value("pushed").as_deref(), Some("fresh"));
    assert!(server.exists(Kind::Key, "rsa-key"));
    assert!(server.is_deleted(Kind::Key, "ec-key"));
    assert!(server.is_deleted(Kind::Certificate, "pushed-cert"));
}
