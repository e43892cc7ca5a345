//! The outbox's decisions, once for both clients: single-flight posting of a
//! sealed message (one post of an entry at a time, whoever asks), and what
//! each answer of the relay means for the entry (sent, refused for good,
//! worth an HTTP post now or after a wait, or kept for the next connection).
//!
//! The driver keeps the entries in its store (pushed before the first post,
//! removed when the verdict says so), does the posting (socket `send` and its
//! `ack`, HTTP `POST …/messages`), and reports what it saw. A store failure
//! after the relay stored the message does not make it unsent: the driver
//! returns the `Sent` and reports the store failure; the entry then goes out
//! again on the next connection under the same client id, and the relay
//! answers with the first result.

use sotto_core::api::codes;
use uuid::Uuid;

use crate::ids::IdSet;

/// What the socket said to a `send` of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketAnswer<'a> {
    /// `ack`: the relay stored it.
    Ack {
        /// The relay's message id.
        id: Uuid,
        /// Its place in the room.
        seq: u64,
    },
    /// An `error` frame naming the entry's client id.
    Refused {
        /// The problem code.
        code: &'a str,
        /// The wait the relay asks for (`rate_limited` is retried after it;
        /// `quota_exceeded` is final).
        retry_after_ms: Option<u64>,
    },
    /// No socket, or no answer within [`crate::policy::ACK_TIMEOUT_MS`].
    NoAck,
}

/// What HTTP said to a post of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAnswer {
    /// The relay stored it (or had stored it under this client id).
    Stored {
        /// The relay's message id.
        id: Uuid,
        /// Its place in the room.
        seq: u64,
    },
    /// A problem answer with this status (after the transport's own retries).
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// The relay could not be reached (network error, timeout).
    Unreachable,
}

/// What to do with the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The relay stored it: remove the entry, then [`Outbox::finish`]. With
    /// `announce` (an app message, not a control message) emit `Sent` and
    /// keep it in history.
    Sent {
        /// The relay's message id.
        id: Uuid,
        /// Its place in the room.
        seq: u64,
        /// Whether the app hears of it.
        announce: bool,
    },
    /// Refused for good (posting it again cannot pass): remove the entry,
    /// [`Outbox::finish`], and give the caller the refusal.
    Refused,
    /// Post it over HTTP (same client id) after this many milliseconds.
    PostOverHttp {
        /// The wait first (a rate limit's `retry_after_ms`; 0: now).
        after_ms: u64,
    },
    /// Keep the entry: it goes out on the next connection (the caller hears
    /// `queued`). The post has ended.
    Queued,
}

/// The longest wait a socket refusal can ask before the HTTP post; a longer
/// one keeps the entry for the next connection instead.
pub const MAX_RETRY_AFTER_MS: u64 = 60_000;

/// Whether an HTTP refusal with this status is final: a client error other
/// than 401 (the session refreshes), 408 and 429 (worth another try).
#[must_use]
pub fn final_http_refusal(status: u16) -> bool {
    (400..500).contains(&status) && ![401, 408, 429].contains(&status)
}

/// The posts in flight and the control messages among them (see the module
/// docs).
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    posting: IdSet,
    control: IdSet,
}

impl Outbox {
    /// No post in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `client_id` as a control message (a membership statement): no
    /// `Sent`, not in history), for the post in flight or about to start.
    pub fn control(&mut self, client_id: Uuid) {
        self.control.insert(client_id);
    }

    /// Starts a post of the entry `client_id`: `true` if this caller posts it,
    /// `false` if a post of it is already in flight (wait for that one; do not
    /// post it again).
    pub fn begin(&mut self, client_id: Uuid) -> bool {
        self.posting.insert(client_id)
    }

    /// Whether a post of `client_id` is in flight.
    pub fn is_posting(&self, client_id: Uuid) -> bool {
        self.posting.contains(&client_id)
    }

    fn end(&mut self, client_id: Uuid) -> bool {
        self.posting.retain_not([client_id]);
        let control = self.control.contains(&client_id);
        self.control.retain_not([client_id]);
        control
    }

    /// The socket answered a `send` of `client_id`. A `Sent` or `Refused`
    /// keeps the post in flight until [`Outbox::finish`] (after the driver
    /// removed the entry from its store), so no one posts it again meanwhile.
    pub fn socket(&mut self, client_id: Uuid, answer: SocketAnswer<'_>) -> Verdict {
        match answer {
            SocketAnswer::Ack { id, seq } => self.sent(client_id, id, seq),
            SocketAnswer::Refused {
                code,
                retry_after_ms,
            } => {
                if !crate::policy::transient_refusal(code) {
                    return Verdict::Refused;
                }
                match retry_after_ms {
                    Some(ms) if code == codes::RATE_LIMITED && ms > MAX_RETRY_AFTER_MS => {
                        self.end(client_id);
                        Verdict::Queued
                    }
                    Some(ms) if code == codes::RATE_LIMITED => {
                        Verdict::PostOverHttp { after_ms: ms }
                    }
                    _ => Verdict::PostOverHttp { after_ms: 0 },
                }
            }
            SocketAnswer::NoAck => Verdict::PostOverHttp { after_ms: 0 },
        }
    }

