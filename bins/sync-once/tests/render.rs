//! `sync-once render` as a user runs it: exit status, stdout and the error messages for each
//! kind of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::Output;

const STORE: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: store, namespace: default}
spec:
  provider:
    fake:
      data:
        - {key: db, value: '{"user":"app","password":"pw"}'}
        - {key: token, value: t0k}
"#;

fn es(name: &str, body: &str) -> String {
    format!(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{body}\n"
    )
}

const GOOD_SPEC: &str =
    "  secretStoreRef: {name: store}\n  data:\n    - {secretKey: token, remoteRef: {key: token}}";

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    support::sync_once(args, stdin, &[], &[])
}

fn render_text(text: &str) -> (i32, String, String) {
    let out = run(&["render", "-f", "-"], Some(text));
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn docs(parts: &[&str]) -> String {
    parts.join("\n---\n")
}

#[test]
fn quickstart_renders_a_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart.yaml");
    let out = run(&["render", "-f", root.to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("kind: Secret"));
    assert!(stdout.contains("name: demo-app-credentials"));
    // base64 of "s3cr3t" and "tok_old_9876543210"
    assert!(stdout.contains("password: czNjcjN0"), "{stdout}");
    assert!(
        stdout.contains("previous-api-token: dG9rX29sZF85ODc2NTQzMjEw"),
        "{stdout}"
    );
    assert!(
        stdout.contains("reconcile.external-secrets.io/managed: \"true\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("reconcile.external-secrets.io/data-hash:"),
        "{stdout}"
    );
}

#[test]
fn json_output_is_a_secret_object_and_values_decode() {
    let out = run(
        &["render", "-f", "-", "-o", "json"],
        Some(&docs(&[STORE, &es("app", GOOD_SPEC)])),
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "Secret");
    assert_eq!(v["data"]["token"], "dDBr");
}

#[test]
fn several_secrets_in_json_are_a_list() {
    let input = docs(&[STORE, &es("a", GOOD_SPEC), &es("b", GOOD_SPEC)]);
    let out = run(&["render", "-f", "-", "-o", "json"], Some(&input));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
}

#[test]
fn a_folder_is_read_recursively() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("store.yaml"), STORE).unwrap();
    std::fs::write(dir.path().join("sub/es.yml"), es("app", GOOD_SPEC)).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a manifest").unwrap();
    let out = run(&["render", "-f", dir.path().to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("token: dDBr")
    );
}

#[test]
fn malformed_yaml_is_an_input_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, "kind: [unclosed\n  - : :").unwrap();
    let out = run(&["render", "-f", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("not valid YAML"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_kind_names_the_document() {
    let input = docs(&[
        STORE,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}",
    ]);
    let (code, _, stderr) = render_text(&input);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("<stdin>: document 2") && stderr.contains("\"Deployment\""),
        "{stderr}"
    );
}

#[test]
fn unknown_api_version_is_rejected() {
    let input = docs(&[
        STORE,
        &es("app", GOOD_SPEC).replace("external-secrets.io/v1", "external-secrets.io/v1beta1"),
    ]);
    let (code, _, stderr) = render_text(&input);
    assert_eq!(code, 2);
    assert!(stderr.contains("external-secrets.io/v1beta1"), "{stderr}");
}

#[test]
fn an_invalid_field_value_names_the_field() {
    let body = format!("{GOOD_SPEC}\n  target: {{creationPolicy: Sometimes}}");
    let (code, _, stderr) = render_text(&docs(&[STORE, &es("app", &body)]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("ExternalSecret \"app\"") && stderr.contains("spec.target.creationPolicy"),
        "{stderr}"
    );
    assert!(stderr.contains("Sometimes"), "{stderr}");
}

#[test]
fn a_missing_name_is_an_input_error() {
    let (code, _, stderr) = render_text(
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {}\nspec: {}",
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("metadata.name is required"), "{stderr}");
}

#[test]
fn a_missing_store_reference_fails_that_object() {
    let body = "  data:\n    - {secretKey: token, remoteRef: {key: token}}";
    let (code, _, stderr) = render_text(&docs(&[STORE, &es("app", body)]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("ExternalSecret \"default/app\"")
            && stderr.contains("no store is referenced"),
        "{stderr}"
    );
}

#[test]
fn a_store_reference_of_the_wrong_kind_is_not_found() {
    let body = GOOD_SPEC.replace("{name: store}", "{name: store, kind: ClusterSecretStore}");
    let (code, _, stderr) = render_text(&docs(&[STORE, &es("app", &body)]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("ClusterSecretStore \"store\" not found"),
        "{stderr}"
    );
}

#[test]
fn a_store_in_another_namespace_cannot_be_used() {
    let store = STORE.replace("namespace: default", "namespace: other");
    let (code, _, stderr) = render_text(&docs(&[&store, &es("app", GOOD_SPEC)]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("SecretStore \"store\" not found in namespace \"default\""),
        "{stderr}"
    );
}

#[test]
fn an_unsupported_provider_is_named() {
    let store = "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: store}\nspec:\n  provider:\n    akeyless: {akeylessGWApiURL: 'http://gw'}";
    let (code, _, stderr) = render_text(&docs(&[store, &es("app", GOOD_SPEC)]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("provider \"akeyless\" is not supported"),
        "{stderr}"
    );
}

#[test]
fn a_missing_key_names_key_store_and_provider() {
    let body =
        "  secretStoreRef: {name: store}\n  data:\n    - {secretKey: x, remoteRef: {key: nope}}";
    let (code, _, stderr) = render_text(&docs(&[STORE, &es("app", body)]));
    assert_eq!(code, 1);
    for needle in [
        "spec.data[0]",
        "\"nope\"",
        "SecretStore \"default/store\"",
        "provider fake",
        "does not exist",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
}

#[test]
fn one_failure_does_not_hide_the_other_secrets() {
    let bad =
        "  secretStoreRef: {name: store}\n  data:\n    - {secretKey: x, remoteRef: {key: nope}}";
    let (code, stdout, stderr) =
        render_text(&docs(&[STORE, &es("bad", bad), &es("good", GOOD_SPEC)]));
    assert_eq!(code, 1);
    assert!(
        stdout.contains("name: good") && !stdout.contains("name: bad"),
        "{stdout}"
    );
    assert!(stderr.contains("default/bad"), "{stderr}");
}

#[test]
fn no_external_secret_is_an_input_error() {
    let (code, _, stderr) = render_text(STORE);
    assert_eq!(code, 2);
    assert!(stderr.contains("no ExternalSecret"), "{stderr}");
}

#[test]
fn a_missing_file_is_an_input_error() {
    let out = run(&["render", "-f", "/definitely/not/here.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here.yaml"));
}

#[test]
fn usage_errors_exit_with_two() {
    assert_eq!(run(&["render"], None).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"], None).status.code(), Some(2));
    assert_eq!(run(&["--help"], None).status.code(), Some(0));
}

#[test]
fn a_duplicate_object_is_an_input_error() {
    let (code, _, stderr) = render_text(&docs(&[STORE, STORE, &es("app", GOOD_SPEC)]));
    assert_eq!(code, 2);
    assert!(stderr.contains("defined twice"), "{stderr}");
}

#[test]
fn namespace_flag_places_objects_without_one() {
    let store = STORE.replace(", namespace: default", "");
    let app = es("app", GOOD_SPEC).replace(", namespace: default", "");
    let out = run(
        &["render", "-f", "-", "-n", "team-a"],
        Some(&docs(&[&store, &app])),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("namespace: team-a")
    );
}

#[test]
fn an_invalid_external_secret_names_every_bad_field() {
    let body = "  secretStoreRef: {name: store}\n  refreshInterval: soon\n  data:\n    - {secretKey: 'bad/key', remoteRef: {key: token}}";
    let (code, _, stderr) = render_text(&docs(&[STORE, &es("app", body)]));
    assert_eq!(code, 1);
    assert!(stderr.contains("spec.data[0].secretKey"), "{stderr}");
    assert!(stderr.contains("spec.refreshInterval"), "{stderr}");
}

#[test]
fn an_invalid_regexp_is_reported_without_a_secret() {
    let body =
        "  secretStoreRef: {name: store}\n  dataFrom:\n    - find: {name: {regexp: '(unclosed'}}";
    let (code, stdout, stderr) = render_text(&docs(&[STORE, &es("app", body)]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("(unclosed"), "{stderr}");
}

#[test]
fn cluster_store_conditions_deny_other_namespaces() {
    let css = "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata: {name: global}\nspec:\n  conditions: [{namespaces: [prod]}]\n  provider:\n    fake:\n      data: [{key: token, value: t0k}]";
    let body = "  secretStoreRef: {name: global, kind: ClusterSecretStore}\n  data:\n    - {secretKey: token, remoteRef: {key: token}}";
    let (code, _, stderr) = render_text(&docs(&[css, &es("app", body)]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not allowed from namespace \"default\""),
        "{stderr}"
    );
    let prod = es("app", body).replace("namespace: default", "namespace: prod");
    let (code, stdout, _) = render_text(&docs(&[css, &prod]));
    assert_eq!(code, 0);
    assert!(stdout.contains("token: dDBr"));
}

#[test]
fn templates_render_with_config_maps_from_the_input() {
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tpl, namespace: default}\ndata:\n  config.json: '{\"user\":\"{{ .user }}\",\"pw\":\"{{ .password | b64enc }}\"}'";
    let body = "  secretStoreRef: {name: store}\n  dataFrom: [{extract: {key: db}}]\n  target:\n    template:\n      type: kubernetes.io/basic-auth\n      data: {username: '{{ .user | upper }}'}\n      templateFrom:\n        - configMap: {name: tpl, items: [{key: config.json}]}";
    let out = run(
        &["render", "-f", "-", "-o", "json"],
        Some(&docs(&[STORE, cm, &es("app", body)])),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "kubernetes.io/basic-auth");
    let decode = |k: &str| {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decode("username"), "APP");
    assert_eq!(decode("config.json"), r#"{"user":"app","pw":"cHc="}"#);
}

#[test]
fn a_missing_template_config_map_fails_that_object() {
    let body = "  secretStoreRef: {name: store}\n  dataFrom: [{extract: {key: db}}]\n  target:\n    template:\n      templateFrom:\n        - configMap: {name: absent, items: [{key: k}]}";
    let (code, stdout, stderr) = render_text(&docs(&[STORE, &es("app", body)]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("templateFrom[0]")
            && stderr.contains("ConfigMap \"default/absent\" not found"),
        "{stderr}"
    );
}

#[test]
fn a_template_error_names_the_key_and_position() {
    let body = "  secretStoreRef: {name: store}\n  dataFrom: [{extract: {key: db}}]\n  target:\n    template:\n      data: {dsn: '{{ .user }}:{{ .nope }}'}";
    let (code, _, stderr) = render_text(&docs(&[STORE, &es("app", body)]));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("spec.target.template.data[dsn]:1:"),
        "{stderr}"
    );
}

#[test]
fn generators_render_new_values_and_say_they_are_generated() {
    let password = "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Password\nmetadata: {name: pw, namespace: default}\nspec: {length: 20, symbols: 0}";
    let cluster = "apiVersion: generators.external-secrets.io/v1alpha1\nkind: ClusterGenerator\nmetadata: {name: fixed}\nspec: {kind: Fake, generator: {fakeSpec: {data: {api: key}}}}";
    let spec = "  dataFrom:\n    - sourceRef: {generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: pw}}\n      rewrite: [{regexp: {source: '^password$', target: db-password}}]\n    - sourceRef: {generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: ClusterGenerator, name: fixed}}";
    let input = docs(&[password, cluster, &es("app", spec)]);
    let out = run(&["render", "-f", "-", "-o", "json"], Some(&input));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    use base64::Engine as _;
    let decode = |k: &str| {
        let b64 = v["data"][k].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decode("db-password").len(), 20);
    assert_eq!(decode("api"), "key");
    assert!(
        stderr.contains(
            "Generated: the values of Password \"default/pw\" were generated by this render"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("Generated: the values of ClusterGenerator \"fixed\""),
        "{stderr}"
    );
    // A second render generates another password.
    let again = run(&["render", "-f", "-", "-o", "json"], Some(&input));
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_ne!(v["data"]["db-password"], w["data"]["db-password"]);
}

#[test]
fn a_missing_generator_fails_that_object_naming_it() {
    let spec = "  dataFrom:\n    - sourceRef: {generatorRef: {kind: Password, name: nope}}";
    let (code, _, stderr) = render_text(&es("app", spec));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("spec.dataFrom[0]: Password \"default/nope\", referenced by ExternalSecret \"default/app\", does not exist"),
        "{stderr}"
    );
}

#[test]
fn the_offline_generator_examples_render() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/generators");
    for (file, keys) in [
        ("password.yaml", &["password", "replication-password"][..]),
        ("uuid.yaml", &["INSTANCE_ID"][..]),
        ("sshkey.yaml", &["ssh-privatekey", "ssh-publickey"][..]),
        ("fake.yaml", &["username"][..]),
        ("cluster-generator.yaml", &["password"][..]),
    ] {
        let path = dir.join(file);
        let out = run(
            &["render", "-f", path.to_str().unwrap(), "-o", "json"],
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file}: {stderr}");
        assert!(stderr.contains("Generated: "), "{file}: {stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for key in keys {
            assert!(v["data"][key].is_string(), "{file}: {key} missing in {v}");
        }
    }
}
