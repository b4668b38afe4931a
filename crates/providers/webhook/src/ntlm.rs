//! NTLM client authentication (`auth.ntlm`): the NTLMv2 messages of MS-NLMP, pure and
//! clock-free. The HTTP handshake that carries them (negotiate, challenge, authenticate on one
//! kept-alive connection) is in `transport`.
//!
//! What it does follows upstream, which uses go-ntlmssp's `Negotiator`: NTLMv2 only, Unicode
//! only, no key exchange, no signing or sealing (HTTP needs none of them once the connection
//! is authenticated), no MIC. A user written `DOMAIN\user` authenticates in `DOMAIN`; a UPN
//! (`user@realm`) is sent whole with no domain; a bare user in the domain the server names in
//! its challenge.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

/// `NTLMSSP\0`, the first bytes of every message.
const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NegotiateFlags (MS-NLMP 2.2.2.5).
mod flag {
    pub(super) const UNICODE: u32 = 0x0000_0001;
    pub(super) const REQUEST_TARGET: u32 = 0x0000_0004;
    pub(super) const NTLM: u32 = 0x0000_0200;
    pub(super) const OEM_DOMAIN_SUPPLIED: u32 = 0x0000_1000;
    pub(super) const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub(super) const EXTENDED_SESSION_SECURITY: u32 = 0x0008_0000;
    pub(super) const TARGET_INFO: u32 = 0x0080_0000;
    pub(super) const NEGOTIATE_128: u32 = 0x2000_0000;
    pub(super) const NEGOTIATE_56: u32 = 0x8000_0000;
}

/// What we ask for, and all we ever confirm in the AUTHENTICATE message: a server that
/// answers with more (signing, sealing, key exchange, version) gets those bits cleared back.
const FLAGS: u32 = flag::UNICODE
    | flag::REQUEST_TARGET
    | flag::NTLM
    | flag::ALWAYS_SIGN
    | flag::EXTENDED_SESSION_SECURITY
    | flag::TARGET_INFO
    | flag::NEGOTIATE_128
    | flag::NEGOTIATE_56;

/// AV_PAIR ids (MS-NLMP 2.2.2.1) we read.
const AV_EOL: u16 = 0;
const AV_TIMESTAMP: u16 = 7;

/// Why a CHALLENGE message could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NtlmError {
    /// The message is not an NTLM CHALLENGE or is cut short.
    #[error("the server's NTLM challenge is malformed ({0})")]
    Malformed(&'static str),
    /// The server does not speak Unicode NTLM.
    #[error("the server's NTLM challenge does not offer Unicode, which NTLMv2 here needs")]
    NoUnicode,
}

/// The user, domain and password of `auth.ntlm`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    user: String,
    /// The domain from `DOMAIN\user`; `None` for a bare user or a UPN.
    domain: Option<String>,
    /// Whether the server's domain is used when none is given (not for a UPN).
    use_server_domain: bool,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Splits `DOMAIN\user` (go-ntlmssp's `GetDomain`); a UPN `user@realm` stays whole.
    pub(crate) fn new(username: &str, password: &str) -> Self {
        let (user, domain, use_server_domain) = match username.split_once('\\') {
            Some((domain, user)) => (user, Some(domain.to_owned()), true),
            None => (username, None, !username.contains('@')),
        };
        Self {
            user: user.to_owned(),
            domain,
            use_server_domain,
            password: password.to_owned(),
        }
    }

    /// The user as the store gave it, for messages.
    pub(crate) fn username(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}\\{}", self.user),
            None => self.user.clone(),
        }
    }
}

/// A parsed CHALLENGE message (MS-NLMP 2.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    flags: u32,
    server_challenge: [u8; 8],
    target_name: String,
    /// The raw AV_PAIR list, echoed inside the NTLMv2 response.
    target_info: Vec<u8>,
    /// `MsvAvTimestamp`, when the server sent one.
    timestamp: Option<[u8; 8]>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The payload a (length, max length, offset) field at `at` points to.
fn field_at(b: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16_at(b, at)?);
    let offset = usize::try_from(u32_at(b, at + 4)?).ok()?;
    b.get(offset..offset.checked_add(len)?)
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Md5>::new_from_slice(key) else {
        return [0; 16];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2 (MS-NLMP 3.3.2): HMAC-MD5 keyed with MD4 of the password over the upper-cased
/// user and the domain, both UTF-16LE.
fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = Md4::digest(utf16le(password));
    let identity = utf16le(&format!("{}{domain}", user.to_uppercase()));
    hmac_md5(&nt_hash, &[&identity])
}

