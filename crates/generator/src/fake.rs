//! `Fake`: returns `spec.data` as it is, for tests and examples.

use async_trait::async_trait;
use eso_api::generators::{FakeSpec, GeneratorKind};

use crate::{Generated, Generator, GeneratorContext, GeneratorError, GeneratorObject, parse_spec};

/// The `Fake` generator. Output: the keys of `spec.data`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fake;

#[async_trait]
impl Generator for Fake {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::Fake
    }

    fn validate(
        &self,
        object: GeneratorObject<'_>,
        spec: &serde_json::Value,
    ) -> Result<(), GeneratorError> {
        parse_spec::<FakeSpec>(&object, spec).map(|_| ())
    }

    async fn generate(
        &self,
        ctx: GeneratorContext<'_>,
        spec: &serde_json::Value,
    ) -> Result<Generated, GeneratorError> {
        let spec: FakeSpec = parse_spec(&ctx.object, spec)?;
        Ok(Generated::data(crate::string_data(spec.data)))
    }
}
