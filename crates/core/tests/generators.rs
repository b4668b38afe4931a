//! Fetching generator entries (`dataFrom[].sourceRef.generatorRef`) offline: their place in
//! upstream's merge order, `rewrite`, reuse of a stored value until the refresh policy says a
//! refresh is due, and errors that name the entry, the generator and the ExternalSecret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_api::generators::GeneratorKind;
use eso_api::{
    ExternalSecretDataFromRemoteRef, ExternalSecretRewrite, GeneratorRef, RewriteRegexp,
    StoreGeneratorSourceRef,
};
use eso_core::fetch::{ClientCache, FetchContext, FetchError, Fetched, fetch};
use eso_core::generate::{
    GeneratedEntry, GeneratedValues, GeneratorFetch, StaticGenerators, entry_key,
};
use eso_core::manifests::{ManifestSet, Sourced};
use eso_core::testing::{EsBuilder, bytes, fake_store};
use eso_generator::{Generated, Generator, GeneratorContext, GeneratorError};
use eso_provider::ProviderRegistry;
use eso_provider::rewrite::NoTemplates;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn set() -> ManifestSet {
    let mut set = ManifestSet::new("default");
    let store = fake_store(
        "store",
        &[("db", r#"{"user":"app","password":"from-store"}"#)],
    );
    set.stores.insert(
        ("default".into(), "store".into()),
        Sourced {
            source: eso_core::manifests::Source {
                file: "t".into(),
                document: 1,
            },
            object: store,
        },
    );
    set
}

fn generators() -> StaticGenerators {
    let mut g = StaticGenerators::new();
    g.insert(
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Fake",
               "metadata": {"name": "fixed"}, "spec": {"data": {"password": "generated", "extra": "x"}}}),
        "default",
    );
    g.insert(
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password",
               "metadata": {"name": "pw"}, "spec": {"length": 12}}),
        "default",
    );
    g.insert(
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "UUID",
               "metadata": {"name": "id"}, "spec": {}}),
        "default",
    );
    g.insert(
        json!({"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "ClusterGenerator",
               "metadata": {"name": "acr"},
               "spec": {"kind": "ACRAccessToken", "generator": {"acrAccessTokenSpec": {}}}}),
        "default",
    );
    g
}

fn generator(kind: &str, name: &str) -> GeneratorRef {
    GeneratorRef {
        api_version: None,
        kind: kind.into(),
        name: name.into(),
    }
}

fn from_generator(kind: &str, name: &str) -> ExternalSecretDataFromRemoteRef {
    ExternalSecretDataFromRemoteRef {
        source_ref: Some(StoreGeneratorSourceRef {
            store_ref: None,
            generator_ref: Some(generator(kind, name)),
        }),
        ..Default::default()
    }
}

/// A UUID generator that counts its calls.
struct Counting(Arc<AtomicUsize>);

#[eso_core::async_trait]
impl Generator for Counting {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::UUID
    }

    async fn generate(
        &self,
        _ctx: GeneratorContext<'_>,
        _spec: &serde_json::Value,
    ) -> Result<Generated, GeneratorError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Generated::data(bytes(&[("uuid", &n.to_string())])))
    }
}

async fn run(
    es: &eso_api::ExternalSecret,
    previous: &GeneratedValues,
    now: Timestamp,
) -> Result<Fetched, FetchError> {
    run_with(eso_generator::builtin(), es, previous, now).await
}

