//! The session's tokens, once for both clients: when the access token is due
//! for a refresh, that only one refresh runs at a time (a refresh token is
//! single-use: presenting a spent one revokes the session), what a `401`
//! means, and when the session has ended.
//!
//! Sans-I/O: the driver passes its clock (`now_ms`, any monotonic
//! milliseconds), makes the `POST /auth/refresh` the engine asks for, and
//! reports how it ended ([`Tokens::refreshed`]). A refresh, once started, runs
//! to its end whoever waits for it (the driver does not cancel it with its
//! caller), so a rotated refresh token is never lost.
//!
//! ```text
//!   logged_in ──▶ access(now) ──▶ Use(token)            not due
//!                    │        ──▶ Refresh(ticket, rt)   due: this caller refreshes
//!                    │        ──▶ Join                  a refresh is in flight: wait, ask again
//!   401 with t ──▶ rejected(t) ─▶ Refresh | Join | Use(newer token)
//!   refreshed(ticket, Tokens | Revoked | Failed) ─▶ Revoked: logged out (say so once)
//! ```

use zeroize::Zeroizing;

use crate::policy::REFRESH_MARGIN_MS;

/// A token answer of the relay (`TokenResponse`'s token fields).
pub struct Issued {
    /// The access token.
    pub access: Zeroizing<String>,
    /// The refresh token (single-use).
    pub refresh: Zeroizing<String>,
    /// The access token's lifetime, in seconds.
    pub expires_in_s: u64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expires_in_s", &self.expires_in_s)
            .finish_non_exhaustive()
    }
}

/// What a caller that needs the access token does.
#[derive(PartialEq, Eq)]
pub enum Access {
    /// Send this access token.
    Use(Zeroizing<String>),
    /// This caller refreshes: `POST /auth/refresh` with this refresh token,
    /// once (only a request that never left may be sent again), then
    /// [`Tokens::refreshed`] with `ticket`; then ask again.
    Refresh {
        /// Names this refresh in [`Tokens::refreshed`].
        ticket: u64,
        /// The refresh token to present.
        refresh: Zeroizing<String>,
    },
    /// A refresh is in flight: wait until it ends, then ask again.
    Join,
    /// No session (never logged in, logged out, or revoked).
    LoggedOut,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Use(_) => f.write_str("Use(..)"),
            Self::Refresh { ticket, .. } => write!(f, "Refresh({ticket}, ..)"),
            Self::Join => f.write_str("Join"),
            Self::LoggedOut => f.write_str("LoggedOut"),
        }
    }
}

/// How a refresh ended.
#[derive(Debug)]
pub enum Refreshed {
    /// New tokens (the refresh token rotated).
    Tokens(Issued),
    /// `401`: the relay refused the refresh token; the session has ended.
    Revoked,
    /// Anything else (unreachable, a 5xx, an unreadable answer): the tokens
    /// stay, and the next call that needs one tries again.
    Failed,
}

struct Held {
    access: Zeroizing<String>,
    refresh: Zeroizing<String>,
    refresh_at_ms: u64,
}

/// The session's tokens and the refresh in flight (see the module docs).
#[derive(Default)]
pub struct Tokens {
    held: Option<Held>,
    /// The ticket of the refresh in flight.
    refreshing: Option<u64>,
    /// Tickets so far; a login starts a new session, whose refreshes the old
    /// one's answers must not touch.
    tickets: u64,
    /// The session has ended since the driver last asked ([`Tokens::take_ended`]).
    ended: bool,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("logged_in", &self.held.is_some())
            .field("refreshing", &self.refreshing)
            .finish_non_exhaustive()
    }
}

/// When tokens issued at `now_ms` for `expires_in_s` are due for a refresh:
/// [`REFRESH_MARGIN_MS`] before expiry, or after half their life if that is
/// later (a short-lived token is not refreshed at once).
#[must_use]
pub fn refresh_at_ms(now_ms: u64, expires_in_s: u64) -> u64 {
    let life = expires_in_s.saturating_mul(1000);
    now_ms.saturating_add(life.saturating_sub(REFRESH_MARGIN_MS).max(life / 2))
}

impl Tokens {
    /// No session.
    pub fn new() -> Self {
        Self::default()
    }

