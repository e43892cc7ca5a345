//! What a message says, inside the envelope: the plaintext is this JSON, so the
//! relay sees neither the kind of message nor a file's name, size or key.
//!
//! ```json
//! {"type":"text","body":"hello"}
//! {"type":"file","file":{"id":"…","key":"…","sha256":"…","size":5,"encrypted_size":30,"chunk_size":65536,"name":"a.txt"}}
//! ```
//! Unknown `type`s decode as [`Content::Unknown`] so an older client shows "unsupported
//! message" instead of failing.

use serde::{Deserialize, Serialize};
use sotto_core::attachment::AttachmentPointer;

/// The content of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or(Self::Unknown)
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
}
