//! What a generator gets besides its spec: the namespace it generates for, the object it was
//! defined by (for messages), and the readers for the credentials its spec references.

use eso_api::generators::GeneratorKind;
use eso_api::provider::SecretStoreProvider;
use eso_api::{SecretStoreSpec, StoreKind};
use eso_provider::{
    ClientContext, ConfigMapReader, ProviderError, SecretReader, ServiceAccountTokens, StoreInfo,
};

use crate::GeneratorError;
use crate::error::TextError;

/// The object a generator spec came from: a namespaced generator (`Password "apps/db"`) or a
/// `ClusterGenerator` wrapping a kind. Used in messages and field paths only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorObject<'a> {
    /// The generator kind (the wrapped kind for a ClusterGenerator).
    pub kind: GeneratorKind,
    /// The object's name.
    pub name: &'a str,
    /// The object's namespace; `None` for a ClusterGenerator.
    pub namespace: Option<&'a str>,
}

impl<'a> GeneratorObject<'a> {
    /// A namespaced generator object.
    #[must_use]
    pub fn namespaced(kind: GeneratorKind, name: &'a str, namespace: &'a str) -> Self {
        Self {
            kind,
            name,
            namespace: Some(namespace),
        }
    }

    /// A `ClusterGenerator` wrapping `kind`.
    #[must_use]
    pub fn cluster(kind: GeneratorKind, name: &'a str) -> Self {
        Self {
            kind,
            name,
            namespace: None,
        }
    }

    /// `Password "apps/db"` or `ClusterGenerator "db"`, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.namespace {
            Some(ns) => format!("{} \"{ns}/{}\"", self.kind, self.name),
            None => format!("ClusterGenerator \"{}\"", self.name),
        }
    }

    /// Where the kind's spec sits in the object: `spec`, or `spec.generator.<kind>Spec` in a
    /// ClusterGenerator.
    #[must_use]
    pub fn spec_path(&self) -> String {
        match self.namespace {
            Some(_) => "spec".to_owned(),
            None => format!("spec.generator.{}", self.kind.spec_key()),
        }
    }
}

/// Everything a generator needs besides its spec.
#[derive(Clone, Copy)]
pub struct GeneratorContext<'a> {
    /// The namespace the value is generated for (the ExternalSecret's or PushSecret's).
    /// Credential references in the spec resolve here, for a ClusterGenerator too, as
    /// upstream.
    pub namespace: &'a str,
    /// The object the spec came from, for messages.
    pub object: GeneratorObject<'a>,
    /// Where referenced Secrets are read from.
    pub secrets: &'a dyn SecretReader,
    /// Where referenced ConfigMaps (CA bundles) are read from.
    pub config_maps: &'a dyn ConfigMapReader,
    /// Where ServiceAccount tokens come from; `None` offline (`sync-once render`).
    pub tokens: Option<&'a dyn ServiceAccountTokens>,
}