    /// A login (or any answer that starts a session) at `now_ms`. A refresh
    /// of an earlier session still in flight no longer counts.
    pub fn logged_in(&mut self, now_ms: u64, issued: Issued) {
        self.tickets = self.tickets.wrapping_add(1);
        self.refreshing = None;
        self.ended = false;
        self.hold(now_ms, issued);
    }

    fn hold(&mut self, now_ms: u64, i: Issued) {
        self.held = Some(Held {
            refresh_at_ms: refresh_at_ms(now_ms, i.expires_in_s),
            access: i.access,
            refresh: i.refresh,
        });
    }

    /// Whether there is a session.
    pub fn is_logged_in(&self) -> bool {
        self.held.is_some()
    }

    /// When the access token is due for a refresh (a driver may refresh
    /// ahead, at this deadline; callers that need a token refresh it then
    /// anyway).
    pub fn deadline(&self) -> Option<u64> {
        self.held.as_ref().map(|h| h.refresh_at_ms)
    }

    fn start_refresh(&mut self) -> Access {
        let Some(h) = &self.held else {
            return Access::LoggedOut;
        };
        self.tickets = self.tickets.wrapping_add(1);
        self.refreshing = Some(self.tickets);
        Access::Refresh {
            ticket: self.tickets,
            refresh: h.refresh.clone(),
        }
    }

    /// The access token for a call at `now_ms`: to use, or to refresh first.
    pub fn access(&mut self, now_ms: u64) -> Access {
        match (&self.held, self.refreshing) {
            (None, _) => Access::LoggedOut,
            (Some(_), Some(_)) => Access::Join,
            (Some(h), None) if now_ms < h.refresh_at_ms => Access::Use(h.access.clone()),
            (Some(_), None) => self.start_refresh(),
        }
    }

    /// A refresh now, due or not (the app asked).
    pub fn force(&mut self) -> Access {
        match (&self.held, self.refreshing) {
            (None, _) => Access::LoggedOut,
            (Some(_), Some(_)) => Access::Join,
            (Some(_), None) => self.start_refresh(),
        }
    }

    /// The relay answered `401` to a call that carried `used`: refresh, unless
    /// the token was replaced meanwhile (then use the new one) or a refresh
    /// is in flight (join it). A call is retried after one such refresh at
    /// most.
    pub fn rejected(&mut self, used: &str) -> Access {
        match (&self.held, self.refreshing) {
            (None, _) => Access::LoggedOut,
            (Some(_), Some(_)) => Access::Join,
            (Some(h), None) if h.access.as_str() != used => Access::Use(h.access.clone()),
            (Some(_), None) => self.start_refresh(),
        }
    }

    /// The refresh `ticket` ended at `now_ms`; whether it counted. An answer
    /// of a refresh that no longer counts (a login or logout since) changes
    /// nothing (the driver keeps nothing of it either, not its user).
    pub fn refreshed(&mut self, now_ms: u64, ticket: u64, outcome: Refreshed) -> bool {
        if self.refreshing != Some(ticket) {
            return false;
        }
        self.refreshing = None;
        match outcome {
            Refreshed::Tokens(issued) => self.hold(now_ms, issued),
            Refreshed::Revoked => {
                if self.held.take().is_some() {
                    self.ended = true;
                }
            }
            Refreshed::Failed => {}
        }
        true
    }

    /// Whether the session ended by a refused refresh since the last call
    /// (the driver says "logged out" to the app once).
    pub fn take_ended(&mut self) -> bool {
        std::mem::take(&mut self.ended)
    }

