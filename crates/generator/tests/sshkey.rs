//! SSHKey output read back by OpenSSH's own `ssh-keygen` (Debian `openssh-client`): every key
//! type and size upstream offers, with and without a comment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use eso_api::generators::GeneratorKind;
use eso_generator::{ErrorKind, GeneratorContext, GeneratorObject, builtin};
use eso_provider::{StaticConfigMapReader, StaticSecretReader};
use serde_json::{Value, json};

async fn generate(spec: &Value) -> Result<(String, String), eso_generator::GeneratorError> {
    let (secrets, maps) = (StaticSecretReader::new(), StaticConfigMapReader::new());
    let object = GeneratorObject::namespaced(GeneratorKind::SSHKey, "key", "test");
    let ctx = GeneratorContext::new("test", object, &secrets, &maps);
    let data = builtin()
        .generate(GeneratorKind::SSHKey, ctx, spec)
        .await?
        .data;
    assert_eq!(data.keys().collect::<Vec<_>>(), ["privateKey", "publicKey"]);
    Ok((
        String::from_utf8(data["privateKey"].clone()).unwrap(),
        String::from_utf8(data["publicKey"].clone()).unwrap(),
    ))
}

fn ssh_keygen(args: &[&str], file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run ssh-keygen ({e}); install it with: sudo apt-get install -y openssh-client"
            )
        });
    assert!(
        out.status.success(),
        "ssh-keygen {args:?} refused the key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes both keys, and checks what `ssh-keygen -l` reads from each and that `ssh-keygen -y`
/// derives our public key from our private key.
fn check_with_ssh_keygen(private: &str, public: &str, bits: u32, kind: &str, comment: &str) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    std::fs::write(&key, private).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pubfile = dir.path().join("id.pub");
    std::fs::write(&pubfile, public).unwrap();

    let from_private = ssh_keygen(&["-l", "-f"], &key);
    let from_public = ssh_keygen(&["-l", "-f"], &pubfile);
    // `<bits> SHA256:<fingerprint> <comment> (<TYPE>)`; without a comment ssh-keygen prints
    // `no comment`, or the file name for a private key.
    for line in [&from_private, &from_public] {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], bits.to_string(), "{line}");
        assert!(fields[1].starts_with("SHA256:"), "{line}");
        assert_eq!(fields[fields.len() - 1], format!("({kind})"), "{line}");
        let shown = fields[2..fields.len() - 1].join(" ");
        if comment.is_empty() {
            let dir = dir.path().display().to_string();
            assert!(shown == "no comment" || shown.starts_with(&dir), "{line}");
        } else {
            assert_eq!(shown, comment, "{line}");
        }
    }
    assert_eq!(
        from_private.split_whitespace().nth(1),
        from_public.split_whitespace().nth(1),
        "one key pair"
    );
    let derived = ssh_keygen(&["-y", "-f"], &key);
    let head = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(head(&derived), head(public));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_key_type_and_size_reads_back_with_ssh_keygen() {
    for (spec, bits, kind) in [
        (json!({}), 2048, "RSA"),
        (json!({"keyType": "rsa", "keySize": 3072}), 3072, "RSA"),
        (json!({"keyType": "rsa", "keySize": 4096}), 4096, "RSA"),
        (json!({"keyType": "ecdsa"}), 256, "ECDSA"),
        (json!({"keyType": "ecdsa", "keySize": 384}), 384, "ECDSA"),
        (json!({"keyType": "ecdsa", "keySize": 521}), 521, "ECDSA"),
        // Upstream falls back to P-256 for sizes it does not know.
        (json!({"keyType": "ecdsa", "keySize": 2048}), 256, "ECDSA"),
        (
            json!({"keyType": "ed25519", "keySize": 4096}),
            256,
            "ED25519",
        ),
    ] {
        // RSA keys of 3072 and 4096 bits take seconds each: one comment variant for them.
        let comments: &[&str] = if bits > 2048 {
            &["deploy@ci"]
        } else {
            &["", "deploy@ci", "two words"]
        };
        for &comment in comments {
            let mut spec = spec.clone();
            if !comment.is_empty() {
                spec["comment"] = json!(comment);
            }
            let (private, public) = generate(&spec).await.unwrap();
            assert!(
                private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
                "{private}"
            );
            assert!(private.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
            assert!(
                public.ends_with('\n') && public.lines().count() == 1,
                "{public:?}"
            );
            if comment.is_empty() {
                assert_eq!(public.split_whitespace().count(), 2, "{public:?}");
            } else {
                assert!(
                    public.trim_end().ends_with(&format!(" {comment}")),
                    "{public:?}"
                );
            }
            check_with_ssh_keygen(&private, &public, bits, kind, comment);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_generation_is_a_new_key() {
    let (a, _) = generate(&json!({"keyType": "ed25519"})).await.unwrap();
    let (b, _) = generate(&json!({"keyType": "ed25519"})).await.unwrap();
    assert_ne!(a, b);
}

#[tokio::test]
async fn unusable_specs_are_invalid() {
    for (spec, expected) in [
        (json!({"keyType": "dsa"}), "spec.keyType is invalid"),
        (
            json!({"keySize": 512}),
            "spec.keySize: an RSA key needs 1024 to 8192 bits, not 512",
        ),
        (
            json!({"keyType": "ed25519", "comment": "a\nb"}),
            "spec.comment must be one line",
        ),
    ] {
        let err = generate(&spec).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSpec, "{spec}");
        assert!(err.message().contains(expected), "{spec}: {err}");
    }
}