impl Challenge {
    /// Parses a CHALLENGE message.
    pub(crate) fn parse(b: &[u8]) -> Result<Self, NtlmError> {
        if b.get(..8) != Some(SIGNATURE.as_slice()) {
            return Err(NtlmError::Malformed("no NTLMSSP signature"));
        }
        if u32_at(b, 8) != Some(2) {
            return Err(NtlmError::Malformed("not a CHALLENGE message"));
        }
        let flags = u32_at(b, 20).ok_or(NtlmError::Malformed("too short"))?;
        if flags & flag::UNICODE == 0 {
            return Err(NtlmError::NoUnicode);
        }
        let server_challenge: [u8; 8] = b
            .get(24..32)
            .and_then(|c| c.try_into().ok())
            .ok_or(NtlmError::Malformed("too short"))?;
        let target_name = field_at(b, 12)
            .map(from_utf16le)
            .ok_or(NtlmError::Malformed("target name out of bounds"))?;
        // Servers of the NT 4 era end the header before TargetInfoFields.
        let target_info = if b.len() >= 48 {
            field_at(b, 40)
                .ok_or(NtlmError::Malformed("target info out of bounds"))?
                .to_vec()
        } else {
            Vec::new()
        };
        let timestamp = av_pairs(&target_info)?
            .into_iter()
            .find(|(id, _)| *id == AV_TIMESTAMP)
            .and_then(|(_, v)| v.try_into().ok());
        Ok(Self {
            flags,
            server_challenge,
            target_name,
            target_info,
            timestamp,
        })
    }
}

/// The (id, value) pairs of an AV_PAIR list, up to `MsvAvEOL`.
fn av_pairs(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, NtlmError> {
    let mut pairs = Vec::new();
    while !b.is_empty() {
        let id = u16_at(b, 0).ok_or(NtlmError::Malformed("truncated target info"))?;
        let len = usize::from(u16_at(b, 2).ok_or(NtlmError::Malformed("truncated target info"))?);
        if id == AV_EOL {
            break;
        }
        let value = b
            .get(4..4 + len)
            .ok_or(NtlmError::Malformed("truncated target info"))?;
        pairs.push((id, value));
        b = &b[4 + len..];
    }
    Ok(pairs)
}

/// The NEGOTIATE message (MS-NLMP 2.2.1.1), naming the domain when the user gave one.
pub(crate) fn negotiate_message(credentials: &Credentials) -> Vec<u8> {
    // The domain goes in the OEM character set; non-ASCII names are left out rather than
    // mangled (the domain the hash uses is sent again, in Unicode, when authenticating).
    let domain = credentials
        .domain
        .as_deref()
        .filter(|d| !d.is_empty() && d.is_ascii())
        .unwrap_or_default();
    let mut flags = FLAGS;
    if !domain.is_empty() {
        flags |= flag::OEM_DOMAIN_SUPPLIED;
    }
    // Header (32 bytes) and a zeroed Version (8): payload from 40.
    let header_len: u32 = 40;
    let mut m = Vec::with_capacity(40 + domain.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    push_field(&mut m, domain.len(), header_len);
    push_field(&mut m, 0, header_len + len_u32(domain.len()));
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(domain.as_bytes());
    m
}

/// A length as the u32 of a message field. Every field here is far below 4 GiB (a user name,
/// a domain, a response of a few hundred bytes), and a longer one is clamped rather than
/// wrapped.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn push_field(m: &mut Vec<u8>, len: usize, offset: u32) {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&offset.to_le_bytes());
}

/// The NTLMv2 responses for one challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Responses {
    /// `NTProofStr` followed by the client blob.
    nt: Vec<u8>,
    /// LMv2, or 24 zero bytes when the server sent a timestamp (MS-NLMP 3.1.5.1.2).
    lm: Vec<u8>,
}

/// NTLMv2 responses (MS-NLMP 3.3.2) for a response key, over `time` (a FILETIME).
fn ntlm_v2_responses(
    response_key: &[u8; 16],
    challenge: &Challenge,
    client_challenge: [u8; 8],
    time: [u8; 8],
) -> Responses {
    let mut blob = Vec::with_capacity(28 + challenge.target_info.len() + 4);
    blob.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    blob.extend_from_slice(&time);
    blob.extend_from_slice(&client_challenge);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(&challenge.target_info);
    blob.extend_from_slice(&[0; 4]);
    let proof = hmac_md5(response_key, &[&challenge.server_challenge, &blob]);
    let mut nt = proof.to_vec();
    nt.extend_from_slice(&blob);
    let lm = if challenge.timestamp.is_some() {
        vec![0; 24]
    } else {
        let mut lm = hmac_md5(
            response_key,
            &[&challenge.server_challenge, &client_challenge],
        )
        .to_vec();
        lm.extend_from_slice(&client_challenge);
        lm
    };
    Responses { nt, lm }
}

