//! What a message says, inside the envelope: the plaintext is this JSON, so the
//! relay sees neither the kind of message nor a file's name, size or key.
//!
//! ```json
//! {"type":"text","body":"hello"}
//! {"type":"file","file":{"id":"…","key":"…","sha256":"…","size":5,"encrypted_size":30,"chunk_size":65536,"name":"a.txt"}}
//! {"type":"membership","statement":"<base64url>"}
//! ```
//! Unknown `type`s decode as [`Content::Unknown`] so an older client shows
//! "unsupported message" instead of failing. `membership` messages are control
//! messages (`docs/protocol.md` §12.4): [`Plaintext::decode`] tells them apart,
//! and apps never see them as [`Content`].

use serde::{Deserialize, Serialize};
use sotto_core::attachment::AttachmentPointer;
use sotto_core::encoding::B64;

/// The content of a message, as apps see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "PlaintextContent"))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Content {
    /// A text message.
    Text {
        /// The text.
        body: String,
    },
    /// A file: where its encrypted blob is and the key to open it.
    File {
        /// The pointer (id, key, digest, sizes, name, media type). Secret: holds the key.
        file: AttachmentPointer,
    },
    /// A kind of message this version does not know.
    #[serde(other)]
    Unknown,
}

impl Content {
    /// A text message.
    pub fn text(body: impl Into<String>) -> Self {
        Self::Text { body: body.into() }
    }

    /// The text to show in a one-line preview.
    pub fn preview(&self) -> String {
        match self {
            Self::Text { body } => body.clone(),
            Self::File { file } => format!(
                "[file {} ({} bytes)]",
                file.name.as_deref().unwrap_or("unnamed"),
                file.size
            ),
            Self::Unknown => "[unsupported message]".into(),
        }
    }

    /// The plaintext to seal.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The content of an opened plaintext that is not a control message
    /// ([`Content::Unknown`] for anything unreadable).
    pub fn decode(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or(Self::Unknown)
    }
}

/// The control messages of the protocol, which apps do not see.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    Membership { statement: B64 },
}

/// An opened plaintext: what an app sees, or a control message for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plaintext {
    /// A message for the app.
    Content(Content),
    /// A signed membership statement (its bytes, not yet parsed or verified).
    Membership(Vec<u8>),
}

impl Plaintext {
    /// Tells control messages from content.
    pub fn decode(bytes: &[u8]) -> Self {
        match serde_json::from_slice::<Control>(bytes) {
            Ok(Control::Membership { statement }) => Self::Membership(statement.into_inner()),
            Err(_) => Self::Content(Content::decode(bytes)),
        }
    }

    /// The plaintext of a membership message carrying `statement`'s bytes.
    pub fn membership(statement: &[u8]) -> Vec<u8> {
        serde_json::to_vec(&Control::Membership {
            statement: B64(statement.to_vec()),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_unknown_kinds_decode() {
        let c = Content::text("hi");
        assert_eq!(
            String::from_utf8(c.encode()).unwrap(),
            r#"{"type":"text","body":"hi"}"#
        );
        assert_eq!(Content::decode(&c.encode()), c);
        assert_eq!(
            Content::decode(br#"{"type":"poll","q":"?"}"#),
            Content::Unknown
        );
        assert_eq!(Content::decode(b"not json"), Content::Unknown);
    }

    #[test]
    fn membership_messages_are_control_messages() {
        let p = Plaintext::membership(&[1, 2, 3]);
        assert_eq!(
            String::from_utf8(p.clone()).unwrap(),
            r#"{"type":"membership","statement":"AQID"}"#
        );
        assert_eq!(Plaintext::decode(&p), Plaintext::Membership(vec![1, 2, 3]));
        assert_eq!(
            Plaintext::decode(&Content::text("x").encode()),
            Plaintext::Content(Content::text("x"))
        );
        // A malformed control message is not content either way: unknown.
        assert_eq!(
            Plaintext::decode(br#"{"type":"membership","statement":"!!"}"#),
            Plaintext::Content(Content::Unknown)
        );
    }
}