impl std::fmt::Debug for GeneratorContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorContext")
            .field("namespace", &self.namespace)
            .field("object", &self.object)
            .field("tokens", &self.tokens.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> GeneratorContext<'a> {
    /// A context without ServiceAccount tokens.
    #[must_use]
    pub fn new(
        namespace: &'a str,
        object: GeneratorObject<'a>,
        secrets: &'a dyn SecretReader,
        config_maps: &'a dyn ConfigMapReader,
    ) -> Self {
        Self {
            namespace,
            object,
            secrets,
            config_maps,
            tokens: None,
        }
    }

    /// Adds a source of ServiceAccount tokens (Vault Kubernetes/JWT logins, AWS web identity).
    #[must_use]
    pub fn with_tokens(mut self, tokens: &'a dyn ServiceAccountTokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// A stand-in SecretStore in [`GeneratorContext::namespace`] carrying `provider`, so that a
    /// generator can build the client of the provider whose login it shares. As a namespaced
    /// store, every credential reference resolves in the generating namespace.
    #[must_use]
    pub fn stand_in_store(&self, provider: SecretStoreProvider) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::SecretStore,
            name: self.object.name.to_owned(),
            namespace: Some(self.namespace.to_owned()),
            uid: None,
            generation: None,
            spec: SecretStoreSpec {
                provider,
                ..Default::default()
            },
        }
    }

    /// The provider client context for a [`GeneratorContext::stand_in_store`].
    #[must_use]
    pub fn client_context<'b>(&'b self, store: &'b StoreInfo) -> ClientContext<'b> {
        ClientContext {
            store,
            namespace: self.namespace,
            secrets: self.secrets,
            config_maps: self.config_maps,
            tokens: self.tokens,
        }
    }

    /// A provider error from a stand-in store, reworded for the generator: the store's name
    /// becomes the generator object, and `store_field` (e.g. `spec.provider.aws`) the field of
    /// the generator's spec that holds the same settings (`generator_field`, relative to the
    /// spec: `provider` for a VaultDynamicSecret, empty when they sit at the top), so that
    /// messages read `ECRAuthorizationToken "ci/ecr": spec.auth...`. `what` says what failed
    /// when the provider's message does not name the object already.
    #[must_use]
    pub fn provider_error(
        &self,
        store: &StoreInfo,
        store_field: &str,
        generator_field: &str,
        what: &str,
        err: ProviderError,
    ) -> GeneratorError {
        let store_name = store.describe();
        let object = self.object.describe();
        let target = if generator_field.is_empty() {
            self.object.spec_path()
        } else {
            format!("{}.{generator_field}", self.object.spec_path())
        };
        let restyle = |text: &str| {
            text.replace(
                &format!("{store_name}: {store_field}"),
                &format!("{object}: {target}"),
            )
            .replace(&format!("{store_field}."), &format!("{target}."))
            .replace(&store_name, &object)
        };
        let mut messages = vec![restyle(err.message())];
        let mut next = std::error::Error::source(&err);
        while let Some(e) = next {
            messages.push(restyle(&e.to_string()));
            next = e.source();
        }
        let mut out = if messages[0].starts_with(&object) {
            let top = messages.remove(0);
            GeneratorError::new(err.kind().into(), top)
        } else {
            GeneratorError::new(err.kind().into(), format!("{object}: {what}"))
        };
        if let Some(wait) = err.retry_after() {
            out = out.with_retry_after(wait);
        }
        if messages.is_empty() {
            out
        } else {
            out.with_source(TextError(messages.join(": ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eso_provider::{StaticConfigMapReader, StaticSecretReader};

    #[test]
    fn objects_describe_themselves_and_their_spec_path() {
        let ns = GeneratorObject::namespaced(GeneratorKind::Password, "db", "apps");
        assert_eq!(ns.describe(), "Password \"apps/db\"");
        assert_eq!(ns.spec_path(), "spec");
        let cluster = GeneratorObject::cluster(GeneratorKind::VaultDynamicSecret, "db");
        assert_eq!(cluster.describe(), "ClusterGenerator \"db\"");
        assert_eq!(cluster.spec_path(), "spec.generator.vaultDynamicSecretSpec");
    }

    #[test]
    fn provider_errors_name_the_generator_not_the_stand_in_store() {
        let (secrets, maps) = (StaticSecretReader::new(), StaticConfigMapReader::new());
        let object = GeneratorObject::cluster(GeneratorKind::ECRAuthorizationToken, "ecr");
        let ctx = GeneratorContext::new("ci", object, &secrets, &maps);
        let store = ctx.stand_in_store(SecretStoreProvider::default());
        assert_eq!(store.namespace.as_deref(), Some("ci"));
        let inner = ProviderError::invalid_store(format!(
            "{}: spec.provider.aws.auth.secretRef.accessKeyIDSecretRef refers to Secret \"ci/aws\", which does not exist",
            store.describe()
        ));
        let err = ctx.provider_error(
            &store,
            "spec.provider.aws",
            "",
            "logging in to AWS failed",
            inner,
        );
        assert_eq!(err.kind(), crate::ErrorKind::InvalidSpec);
        assert_eq!(
            err.chain(),
            "ClusterGenerator \"ecr\": spec.generator.ecrAuthorizationTokenSpec.auth.secretRef.accessKeyIDSecretRef refers to Secret \"ci/aws\", which does not exist"
        );
        let wrapped = ProviderError::unavailable("cannot reach ECR")
            .with_source(ProviderError::unavailable("connection refused"));
        let err = ctx.provider_error(
            &store,
            "spec.provider.aws",
            "",
            "calling ECR failed",
            wrapped,
        );
        assert_eq!(
            err.chain(),
            "ClusterGenerator \"ecr\": calling ECR failed: cannot reach ECR: connection refused"
        );
    }
}