    /// Logging out: the refresh token to revoke at the relay, and no session
    /// from now on (a refresh in flight no longer counts).
    pub fn logout(&mut self) -> Option<Zeroizing<String>> {
        self.refreshing = None;
        self.tickets = self.tickets.wrapping_add(1);
        self.held.take().map(|h| h.refresh)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn issued(access: &str, refresh: &str, expires_in_s: u64) -> Issued {
        Issued {
            access: Zeroizing::new(access.into()),
            refresh: Zeroizing::new(refresh.into()),
            expires_in_s,
        }
    }

    fn token(a: Access) -> String {
        match a {
            Access::Use(t) => t.to_string(),
            other => panic!("expected a token, got {other:?}"),
        }
    }

    fn refresh(a: Access) -> (u64, String) {
        match a {
            Access::Refresh { ticket, refresh } => (ticket, refresh.to_string()),
            other => panic!("expected a refresh, got {other:?}"),
        }
    }

    #[test]
    fn a_token_is_refreshed_ahead_of_expiry_once_whoever_asks() {
        let mut auth = Tokens::new();
        assert_eq!(auth.access(0), Access::LoggedOut);
        auth.logged_in(1_000, issued("a1", "r1", 900));
        // Due 30 s before its 900 s expire.
        assert_eq!(auth.deadline(), Some(1_000 + 870_000));
        assert_eq!(token(auth.access(870_999)), "a1");
        let (ticket, rt) = refresh(auth.access(871_000));
        assert_eq!(rt, "r1");
        // Everyone else waits for that one refresh: never a second spend of r1.
        assert_eq!(auth.access(871_001), Access::Join);
        assert_eq!(auth.rejected("a1"), Access::Join);
        assert_eq!(auth.force(), Access::Join);
        assert!(auth.refreshed(872_000, ticket, Refreshed::Tokens(issued("a2", "r2", 900))));
        assert_eq!(token(auth.access(872_001)), "a2");
        assert_eq!(auth.deadline(), Some(872_000 + 870_000));
        // A late answer under the same ticket changes nothing.
        assert!(!auth.refreshed(873_000, ticket, Refreshed::Revoked));
        assert!(auth.is_logged_in());
        assert!(!auth.take_ended());
    }

    #[test]
    fn a_short_token_lives_half_its_life_before_a_refresh() {
        assert_eq!(refresh_at_ms(0, 40), 20_000);
        assert_eq!(refresh_at_ms(0, 0), 0);
        assert_eq!(refresh_at_ms(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn a_401_refreshes_only_a_token_still_current() {
        let mut auth = Tokens::new();
        auth.logged_in(0, issued("a1", "r1", 900));
        let (ticket, _) = refresh(auth.rejected("a1"));
        assert!(auth.refreshed(1, ticket, Refreshed::Tokens(issued("a2", "r2", 900))));
        // Another call that carried a1 got its 401 late: a2 is already there.
        assert_eq!(token(auth.rejected("a1")), "a2");
        let (_, rt) = refresh(auth.rejected("a2"));
        assert_eq!(rt, "r2");
    }

    #[test]
    fn a_refused_refresh_ends_the_session_once_and_a_failed_one_keeps_it() {
        let mut auth = Tokens::new();
        auth.logged_in(0, issued("a1", "r1", 900));
        let (ticket, _) = refresh(auth.force());
        assert!(auth.refreshed(1, ticket, Refreshed::Failed));
        assert_eq!(
            token(auth.access(2)),
            "a1",
            "kept: the next call tries again"
        );
        let (ticket, rt) = refresh(auth.force());
        assert_eq!(rt, "r1");
        assert!(auth.refreshed(3, ticket, Refreshed::Revoked));
        assert_eq!(auth.access(4), Access::LoggedOut);
        assert!(auth.take_ended());
        assert!(!auth.take_ended(), "said once");
    }

    #[test]
    fn a_login_or_logout_voids_the_refresh_in_flight() {
        let mut auth = Tokens::new();
        auth.logged_in(0, issued("a1", "r1", 900));
        let (old, _) = refresh(auth.force());
        auth.logged_in(5, issued("b1", "s1", 900));
        // The old session's refresh is refused: the new session stays.
        assert!(!auth.refreshed(6, old, Refreshed::Revoked));
        assert_eq!(token(auth.access(7)), "b1");
        assert!(!auth.take_ended());
        let (late, _) = refresh(auth.force());
        assert_eq!(auth.logout().map(|r| r.to_string()), Some("s1".into()));
        assert_eq!(auth.access(8), Access::LoggedOut);
        // The refresh in flight at the logout answers with tokens: not kept.
        assert!(!auth.refreshed(9, late, Refreshed::Tokens(issued("c1", "t1", 900))));
        assert_eq!(auth.access(10), Access::LoggedOut);
        assert!(auth.logout().is_none());
    }
}
