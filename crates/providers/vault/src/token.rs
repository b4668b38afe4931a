//! The lifetime of the client's Vault token, as a pure decision over an injected instant: use
//! the token, renew it, or log in again.
//!
//! A token is refreshed once two thirds of its granted TTL have passed (what Vault Agent's
//! lifetime watcher does), so it never expires between the check and the request. Renewal is
//! preferred (one cheap `renew-self`); when the token is not renewable, or a renewal granted
//! less than half of the TTL the login gave (a `max_ttl` cap is near), the client logs in again
//! instead of chaining ever shorter renewals.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// What to do before the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenAction {
    /// The token is good.
    Use,
    /// Renew it (`auth/token/renew-self`).
    Renew,
    /// Log in again (or for the first time).
    Login,
}

/// A token and what Vault said about its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenState {
    pub(crate) token: String,
    pub(crate) lease: Lease,
}

/// A token's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    /// No TTL (root tokens, periodic tokens without a TTL, static tokens we do not manage).
    Unlimited,
    /// Granted `ttl` at `granted_at`.
    Expiring {
        granted_at: Instant,
        ttl: Duration,
        /// The TTL the login granted; renewals are compared with it.
        login_ttl: Duration,
        renewable: bool,
    },
}

impl Lease {
    /// The lease of a login or renewal answer's `auth` object (`lease_duration` in seconds,
    /// `renewable`).
    pub(crate) fn from_auth(auth: &Value, now: Instant, login_ttl: Option<Duration>) -> Self {
        let ttl = auth
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if ttl == 0 {
            return Self::Unlimited;
        }
        let ttl = Duration::from_secs(ttl);
        Self::Expiring {
            granted_at: now,
            ttl,
            login_ttl: login_ttl.unwrap_or(ttl),
            renewable: auth
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// When the token expires, if it does.
    #[cfg(test)]
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        match self {
            Self::Unlimited => None,
            Self::Expiring {
                granted_at, ttl, ..
            } => Some(*granted_at + *ttl),
        }
    }
}

/// Decides what to do with the current token at `now`. `can_login` is false for a static
/// token (`tokenSecretRef`), which is used as given until Vault rejects it.
pub(crate) fn plan(state: Option<&TokenState>, now: Instant, can_login: bool) -> TokenAction {
    let Some(state) = state else {
        return TokenAction::Login;
    };
    let Lease::Expiring {
        granted_at,
        ttl,
        login_ttl,
        renewable,
    } = state.lease
    else {
        return TokenAction::Use;
    };
    let refresh_at = granted_at + ttl * 2 / 3;
    if now < refresh_at {
        return TokenAction::Use;
    }
    if renewable && ttl * 2 >= login_ttl {
        return TokenAction::Renew;
    }
    if can_login {
        TokenAction::Login
    } else {
        // Nothing else can be done with a static token; Vault will say when it is dead.
        TokenAction::Use
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(now: Instant, ttl: u64, login_ttl: u64, renewable: bool) -> TokenState {
        TokenState {
            token: "t".into(),
            lease: Lease::Expiring {
                granted_at: now,
                ttl: Duration::from_secs(ttl),
                login_ttl: Duration::from_secs(login_ttl),
                renewable,
            },
        }
    }

    #[test]
    fn logs_in_without_a_token() {
        assert_eq!(plan(None, Instant::now(), true), TokenAction::Login);
    }

    #[test]
    fn uses_a_token_until_two_thirds_of_its_ttl() {
        let t0 = Instant::now();
        let s = state(t0, 30, 30, true);
        assert_eq!(plan(Some(&s), t0, true), TokenAction::Use);
        assert_eq!(
            plan(Some(&s), t0 + Duration::from_secs(19), true),
            TokenAction::Use
        );
        assert_eq!(
            plan(Some(&s), t0 + Duration::from_secs(20), true),
            TokenAction::Renew
        );
    }

    #[test]
    fn logs_in_again_when_not_renewable_or_renewals_run_short() {
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(25);
        assert_eq!(
            plan(Some(&state(t0, 30, 30, false)), late, true),
            TokenAction::Login
        );
        // A renewal that granted 10 s of a 30 s login: max_ttl is near, log in instead.
        let capped = state(t0, 10, 30, true);
        assert_eq!(
            plan(Some(&capped), t0 + Duration::from_secs(8), true),
            TokenAction::Login
        );
    }

    #[test]
    fn static_and_unlimited_tokens_are_used_as_they_are() {
        let t0 = Instant::now();
        let s = TokenState {
            token: "root".into(),
            lease: Lease::Unlimited,
        };
        assert_eq!(
            plan(Some(&s), t0 + Duration::from_secs(1 << 20), true),
            TokenAction::Use
        );
        let late = t0 + Duration::from_secs(29);
        assert_eq!(
            plan(Some(&state(t0, 30, 30, false)), late, false),
            TokenAction::Use
        );
    }

    #[test]
    fn leases_come_from_auth_and_lookup_answers() {
        let t0 = Instant::now();
        let l = Lease::from_auth(&json!({"lease_duration": 60, "renewable": true}), t0, None);
        assert_eq!(l.expires_at(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(
            Lease::from_auth(&json!({"lease_duration": 0}), t0, None),
            Lease::Unlimited
        );
    }
}
