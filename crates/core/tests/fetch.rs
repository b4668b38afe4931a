//! Fetching through the fake provider: upstream's order and precedence, decoding, conversion,
//! missing keys, store resolution and client reuse.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use eso_api::{
    ClusterSecretStoreCondition, ConversionStrategy, DecodingStrategy, DeletionPolicy,
    ExternalSecretDataFromRemoteRef, ExternalSecretDataRemoteRef, ExternalSecretFind,
    ExternalSecretRewrite, FindName, RewriteRegexp, SecretStoreRef, StoreKind, StoreSourceRef,
};
use eso_core::fetch::{ClientCache, FetchContext, FetchError, Fetched, ReadSharing, fetch};
use eso_core::manifests::{ManifestSet, Source, Sourced};
use eso_core::testing::{EsBuilder, bytes, fake_store};
use eso_provider::ProviderRegistry;
use eso_provider::rewrite::NoTemplates;

fn set_with(stores: &[eso_api::SecretStore]) -> ManifestSet {
    let mut set = ManifestSet::new("default");
    for s in stores {
        let key = (
            s.metadata.namespace.clone().unwrap(),
            s.metadata.name.clone().unwrap(),
        );
        set.stores.insert(
            key,
            Sourced {
                source: Source {
                    file: "t".into(),
                    document: 1,
                },
                object: s.clone(),
            },
        );
    }
    set
}

async fn run(set: &ManifestSet, es: &eso_api::ExternalSecret) -> Result<Fetched, FetchError> {
    let registry =
        ProviderRegistry::new().with(std::sync::Arc::new(eso_provider_fake::FakeProvider));
    let clients = ClientCache::new();
    fetch(
        FetchContext {
            registry: &registry,
            stores: set,
            secrets: set,
            tokens: None,
            config_maps: set,
            clients: &clients,
            transformer: &NoTemplates,
            generators: None,
        },
        es,
    )
    .await
}