async fn run_with(
    kinds: eso_generator::GeneratorRegistry,
    es: &eso_api::ExternalSecret,
    previous: &GeneratedValues,
    now: Timestamp,
) -> Result<Fetched, FetchError> {
    let set = set();
    let objects = generators();
    let registry =
        ProviderRegistry::new().with(std::sync::Arc::new(eso_provider_fake::FakeProvider));
    let clients = ClientCache::new();
    fetch(
        FetchContext {
            registry: &registry,
            stores: &set,
            secrets: &set,
            tokens: None,
            config_maps: &set,
            clients: &clients,
            transformer: &NoTemplates,
            generators: Some(GeneratorFetch {
                registry: &kinds,
                objects: &objects,
                previous,
                now,
                webhook_secrets: None,
            }),
        },
        es,
    )
    .await
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[tokio::test]
async fn generator_output_takes_its_place_in_data_from_order_and_is_rewritten() {
    let mut rewritten = from_generator("Fake", "fixed");
    rewritten.rewrite = vec![ExternalSecretRewrite {
        regexp: Some(RewriteRegexp {
            source: "^extra$".into(),
            target: "renamed".into(),
        }),
        ..Default::default()
    }];
    // store, then generator: the generator's `password` wins; data[] wins over both.
    let es = EsBuilder::new("es")
        .extract("db")
        .data_from(rewritten)
        .data("user", "db")
        .build();
    let out = run(&es, &GeneratedValues::default(), at(0)).await.unwrap();
    assert_eq!(
        out.data,
        bytes(&[
            ("password", "generated"),
            ("renamed", "x"),
            ("user", r#"{"user":"app","password":"from-store"}"#),
        ])
    );
    let generated = out.generated.unwrap();
    assert_eq!(generated.fresh.len(), 1);
    let key = entry_key(&generator("Fake", "fixed"), 0);
    assert_eq!(key, "fake.fixed.0");
    // The raw output is stored, before rewrite.
    let stored = generated.current.entries[&key].secret_data().unwrap();
    assert_eq!(stored, bytes(&[("extra", "x"), ("password", "generated")]));
}

#[tokio::test]
async fn a_stored_value_is_reused_until_a_refresh_is_due() {
    let mut es = EsBuilder::new("es")
        .data_from(from_generator("Password", "pw"))
        .build();
    es.spec.refresh_interval = Some("1h".into());
    let key = entry_key(&generator("Password", "pw"), 0);
    let previous = GeneratedValues {
        entries: [(
            key.clone(),
            GeneratedEntry::new(
                "Password/pw".into(),
                at(0),
                1,
                None,
                &bytes(&[("password", "kept")]),
            ),
        )]
        .into(),
    };
    let out = run(&es, &previous, at(1800)).await.unwrap();
    assert_eq!(out.data, bytes(&[("password", "kept")]));
    let generated = out.generated.unwrap();
    assert!(generated.fresh.is_empty());
    assert!(!generated.changed());

    let out = run(&es, &previous, at(3600)).await.unwrap();
    let fresh = String::from_utf8(out.data["password"].clone()).unwrap();
    assert_eq!(fresh.len(), 12);
    let generated = out.generated.unwrap();
    assert_eq!(generated.fresh.len(), 1);
    assert!(generated.changed());
    assert_eq!(
        generated.current.entries[&key].generated_at,
        at(3600).to_string()
    );
}

#[tokio::test]
async fn errors_name_the_entry_the_generator_and_the_external_secret() {
    let es = EsBuilder::new("es")
        .extract("db")
        .data_from(from_generator("Password", "nope"))
        .build();
    let err = run(&es, &GeneratedValues::default(), at(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.dataFrom[1]: Password \"default/nope\", referenced by ExternalSecret \"default/es\", does not exist"
    );
    assert_eq!(err.class(), eso_core::plan::ErrorClass::RetryWithBackoff);

    // A kind eso-rs does not implement waits for a change of the ExternalSecret.
    let es = EsBuilder::new("es")
        .data_from(from_generator("ClusterGenerator", "acr"))
        .build();
    let err = run(&es, &GeneratedValues::default(), at(0))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "spec.dataFrom[0]: generating with ClusterGenerator \"acr\" for ExternalSecret \"default/es\" failed: "
        ),
        "{err}"
    );
    assert_eq!(err.reason(), "Unsupported", "{err}");
    assert_eq!(err.class(), eso_core::plan::ErrorClass::AwaitChange);
}

#[tokio::test]
async fn nothing_is_generated_when_another_entry_fails() {
    let calls = Arc::new(AtomicUsize::new(0));
    let kinds = eso_generator::builtin().with(Arc::new(Counting(calls.clone())));
    let failing = EsBuilder::new("es")
        .data_from(from_generator("UUID", "id"))
        .extract("missing")
        .deletion(eso_api::DeletionPolicy::Retain)
        .build();
    let err = run_with(kinds.clone(), &failing, &GeneratedValues::default(), at(0))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Provider { .. }), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Without the failing entry it is called, once per entry that names it.
    let ok = EsBuilder::new("es")
        .data_from(from_generator("UUID", "id"))
        .data_from(from_generator("UUID", "id"))
        .build();
    let out = run_with(kinds, &ok, &GeneratedValues::default(), at(0))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let keys: Vec<&String> = out
        .generated
        .as_ref()
        .unwrap()
        .current
        .entries
        .keys()
        .collect();
    assert_eq!(keys, ["uuid.id.0", "uuid.id.1"]);
}
