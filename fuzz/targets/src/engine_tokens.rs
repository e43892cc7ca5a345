//! The `engine_tokens` target: the session's tokens (`sotto_engine::auth`)
//! against any order of callers and relay answers. See [`engine_tokens`].

use sotto_engine::auth::{Access, Issued, Refreshed, Tokens, refresh_at_ms};
use zeroize::Zeroizing;

/// What the harness expects, kept beside the engine.
#[derive(Default)]
struct Model {
    /// The tokens held: access, refresh, when the access token is due.
    held: Option<(String, String, u64)>,
    /// The refresh in flight: its ticket and the refresh token it presents.
    in_flight: Option<(u64, String)>,
    ended: bool,
    /// Tickets ever handed out.
    tickets: Vec<u64>,
}

/// The session's tokens (`sotto_engine::auth::Tokens`) driven by any order
/// of calls a driver makes: callers asking for the access token at any time,
/// forced refreshes, `401`s for the current or an old token, refresh answers
/// (new tokens with any lifetime, refused, failed) for the refresh in flight,
/// an old one or none, logins, logouts. Two bytes an operation. Checked
/// against a model: at most one refresh in flight, and while it is, every
/// caller joins it; a refresh presents the refresh token held (every token
/// is new, so never one the relay already answered for: single-use, a spent
/// one would revoke the session; a failed refresh may present it again); the access token handed
/// out is the newest, and only before it is due; a `401` for an older token
/// gets the newest without a refresh; an answer counts only for the refresh
/// in flight (a login or logout voids it); a refused refresh ends the
/// session, said once; after a logout nothing is handed out and the refresh
/// token to revoke is the one held.
pub fn engine_tokens(data: &[u8]) {
    let mut t = Tokens::new();
    let mut m = Model::default();
    let mut now: u64 = 0;
    let mut issued: u64 = 0;
    let mut issue = |life: u8| -> (Issued, String, String, u64) {
        issued += 1;
        let (a, r) = (format!("a{issued}"), format!("r{issued}"));
        let life = u64::from(life) * 7;
        let i = Issued {
            access: Zeroizing::new(a.clone()),
            refresh: Zeroizing::new(r.clone()),
            expires_in_s: life,
        };
        (i, a, r, life)
    };
    for op in data.chunks_exact(2).take(64) {
        let (what, b) = (op[0], op[1]);
        let mut rejected_current = false;
        let mut rejected_old = false;
        let got = match what % 8 {
            0 => {
                now += u64::from(b) * 1_000;
                Some(t.access(now))
            }
            1 => Some(t.force()),
            2 => {
                // A 401 for the current access token, or an old one.
                let used = match (&m.held, b & 1) {
                    (Some((a, _, _)), 0) => {
                        rejected_current = true;
                        a.clone()
                    }
                    _ => {
                        rejected_old = true;
                        "a0".to_owned()
                    }
                };
                Some(t.rejected(&used))
            }
            3 => {
                // A refresh answer, for the one in flight or another ticket.
                let ticket = match (&m.in_flight, b & 1) {
                    (Some((ticket, _)), 0) => *ticket,
                    _ => u64::from(b >> 1 & 7),
                };
                let counts = m.in_flight.as_ref().is_some_and(|(k, _)| *k == ticket);
                let (outcome, fresh) = match b >> 4 & 3 {
                    0 | 3 => {
                        let (i, a, r, life) = issue(b);
                        (Refreshed::Tokens(i), Some((a, r, life)))
                    }
                    1 => (Refreshed::Revoked, None),
                    _ => (Refreshed::Failed, None),
                };
                let revoked = matches!(outcome, Refreshed::Revoked);
                assert_eq!(
                    t.refreshed(now, ticket, outcome),
                    counts,
                    "an answer counts only for the refresh in flight"
                );
                if counts {
                    m.in_flight = None;
                    if let Some((a, r, life)) = fresh {
                        m.held = Some((a, r, refresh_at_ms(now, life)));
                    } else if revoked && m.held.take().is_some() {
                        m.ended = true;
                    }
                }
                None
            }
            4 => {
                let (i, a, r, life) = issue(b);
                t.logged_in(now, i);
                m.held = Some((a, r, refresh_at_ms(now, life)));
                m.in_flight = None;
                m.ended = false;
                None
            }
            5 => {
                let out = t.logout().map(|r| r.to_string());
                assert_eq!(
                    out,
                    m.held.take().map(|(_, r, _)| r),
                    "the refresh token to revoke is the one held"
                );
                m.in_flight = None;
                None
            }
            6 => {
                assert_eq!(
                    t.take_ended(),
                    std::mem::take(&mut m.ended),
                    "ended, said once"
                );
                None
            }
            _ => {
                assert_eq!(t.deadline(), m.held.as_ref().map(|(_, _, at)| *at));
                assert_eq!(t.is_logged_in(), m.held.is_some());
                None
            }
        };
        let Some(access) = got else { continue };
        if rejected_old && m.held.is_some() && m.in_flight.is_none() {
            assert!(
                matches!(access, Access::Use(_)),
                "a 401 for an old token refreshes: {access:?}"
            );
        }
        let forced = what % 8 != 0;
        match access {
            Access::LoggedOut => assert!(m.held.is_none(), "logged out while holding tokens"),
            Access::Join => assert!(m.in_flight.is_some(), "joined no refresh"),
            Access::Use(token) => {
                assert!(
                    m.in_flight.is_none(),
                    "a token while a refresh is in flight"
                );
                let (a, _, at) = m.held.as_ref().expect("a token while logged out");
                assert_eq!(token.as_str(), a, "the newest access token");
                assert!(what % 8 == 2 || now < *at, "a token handed out when due");
                assert!(
                    what % 8 != 1 && !rejected_current,
                    "a forced refresh or a 401 hands out the token it should replace"
                );
            }
            Access::Refresh { ticket, refresh } => {
                assert!(m.in_flight.is_none(), "a second refresh in flight");
                let (_, r, at) = m.held.as_ref().expect("a refresh while logged out");
                assert_eq!(refresh.as_str(), r, "presents the refresh token held");
                assert!(forced || now >= *at, "a refresh before it is due");
                assert!(!m.tickets.contains(&ticket), "a ticket handed out twice");
                m.tickets.push(ticket);
                m.in_flight = Some((ticket, r.clone()));
            }
        }
    }
}
