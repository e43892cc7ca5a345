use rand_core::CryptoRng;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::padding::{pad, unpad};
use super::{
    CONTENT_AAD_PREFIX, Envelope, Header, Limits, MAX_PLAINTEXT, MAX_RECIPIENTS, RecipientEntry,
    SIGNATURE_CONTEXT,
};
use crate::error::{OpenError, SealError};
use crate::keys::{DeviceKeys, VerifiedDevice};
use crate::primitives::{self, AES_KEY_LEN, AES_NONCE_LEN};
use crate::suite::{self, Suite, wrap_context};

/// One recipient device and the suite to wrap its key with.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    device: &'a VerifiedDevice,
    suite: Suite,
}

impl<'a> Recipient<'a> {
    /// Wrap for `device` with the default `x25519` suite.
    pub fn x25519(device: &'a VerifiedDevice) -> Self {
        Self {
            device,
            suite: Suite::X25519,
        }
    }
    /// Wrap for `device` with the `rsa` suite (the device must have an RSA key).
    pub fn rsa(device: &'a VerifiedDevice) -> Self {
        Self {
            device,
            suite: Suite::Rsa,
        }
    }
    /// Wrap for `device` with `suite`.
    pub fn new(device: &'a VerifiedDevice, suite: Suite) -> Self {
        Self { device, suite }
    }
}

/// Encrypts `plaintext` for every recipient device and signs the result with the
/// sender device's key. `header` carries the room, the sender's ids, a fresh
/// client message id and the sender's timestamp.
///
/// Costs one content encryption and one wrap per recipient device.
pub fn seal(
    plaintext: &[u8],
    header: &Header,
    recipients: &[Recipient<'_>],
    sender: &DeviceKeys,
) -> Result<Envelope, SealError> {
    let mut rng = crate::rng::system().map_err(|_| SealError::Rng)?;
    seal_with_rng(&mut rng, plaintext, header, recipients, sender)
}

/// [`seal`] with injected randomness, for deterministic test vectors only.
///
/// Randomness is drawn in this order: content key (32 bytes), nonce (12 bytes),
/// then per recipient in device-id order: the HPKE ephemeral IKM (32 bytes) for
/// `x25519`, or the OAEP seed (32 bytes) for `rsa`.
pub(crate) fn seal_with_rng(
    rng: &mut impl CryptoRng,
    plaintext: &[u8],
    header: &Header,
    recipients: &[Recipient<'_>],
    sender: &DeviceKeys,
) -> Result<Envelope, SealError> {
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(SealError::RecipientCount);
    }
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(SealError::PlaintextTooLarge);
    }
    let mut ordered: Vec<&Recipient<'_>> = recipients.iter().collect();
    ordered.sort_by_key(|r| r.device.device_id());
    if ordered
        .windows(2)
        .any(|w| matches!(w, [a, b] if a.device.device_id() == b.device.device_id()))
    {
        return Err(SealError::DuplicateRecipient);
    }

    let content_key = Zeroizing::new(crate::rng::array::<AES_KEY_LEN>(rng));
    let nonce = crate::rng::array::<AES_NONCE_LEN>(rng);
    let header_bytes = header.to_bytes();

    let mut entries = Vec::with_capacity(ordered.len());
    for r in ordered {
        let device_id = r.device.device_id();
        let wrapped_key = match r.suite {
            Suite::X25519 => {
                let info = wrap_context(suite::x25519::INFO_PREFIX, &header_bytes, &device_id);
                suite::x25519::wrap(rng, r.device.x25519_key(), &info, &content_key)
            }
            Suite::Rsa => {
                let key = r.device.rsa_key().ok_or(SealError::NoRsaKey)?;
                let label = wrap_context(suite::rsa::LABEL_PREFIX, &header_bytes, &device_id);
                suite::rsa::wrap(rng, key, &label, &content_key)
            }
        }
        .map_err(|_| SealError::Crypto)?;
        entries.push(RecipientEntry {
            device_id,
            suite: r.suite,
            wrapped_key,
        });
    }

    let padded = pad(plaintext);
    let aad = [CONTENT_AAD_PREFIX, &header_bytes].concat();
    let ciphertext = primitives::aes256gcm_encrypt(&content_key, &nonce, &aad, &padded)
        .map_err(|_| SealError::Crypto)?;

    let mut envelope = Envelope {
        header: *header,
        recipients: entries,
        nonce,
        ciphertext,
        signature: [0u8; 64],
    };
    let signed = [SIGNATURE_CONTEXT, envelope.unsigned_bytes().as_slice()].concat();
    envelope.signature = sender.sign(&signed);
    Ok(envelope)
}