/// The AUTHENTICATE message (MS-NLMP 2.2.1.3) answering `challenge`. `client_challenge` is 8
/// random bytes; `now` is the current time as a FILETIME (100 ns since 1601), used only when
/// the server sent no timestamp.
pub(crate) fn authenticate_message(
    challenge: &Challenge,
    credentials: &Credentials,
    client_challenge: [u8; 8],
    now: u64,
) -> Vec<u8> {
    let domain = match (&credentials.domain, credentials.use_server_domain) {
        (Some(d), _) => d.as_str(),
        (None, true) => challenge.target_name.as_str(),
        (None, false) => "",
    };
    let key = ntowf_v2(&credentials.password, &credentials.user, domain);
    let time = challenge.timestamp.unwrap_or(now.to_le_bytes());
    let responses = ntlm_v2_responses(&key, challenge, client_challenge, time);

    let domain = utf16le(domain);
    let user = utf16le(&credentials.user);
    // Six (length, max length, offset) fields and the flags; no Version, no MIC.
    let header_len: usize = 64;
    let mut offset = len_u32(header_len);
    let mut m = Vec::with_capacity(
        header_len + responses.lm.len() + responses.nt.len() + domain.len() + user.len(),
    );
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    for part in [&responses.lm, &responses.nt, &domain, &user] {
        push_field(&mut m, part.len(), offset);
        offset = offset.saturating_add(len_u32(part.len()));
    }
    // Workstation and EncryptedRandomSessionKey: empty.
    push_field(&mut m, 0, offset);
    push_field(&mut m, 0, offset);
    m.extend_from_slice(&(challenge.flags & FLAGS).to_le_bytes());
    for part in [&responses.lm, &responses.nt, &domain, &user] {
        m.extend_from_slice(part);
    }
    m
}