    /// HTTP answered a post of `client_id` (`Sent` and `Refused` as for
    /// [`Outbox::socket`]).
    pub fn http(&mut self, client_id: Uuid, answer: HttpAnswer) -> Verdict {
        match answer {
            HttpAnswer::Stored { id, seq } => self.sent(client_id, id, seq),
            HttpAnswer::Refused { status } if final_http_refusal(status) => Verdict::Refused,
            HttpAnswer::Refused { .. } | HttpAnswer::Unreachable => {
                self.end(client_id);
                Verdict::Queued
            }
        }
    }

    /// The driver acted on a `Sent` or `Refused` (the entry left its store):
    /// the post has ended.
    pub fn finish(&mut self, client_id: Uuid) {
        self.end(client_id);
    }

    /// The driver stopped a post of `client_id` without an answer (the
    /// session closed, the store failed, the caller went away): it stays in
    /// the store's outbox.
    pub fn abandon(&mut self, client_id: Uuid) {
        self.end(client_id);
    }

    fn sent(&mut self, client_id: Uuid, id: Uuid, seq: u64) -> Verdict {
        Verdict::Sent {
            id,
            seq,
            announce: !self.control.contains(&client_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(1);
    const ID: Uuid = Uuid::from_u128(9);

    #[test]
    fn one_post_at_a_time_per_entry() {
        let mut o = Outbox::new();
        assert!(o.begin(A));
        assert!(!o.begin(A), "a second post joins the first");
        assert!(o.is_posting(A));
        assert_eq!(
            o.socket(A, SocketAnswer::Ack { id: ID, seq: 4 }),
            Verdict::Sent {
                id: ID,
                seq: 4,
                announce: true
            }
        );
        assert!(o.is_posting(A), "until the driver removed the entry");
        o.finish(A);
        assert!(!o.is_posting(A));
        assert!(o.begin(A), "after it ended, it may be posted again");
        o.abandon(A);
        assert!(!o.is_posting(A));
    }

    #[test]
    fn control_messages_are_not_announced() {
        let mut o = Outbox::new();
        o.control(A);
        assert!(o.begin(A));
        assert_eq!(
            o.http(A, HttpAnswer::Stored { id: ID, seq: 1 }),
            Verdict::Sent {
                id: ID,
                seq: 1,
                announce: false
            }
        );
        o.finish(A);
        assert!(o.begin(A));
        assert_eq!(
            o.http(A, HttpAnswer::Stored { id: ID, seq: 1 }),
            Verdict::Sent {
                id: ID,
                seq: 1,
                announce: true
            },
            "the mark goes with the post"
        );
    }

    #[test]
    fn socket_refusals_and_silence() {
        let mut o = Outbox::new();
        o.begin(A);
        let refused = |code, retry_after_ms| SocketAnswer::Refused {
            code,
            retry_after_ms,
        };
        assert_eq!(o.socket(A, refused("not_a_member", None)), Verdict::Refused);
        assert_eq!(
            o.socket(A, refused("quota_exceeded", Some(5))),
            Verdict::Refused
        );
        o.finish(A);
        assert!(!o.is_posting(A));
        o.begin(A);
        assert_eq!(
            o.socket(A, refused("rate_limited", Some(1500))),
            Verdict::PostOverHttp { after_ms: 1500 }
        );
        assert!(o.is_posting(A), "still this caller's post");
        assert_eq!(
            o.socket(A, refused("unavailable", None)),
            Verdict::PostOverHttp { after_ms: 0 }
        );
        assert_eq!(
            o.socket(A, SocketAnswer::NoAck),
            Verdict::PostOverHttp { after_ms: 0 }
        );
        assert_eq!(
            o.socket(A, refused("rate_limited", Some(MAX_RETRY_AFTER_MS + 1))),
            Verdict::Queued
        );
        assert!(!o.is_posting(A));
    }

    #[test]
    fn http_answers() {
        let mut o = Outbox::new();
        for (status, verdict) in [
            (403, Verdict::Refused),
            (404, Verdict::Refused),
            (413, Verdict::Refused),
            (401, Verdict::Queued),
            (408, Verdict::Queued),
            (429, Verdict::Queued),
            (500, Verdict::Queued),
            (503, Verdict::Queued),
        ] {
            o.begin(A);
            assert_eq!(
                o.http(A, HttpAnswer::Refused { status }),
                verdict,
                "{status}"
            );
            assert_eq!(o.is_posting(A), verdict == Verdict::Refused, "{status}");
            o.finish(A);
        }
        o.begin(A);
        assert_eq!(o.http(A, HttpAnswer::Unreachable), Verdict::Queued);
    }
}
