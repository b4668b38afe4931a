//! `UUID`: a random (version 4) UUID, as upstream's `uuid.New()`.

use async_trait::async_trait;
use eso_api::generators::GeneratorKind;

use crate::random::fill;
use crate::{Generated, Generator, GeneratorContext, GeneratorError};

/// The `UUID` generator. Output: `uuid`, e.g. `3f2b6a1e-52c4-4d7e-9a1b-0c8d4e6f7a90`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uuid;

/// A random RFC 9562 version 4 UUID in its lowercase hyphenated form.
pub(crate) fn new_v4() -> Result<String, GeneratorError> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // variant 10 (RFC 9562)
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[async_trait]
impl Generator for Uuid {
    fn kind(&self) -> GeneratorKind {
        GeneratorKind::UUID
    }

    async fn generate(
        &self,
        _ctx: GeneratorContext<'_>,
        _spec: &serde_json::Value,
    ) -> Result<Generated, GeneratorError> {
        Ok(Generated::data(crate::string_data([("uuid", new_v4()?)])))
    }
}