/// Where a message arrived from, as the caller knows it (not as the message claims).
#[derive(Debug, Clone, Copy)]
pub struct OpenContext<'a> {
    /// The room the message was delivered in.
    pub room_id: Uuid,
    /// The sender device the caller trusts (its bundle verified, identity pinned).
    /// Its user and device ids are the sender the message must name.
    pub sender: &'a VerifiedDevice,
}

/// A successfully opened message.
pub struct Opened {
    /// The authenticated header; `header.client_message_id` is the replay id.
    pub header: Header,
    /// The plaintext, zeroized on drop.
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl Opened {
    /// The sender-unique message id; callers drop a second message with the
    /// same `(sender_user_id, replay_id)`.
    pub fn replay_id(&self) -> Uuid {
        self.header.client_message_id
    }
}

impl core::fmt::Debug for Opened {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Opened")
            .field("header", &self.header)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

/// Authenticates and decrypts an encoded envelope for this device.
///
/// Checks, in order: strict parse and limits → version and suites → signature
/// under `context.sender` → own recipient entry → unwrap → decrypt and unpad →
/// header names `context.room_id` and `context.sender`. No plaintext is
/// returned unless every check passes.
pub fn open(
    envelope: &[u8],
    own_device_id: Uuid,
    own_keys: &DeviceKeys,
    context: &OpenContext<'_>,
) -> Result<Opened, OpenError> {
    Envelope::from_bytes_with_limits(envelope, &Limits::default())?.open(
        own_device_id,
        own_keys,
        context,
    )
}

impl Envelope {
    /// [`open`] for an envelope already parsed (by [`Envelope::from_bytes`]):
    /// the same checks after the parse, in the same order, without parsing
    /// again (a client that peeked at the recipients first). The value must
    /// come unmodified from the strict parser: the parse's own checks
    /// (recipient order and uniqueness, lengths, limits) are not made again.
    pub fn open(
        self,
        own_device_id: Uuid,
        own_keys: &DeviceKeys,
        context: &OpenContext<'_>,
    ) -> Result<Opened, OpenError> {
        open_parsed(self, own_device_id, own_keys, context)
    }
}

fn open_parsed(
    env: Envelope,
    own_device_id: Uuid,
    own_keys: &DeviceKeys,
    context: &OpenContext<'_>,
) -> Result<Opened, OpenError> {
    let signed = [SIGNATURE_CONTEXT, env.unsigned_bytes().as_slice()].concat();
    primitives::ed25519_verify(context.sender.signing_key(), &signed, &env.signature)
        .map_err(|_| OpenError::BadSignature)?;

    let entry = env
        .recipients
        .iter()
        .find(|e| e.device_id == own_device_id)
        .ok_or(OpenError::NotARecipient)?;

    let header_bytes = env.header.to_bytes();
    let content_key = match entry.suite {
        Suite::X25519 => {
            let info = wrap_context(suite::x25519::INFO_PREFIX, &header_bytes, &own_device_id);
            suite::x25519::unwrap(&own_keys.x25519_secret(), &info, &entry.wrapped_key)
        }
        Suite::Rsa => {
            let key = own_keys.rsa.as_deref().ok_or(OpenError::DecryptionFailed)?;
            let label = wrap_context(suite::rsa::LABEL_PREFIX, &header_bytes, &own_device_id);
            suite::rsa::unwrap(key, &label, &entry.wrapped_key)
        }
    }
    .map_err(|_| OpenError::DecryptionFailed)?;

    let aad = [CONTENT_AAD_PREFIX, &header_bytes].concat();
    let mut plaintext =
        primitives::aes256gcm_decrypt(&content_key, &env.nonce, &aad, &env.ciphertext)
            .map_err(|_| OpenError::DecryptionFailed)?;
    unpad(&mut plaintext).ok_or(OpenError::DecryptionFailed)?;

    let h = &env.header;
    if h.room_id != context.room_id
        || h.sender_user_id != context.sender.user_id()
        || h.sender_device_id != context.sender.device_id()
    {
        return Err(OpenError::ContextMismatch);
    }
    Ok(Opened {
        header: env.header,
        plaintext,
    })
}

impl Envelope {
    /// Checks the sender device's signature over the whole envelope without
    /// opening it: what a party holding no decryption key (the relay) can check.
    ///
    /// Fails with [`OpenError::ContextMismatch`] when the header names another
    /// user or device than `sender`, and [`OpenError::BadSignature`] when the
    /// signature does not verify under `sender`'s signing key.
    pub fn verify_signature(&self, sender: &VerifiedDevice) -> Result<(), OpenError> {
        if self.header.sender_user_id != sender.user_id()
            || self.header.sender_device_id != sender.device_id()
        {
            return Err(OpenError::ContextMismatch);
        }
        let signed = [SIGNATURE_CONTEXT, self.unsigned_bytes().as_slice()].concat();
        primitives::ed25519_verify(sender.signing_key(), &signed, &self.signature)
            .map_err(|_| OpenError::BadSignature)
    }
}
