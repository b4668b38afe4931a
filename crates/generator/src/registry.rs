use std::collections::BTreeMap;
use std::sync::Arc;

use eso_api::generators::GeneratorKind;

use crate::{
    Fake, Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, Password,
    SshKey, Uuid,
};

/// Maps a generator kind to its implementation. The operator and `sync-once` fill it with
/// [`builtin`] plus the provider crates' kinds; an embedding tool can add its own.
#[derive(Clone, Default)]
pub struct GeneratorRegistry {
    generators: BTreeMap<GeneratorKind, Arc<dyn Generator>>,
}

impl std::fmt::Debug for GeneratorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.generators.keys()).finish()
    }
}

/// A registry with the kinds of this crate: `Password`, `UUID`, `SSHKey` and `Fake`.
#[must_use]
pub fn builtin() -> GeneratorRegistry {
    GeneratorRegistry::new()
        .with(Arc::new(Password))
        .with(Arc::new(Uuid))
        .with(Arc::new(SshKey))
        .with(Arc::new(Fake))
}

impl GeneratorRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a generator, replacing any of the same kind.
    #[must_use]
    pub fn with(mut self, generator: Arc<dyn Generator>) -> Self {
        self.register(generator);
        self
    }

    /// Adds a generator, replacing any of the same kind.
    pub fn register(&mut self, generator: Arc<dyn Generator>) {
        self.generators.insert(generator.kind(), generator);
    }

    /// The kinds registered.
    pub fn kinds(&self) -> impl Iterator<Item = GeneratorKind> + '_ {
        self.generators.keys().copied()
    }

    /// The generator of `kind`, or an [`crate::ErrorKind::Unsupported`] error naming the kinds
    /// that are registered.
    pub fn get(&self, kind: GeneratorKind) -> Result<Arc<dyn Generator>, GeneratorError> {
        self.generators.get(&kind).cloned().ok_or_else(|| {
            GeneratorError::unsupported(format!(
                "generator kind {kind} is not supported (supported: {})",
                self.kinds()
                    .map(GeneratorKind::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Checks a spec with the generator of `kind`, without I/O.
    pub fn validate(
        &self,
        kind: GeneratorKind,
        object: GeneratorObject<'_>,
        spec: &serde_json::Value,
    ) -> Result<(), GeneratorError> {
        self.get(kind)?.validate(object, spec)
    }

    /// Generates with the generator of `kind`.
    pub async fn generate(
        &self,
        kind: GeneratorKind,
        ctx: GeneratorContext<'_>,
        spec: &serde_json::Value,
    ) -> Result<Generated, GeneratorError> {
        self.get(kind)?.generate(ctx, spec).await
    }

    /// Cleans up with the generator of `kind`.
    pub async fn cleanup(
        &self,
        kind: GeneratorKind,
        ctx: GeneratorContext<'_>,
        spec: &serde_json::Value,
        state: &serde_json::Value,
    ) -> Result<(), GeneratorError> {
        self.get(kind)?.cleanup(ctx, spec, state).await
    }
}