fn extract_with(
    key: &str,
    f: impl FnOnce(&mut ExternalSecretDataFromRemoteRef),
) -> ExternalSecretDataFromRemoteRef {
    let mut e = ExternalSecretDataFromRemoteRef {
        extract: Some(ExternalSecretDataRemoteRef {
            key: key.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    f(&mut e);
    e
}

#[tokio::test]
async fn data_wins_over_data_from_and_later_data_from_wins() {
    let set = set_with(&[fake_store(
        "store",
        &[
            ("a", r#"{"x":"a","y":"a"}"#),
            ("b", r#"{"y":"b"}"#),
            ("single", "from-data"),
        ],
    )]);
    let es = EsBuilder::new("es")
        .extract("a")
        .extract("b")
        .data("x", "single")
        .build();
    let out = run(&set, &es).await.unwrap();
    assert_eq!(out.data, bytes(&[("x", "from-data"), ("y", "b")]));
}

#[tokio::test]
async fn decoding_strategies_apply_to_data_and_data_from() {
    let set = set_with(&[fake_store(
        "store",
        &[("b64", "aGVsbG8="), ("obj", r#"{"k":"d29ybGQ="}"#)],
    )]);
    let es = EsBuilder::new("es")
        .data_ref(
            "plain",
            ExternalSecretDataRemoteRef {
                key: "b64".into(),
                ..Default::default()
            },
        )
        .data_ref(
            "decoded",
            ExternalSecretDataRemoteRef {
                key: "b64".into(),
                decoding_strategy: Some(DecodingStrategy::Base64),
                ..Default::default()
            },
        )
        .data_from(extract_with("obj", |e| {
            e.extract.as_mut().unwrap().decoding_strategy = Some(DecodingStrategy::Auto)
        }))
        .build();
    let out = run(&set, &es).await.unwrap();
    assert_eq!(
        out.data,
        bytes(&[("decoded", "hello"), ("k", "world"), ("plain", "aGVsbG8=")])
    );
}

#[tokio::test]
async fn invalid_base64_names_the_entry_and_key() {
    let set = set_with(&[fake_store("store", &[("bad", "%%%")])]);
    let es = EsBuilder::new("es")
        .data_ref(
            "pw",
            ExternalSecretDataRemoteRef {
                key: "bad".into(),
                decoding_strategy: Some(DecodingStrategy::Base64),
                ..Default::default()
            },
        )
        .build();
    let err = run(&set, &es).await.unwrap_err();
    let text = err.chain();
    assert!(
        text.contains("spec.data[0]")
            && text.contains("\"bad\"")
            && text.contains("provider fake")
            && text.contains("base64"),
        "{text}"
    );
}

#[tokio::test]
async fn keys_are_converted_without_rewrite_and_rewritten_otherwise() {
    let set = set_with(&[fake_store("store", &[("obj", r#"{"a/b":"1","c@d":"2"}"#)])]);
    let default = EsBuilder::new("es").extract("obj").build();
    assert_eq!(
        run(&set, &default).await.unwrap().data,
        bytes(&[("a_b", "1"), ("c_d", "2")])
    );
    let unicode = EsBuilder::new("es")
        .data_from(extract_with("obj", |e| {
            e.extract.as_mut().unwrap().conversion_strategy = Some(ConversionStrategy::Unicode)
        }))
        .build();
    assert_eq!(
        run(&set, &unicode).await.unwrap().data,
        bytes(&[("a_U002f_b", "1"), ("c_U0040_d", "2")])
    );
    // With a rewrite, conversion is skipped: the rewrite must produce valid keys itself.
    let rewritten = EsBuilder::new("es")
        .data_from(extract_with("obj", |e| {
            e.rewrite = vec![ExternalSecretRewrite {
                regexp: Some(RewriteRegexp {
                    source: "[/@]".into(),
                    target: "-".into(),
                }),
                ..Default::default()
            }];
        }))
        .build();
    assert_eq!(
        run(&set, &rewritten).await.unwrap().data,
        bytes(&[("a-b", "1"), ("c-d", "2")])
    );
    let invalid = EsBuilder::new("es")
        .data_from(extract_with("obj", |e| {
            e.rewrite = vec![ExternalSecretRewrite {
                regexp: Some(RewriteRegexp {
                    source: "^a".into(),
                    target: "x".into(),
                }),
                ..Default::default()
            }];
        }))
        .build();
    assert!(
        run(&set, &invalid)
            .await
            .unwrap_err()
            .chain()
            .contains("c@d")
    );
}

#[tokio::test]
async fn find_collects_matching_keys() {
    let set = set_with(&[fake_store(
        "store",
        &[("app/db", "1"), ("app/api", "2"), ("other", "3")],
    )]);
    let es = EsBuilder::new("es")
        .data_from(ExternalSecretDataFromRemoteRef {
            find: Some(ExternalSecretFind {
                name: Some(FindName {
                    regexp: Some("^app/".into()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .build();
    assert_eq!(
        run(&set, &es).await.unwrap().data,
        bytes(&[("app_api", "2"), ("app_db", "1")])
    );
}

#[tokio::test]
async fn a_missing_key_is_an_error_with_retain_and_skipped_otherwise() {
    let set = set_with(&[fake_store("store", &[("there", "1")])]);
    let retain = EsBuilder::new("es")
        .data("a", "there")
        .data("b", "gone")
        .build();
    let err = run(&set, &retain).await.unwrap_err();
    assert!(err.provider_error().unwrap().is_not_found());
    assert!(
        err.chain().contains("spec.data[1]") && err.chain().contains("\"gone\""),
        "{}",
        err.chain()
    );

    let delete = EsBuilder::new("es")
        .deletion(DeletionPolicy::Delete)
        .data("a", "there")
        .data("b", "gone")
        .build();
    let out = run(&set, &delete).await.unwrap();
    assert_eq!(out.data, bytes(&[("a", "1")]));
    assert_eq!(out.missing, vec!["gone".to_owned()]);
}

#[tokio::test]
async fn store_errors_name_the_entry_and_store() {
    let set = set_with(&[fake_store("store", &[])]);
    let mut es = EsBuilder::new("es").data("a", "x").build();
    es.spec.secret_store_ref = Some(SecretStoreRef {
        name: Some("nope".into()),
        kind: None,
    });
    let err = run(&set, &es).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.data[0]: SecretStore \"nope\" not found in namespace \"default\""
    );

    es.spec.secret_store_ref = Some(SecretStoreRef {
        name: Some("store".into()),
        kind: Some(StoreKind::ClusterSecretStore),
    });
    assert!(
        run(&set, &es)
            .await
            .unwrap_err()
            .to_string()
            .contains("ClusterSecretStore \"store\" not found")
    );

    es.spec.secret_store_ref = None;
    assert_eq!(run(&set, &es).await.unwrap_err().reason(), "NoStoreRef");
}

#[tokio::test]
async fn a_store_in_another_namespace_is_not_found() {
    let mut other = fake_store("store", &[("a", "1")]);
    other.metadata.namespace = Some("other".into());
    let set = set_with(&[other]);
    let es = EsBuilder::new("es").data("a", "a").build();
    assert!(matches!(
        run(&set, &es).await.unwrap_err(),
        FetchError::Store { .. }
    ));
}

#[tokio::test]
async fn entry_source_ref_overrides_the_spec_store() {
    let set = set_with(&[
        fake_store("store", &[("k", "main")]),
        fake_store("second", &[("k", "second")]),
    ]);
    let mut es = EsBuilder::new("es")
        .data("from-main", "k")
        .data("from-second", "k")
        .build();
    es.spec.data[1].source_ref = Some(StoreSourceRef {
        store_ref: Some(SecretStoreRef {
            name: Some("second".into()),
            kind: None,
        }),
        generator_ref: None,
    });
    assert_eq!(
        run(&set, &es).await.unwrap().data,
        bytes(&[("from-main", "main"), ("from-second", "second")])
    );
}

#[tokio::test]
async fn cluster_store_conditions_are_enforced() {
    let store = fake_store("global", &[("k", "v")]);
    let mut css = eso_api::ClusterSecretStore::new("global", store.spec.clone());
    css.spec.conditions = vec![ClusterSecretStoreCondition {
        namespaces: vec!["prod".into()],
        ..Default::default()
    }];
    let mut set = ManifestSet::new("default");
    set.cluster_stores.insert(
        "global".into(),
        Sourced {
            source: Source {
                file: "t".into(),
                document: 1,
            },
            object: css,
        },
    );
    let mut es = EsBuilder::new("es").data("k", "k").build();
    es.spec.secret_store_ref = Some(SecretStoreRef {
        name: Some("global".into()),
        kind: Some(StoreKind::ClusterSecretStore),
    });
    let err = run(&set, &es).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("not allowed from namespace \"default\""),
        "{err}"
    );
    es.metadata.namespace = Some("prod".into());
    assert_eq!(run(&set, &es).await.unwrap().data, bytes(&[("k", "v")]));
}

#[tokio::test]
async fn an_unsupported_provider_is_named() {
    let mut store = fake_store("store", &[]);
    store.spec.provider.fake = None;
    store.spec.provider.other.insert(
        "akeyless".into(),
        serde_json::json!({"akeylessGWApiURL": "x"}),
    );
    let set = set_with(&[store]);
    let es = EsBuilder::new("es").data("k", "k").build();
    let text = run(&set, &es).await.unwrap_err().chain();
    assert!(
        text.contains("provider \"akeyless\" is not supported"),
        "{text}"
    );
}

#[tokio::test]
async fn one_client_serves_every_entry_of_a_store() {
    let set = set_with(&[fake_store("store", &[("a", "1"), ("b", "2")])]);
    let es = EsBuilder::new("es").data("a", "a").data("b", "b").build();
    let registry =
        ProviderRegistry::new().with(std::sync::Arc::new(eso_provider_fake::FakeProvider));
    let clients = ClientCache::new();
    let ctx = FetchContext {
        registry: &registry,
        stores: &set,
        secrets: &set,
        tokens: None,
        config_maps: &set,
        clients: &clients,
        transformer: &NoTemplates,
        generators: None,
    };
    fetch(ctx, &es).await.unwrap();
    fetch(ctx, &es).await.unwrap();
    assert_eq!(clients.len(), 1);
}

#[tokio::test]
async fn generators_are_reported_as_unsupported() {
    let set = set_with(&[fake_store("store", &[])]);
    let es = EsBuilder::new("es")
        .data_from(ExternalSecretDataFromRemoteRef {
            source_ref: Some(eso_api::StoreGeneratorSourceRef {
                store_ref: None,
                generator_ref: Some(eso_api::GeneratorRef {
                    api_version: None,
                    kind: "Password".into(),
                    name: "pw".into(),
                }),
            }),
            ..Default::default()
        })
        .build();
    assert!(matches!(
        run(&set, &es).await.unwrap_err(),
        FetchError::Unsupported { .. }
    ));
}

/// The fake provider, counting the reads that reach it.
struct Counting {
    reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

struct CountingClient {
    inner: std::sync::Arc<dyn eso_provider::SecretsClient>,
    reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl eso_provider::Provider for Counting {
    fn key(&self) -> &'static str {
        "fake"
    }
    fn capabilities(&self) -> eso_api::SecretStoreCapabilities {
        eso_provider_fake::FakeProvider.capabilities()
    }
    fn validate_store(
        &self,
        store: &eso_provider::StoreInfo,
    ) -> Result<Vec<String>, eso_provider::ProviderError> {
        eso_provider_fake::FakeProvider.validate_store(store)
    }
    async fn new_client(
        &self,
        ctx: eso_provider::ClientContext<'_>,
    ) -> Result<std::sync::Arc<dyn eso_provider::SecretsClient>, eso_provider::ProviderError> {
        let inner = eso_provider_fake::FakeProvider.new_client(ctx).await?;
        Ok(std::sync::Arc::new(CountingClient {
            inner,
            reads: self.reads.clone(),
        }))
    }
}

#[async_trait::async_trait]
impl eso_provider::SecretsClient for CountingClient {
    async fn get_secret(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<Vec<u8>, eso_provider::ProviderError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get_secret(remote).await
    }
    async fn get_secret_map(
        &self,
        remote: &ExternalSecretDataRemoteRef,
    ) -> Result<eso_provider::SecretData, eso_provider::ProviderError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get_secret_map(remote).await
    }
    async fn get_all_secrets(
        &self,
        find: &ExternalSecretFind,
    ) -> Result<eso_provider::SecretData, eso_provider::ProviderError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get_all_secrets(find).await
    }
    async fn validate(
        &self,
    ) -> Result<eso_provider::ValidationResult, eso_provider::ProviderError> {
        self.inner.validate().await
    }
}

/// An ExternalSecret as the controller sees it after a successful sync of its current spec.
fn synced(mut es: eso_api::ExternalSecret) -> eso_api::ExternalSecret {
    es.spec.refresh_interval = Some("1h".into());
    es.status = Some(eso_api::ExternalSecretStatus {
        synced_resource_version: Some(eso_core::schedule::current_resource_version(&es)),
        ..Default::default()
    });
    es
}

async fn reads_for(sharing: ReadSharing, readers: &[eso_api::ExternalSecret]) -> usize {
    let set = set_with(&[fake_store("store", &[("db", r#"{"pw":"x"}"#)])]);
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let registry = eso_provider::ProviderRegistry::new().with(std::sync::Arc::new(Counting {
        reads: reads.clone(),
    }));
    let clients = ClientCache::with_sharing(sharing);
    let ctx = FetchContext {
        registry: &registry,
        stores: &set,
        secrets: &set,
        tokens: None,
        config_maps: &set,
        clients: &clients,
        transformer: &NoTemplates,
        generators: None,
    };
    for es in readers {
        let fetched = fetch(ctx, es).await.unwrap();
        assert_eq!(fetched.data.get("pw").map(Vec::as_slice), Some(&b"x"[..]));
    }
    reads.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn periodic_refreshes_share_one_read_per_key_within_their_interval() {
    let readers: Vec<_> = (0..10)
        .map(|i| synced(EsBuilder::new(&format!("es-{i}")).extract("db").build()))
        .collect();
    assert_eq!(
        reads_for(ReadSharing::WithinRefreshInterval, &readers).await,
        1
    );
    assert_eq!(reads_for(ReadSharing::InFlight, &readers).await, 10);
    assert_eq!(
        reads_for(ReadSharing::Within(std::time::Duration::ZERO), &readers).await,
        10
    );
}

#[tokio::test]
async fn a_new_or_changed_external_secret_reads_afresh() {
    let steady = synced(EsBuilder::new("steady").extract("db").build());
    let new = EsBuilder::new("new").extract("db").build();
    let mut forced = steady.clone();
    forced.metadata.annotations = Some([("force-sync".to_owned(), "2026-11-27".to_owned())].into());
    assert_eq!(
        reads_for(ReadSharing::WithinRefreshInterval, &[steady.clone(), new]).await,
        2
    );
    assert_eq!(
        reads_for(ReadSharing::WithinRefreshInterval, &[steady, forced]).await,
        2
    );
}
