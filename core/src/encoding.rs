//! Byte encodings shared by every format: base64url (no padding) and the
//! length-prefixed big-endian binary reader/writer used by envelopes and backups.

use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DecodeError;

/// Encodes bytes as base64url without padding (RFC 4648 §5), in constant time.
pub fn b64_encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decodes base64url without padding; padding, the standard alphabet and
/// non-canonical trailing bits are rejected.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    Base64UrlUnpadded::decode_vec(text).map_err(|_| DecodeError::Base64)
}

/// Public binary data carried as a base64url (no padding) string in JSON.
///
/// Only for public material (keys, signatures, ciphertext): its `Debug` prints
/// the encoded bytes.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
#[cfg_attr(
    feature = "ts",
    derive(ts_rs::TS),
    ts(rename = "Base64Url", type = "string")
)]
pub struct B64(pub Vec<u8>);

impl B64 {
    /// The raw bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for B64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "B64({})", b64_encode(&self.0))
    }
}

impl From<Vec<u8>> for B64 {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&[u8]> for B64 {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl AsRef<[u8]> for B64 {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64_encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        b64_decode(&text)
            .map(B64)
            .map_err(|_| serde::de::Error::custom("invalid base64url (unpadded) string"))
    }
}

/// OpenAPI: a `string` of base64url without padding (`format` and
/// `contentEncoding` `base64url`), as [`B64`]'s `Serialize` writes it.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for B64 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};

        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("base64url".to_owned())))
            .content_encoding("base64url")
            .pattern(Some("^[A-Za-z0-9_-]*$"))
            .description(Some("base64url without padding (RFC 4648 §5)"))
            .into()
    }
}

/// OpenAPI: the component `B64`, referenced by every binary field.
#[cfg(feature = "openapi")]
impl utoipa::ToSchema for B64 {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("B64")
    }
}

/// Appends big-endian fixed-width fields.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }
    /// A u16 length prefix followed by the bytes.
    pub(crate) fn var16(&mut self, b: &[u8]) -> Result<&mut Self, DecodeError> {
        let len = u16::try_from(b.len()).map_err(|_| DecodeError::TooLarge)?;
        Ok(self.u16(len).bytes(b))
    }
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf
    }
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads big-endian fixed-width fields; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            consumed: 0,
        }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        self.consumed += n;
        Ok(head)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(crate) fn uuid(&mut self) -> Result<uuid::Uuid, DecodeError> {
        Ok(uuid::Uuid::from_bytes(self.array()?))
    }
    pub(crate) fn var16(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    /// Bytes read so far.
    pub(crate) fn position(&self) -> usize {
        self.consumed
    }
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }
    /// Fails unless every byte has been consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64_decode("-_8"), Ok(vec![0xfb, 0xff]));
        assert_eq!(b64_decode("-_8="), Err(DecodeError::Base64));
        assert_eq!(b64_decode("+/8"), Err(DecodeError::Base64));
        // Non-canonical trailing bits.
        assert_eq!(b64_decode("-_9"), Err(DecodeError::Base64));
    }

    #[test]
    fn reader_bounds() {
        let mut r = Reader::new(&[0, 3, 1, 2]);
        assert_eq!(r.var16(), Err(DecodeError::Truncated));
        let mut r = Reader::new(&[0, 2, 1, 2, 9]);
        assert_eq!(r.var16(), Ok(&[1u8, 2][..]));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes));
    }
}