/// A FILETIME (100 ns intervals since 1601-01-01) for a Unix time in nanoseconds.
pub(crate) fn filetime(unix_nanos: u128) -> u64 {
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    u64::try_from(unix_nanos / 100)
        .unwrap_or(u64::MAX)
        .saturating_add(UNIX_EPOCH_AS_FILETIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let clean: String = text.chars().filter(char::is_ascii_hexdigit).collect();
        (0..clean.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The CHALLENGE_MESSAGE of MS-NLMP 4.2.4.3 (NTLMv2): server challenge 0123456789abcdef,
    /// target "Server", AV pairs NbDomainName "Domain" and NbComputerName "Server".
    fn spec_challenge() -> Vec<u8> {
        hex(
            "4e544c4d53535000 02000000 0c000c00 38000000 33828ae2 0123456789abcdef
             0000000000000000 24002400 44000000 060070170000000f
             530065007200760065007200
             02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 00000000",
        )
    }

    /// MS-NLMP 4.2.4: user "User", domain "Domain", password "Password", client challenge
    /// aaaaaaaaaaaaaaaa, time 0.
    fn spec_credentials() -> Credentials {
        Credentials::new("Domain\\User", "Password")
    }

    #[test]
    fn spec_challenge_parses() {
        let c = Challenge::parse(&spec_challenge()).unwrap();
        assert_eq!(
            c.server_challenge,
            [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        );
        assert_eq!(c.target_name, "Server");
        assert_eq!(c.flags, 0xe28a_8233);
        assert_eq!(c.timestamp, None);
        assert_eq!(
            av_pairs(&c.target_info).unwrap(),
            vec![
                (2, utf16le("Domain").as_slice()),
                (1, utf16le("Server").as_slice())
            ]
        );
    }

    #[test]
    fn ntlm_v2_matches_the_worked_example_of_ms_nlmp() {
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let c = Challenge::parse(&spec_challenge()).unwrap();
        let r = ntlm_v2_responses(&key, &c, [0xaa; 8], [0; 8]);
        assert_eq!(r.nt[..16].to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
        assert_eq!(
            r.nt[16..].to_vec(),
            hex("0101000000000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000
                 02000c0044006f006d00610069006e00 01000c00530065007200760065007200
                 00000000 00000000")
        );
        assert_eq!(
            r.lm,
            hex("86c35097ac9cec102554764a57cccc19 aaaaaaaaaaaaaaaa")
        );
        // SessionBaseKey, to pin the NTProofStr once more.
        assert_eq!(
            hmac_md5(&key, &[&r.nt[..16]]).to_vec(),
            hex("8de40ccadbc14a82f15cb0ad0de95ca3")
        );
    }

    #[test]
    fn authenticate_message_lays_out_the_spec_values() {
        let c = Challenge::parse(&spec_challenge()).unwrap();
        let m = authenticate_message(&c, &spec_credentials(), [0xaa; 8], 0);
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(u32_at(&m, 8), Some(3));
        let lm = field_at(&m, 12).unwrap();
        let nt = field_at(&m, 20).unwrap();
        assert_eq!(
            lm.to_vec(),
            hex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
        );
        assert_eq!(nt[..16].to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
        assert_eq!(from_utf16le(field_at(&m, 28).unwrap()), "Domain");
        assert_eq!(from_utf16le(field_at(&m, 36).unwrap()), "User");
        assert_eq!(field_at(&m, 44).unwrap(), b"");
        // Sign, seal, key exchange and version are not confirmed.
        assert_eq!(u32_at(&m, 60), Some(0xe28a_8233 & FLAGS));
        assert_eq!(u32_at(&m, 60).map(|f| f & 0x4000_0030), Some(0));
    }

    #[test]
    fn a_server_timestamp_is_used_and_lm_is_zero() {
        // Target info: NbDomainName "D", Timestamp 0x0102030405060708, EOL.
        let mut info = vec![2, 0, 2, 0, b'D', 0, 7, 0, 8, 0];
        info.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        info.extend_from_slice(&[0, 0, 0, 0]);
        let mut msg = Vec::new();
        msg.extend_from_slice(SIGNATURE);
        msg.extend_from_slice(&2u32.to_le_bytes());
        push_field(&mut msg, 0, 56);
        msg.extend_from_slice(&FLAGS.to_le_bytes());
        msg.extend_from_slice(&[7; 8]);
        msg.extend_from_slice(&[0; 8]);
        push_field(&mut msg, info.len(), 56);
        msg.extend_from_slice(&[0; 8]);
        msg.extend_from_slice(&info);
        let c = Challenge::parse(&msg).unwrap();
        assert_eq!(c.timestamp, Some(0x0102_0304_0506_0708u64.to_le_bytes()));
        let m = authenticate_message(&c, &Credentials::new("u", "p"), [1; 8], 99);
        assert_eq!(field_at(&m, 12).unwrap(), [0; 24]);
        let nt = field_at(&m, 20).unwrap();
        assert_eq!(nt[24..32], 0x0102_0304_0506_0708u64.to_le_bytes());
        // A bare user authenticates in the server's domain, which is empty here.
        assert_eq!(field_at(&m, 28).unwrap(), b"");
    }

    #[test]
    fn user_forms() {
        let c = Credentials::new("CORP\\ann", "pw");
        assert_eq!(
            (c.user.as_str(), c.domain.as_deref()),
            ("ann", Some("CORP"))
        );
        let c = Credentials::new("ann@corp.example", "pw");
        assert_eq!(
            (c.user.as_str(), c.domain.as_deref()),
            ("ann@corp.example", None)
        );
        assert!(!c.use_server_domain);
        let c = Credentials::new("ann", "pw");
        assert!(c.use_server_domain);
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn negotiate_names_the_domain() {
        let m = negotiate_message(&Credentials::new("CORP\\ann", "pw"));
        assert_eq!(&m[..8], SIGNATURE);
        assert_eq!(u32_at(&m, 8), Some(1));
        assert_eq!(
            u32_at(&m, 12).map(|f| f & flag::OEM_DOMAIN_SUPPLIED),
            Some(flag::OEM_DOMAIN_SUPPLIED)
        );
        assert_eq!(field_at(&m, 16).unwrap(), b"CORP");
        let m = negotiate_message(&Credentials::new("ann", "pw"));
        assert_eq!(u32_at(&m, 12), Some(FLAGS));
        assert_eq!(m.len(), 40);
    }

    #[test]
    fn malformed_challenges_are_refused() {
        assert_eq!(
            Challenge::parse(b"HTTP/1.1"),
            Err(NtlmError::Malformed("no NTLMSSP signature"))
        );
        let mut c = spec_challenge();
        c.truncate(60);
        assert!(Challenge::parse(&c).is_err());
        let mut c = spec_challenge();
        c[20] &= !1;
        assert_eq!(Challenge::parse(&c), Err(NtlmError::NoUnicode));
    }

    #[test]
    fn filetime_of_the_unix_epoch() {
        assert_eq!(filetime(0), 116_444_736_000_000_000);
        assert_eq!(filetime(1_000), 116_444_736_000_000_010);
    }
}
