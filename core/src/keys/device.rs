use core::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use rand_core::CryptoRng;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::error::{DecodeError, KeyError};

/// Accepted RSA modulus sizes for the `rsa` suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RsaBits {
    /// 2048-bit modulus (accepted for compatibility).
    Rsa2048,
    /// 3072-bit modulus (the default).
    #[default]
    Rsa3072,
    /// 4096-bit modulus.
    Rsa4096,
}

impl RsaBits {
    /// Modulus size in bits.
    pub fn bits(self) -> usize {
        match self {
            RsaBits::Rsa2048 => 2048,
            RsaBits::Rsa3072 => 3072,
            RsaBits::Rsa4096 => 4096,
        }
    }

    /// The accepted size with this many bits, if any.
    pub fn from_bits(bits: usize) -> Option<Self> {
        match bits {
            2048 => Some(RsaBits::Rsa2048),
            3072 => Some(RsaBits::Rsa3072),
            4096 => Some(RsaBits::Rsa4096),
            _ => None,
        }
    }
}

/// Options for [`DeviceKeys::generate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceKeyOptions {
    /// Also generate an RSA key (for the `rsa` suite) of this size.
    pub rsa: Option<RsaBits>,
}

/// A device's secret keys: Ed25519 signing, X25519 and optional RSA.
///
/// Zeroized on drop; `Debug` shows public halves only.
pub struct DeviceKeys {
    pub(crate) signing: SigningKey,
    pub(crate) x25519: StaticSecret,
    pub(crate) rsa: Option<Box<RsaPrivateKey>>,
}

impl DeviceKeys {
    /// Generates fresh device keys from the operating system's CSPRNG.
    pub fn generate(options: DeviceKeyOptions) -> Result<Self, KeyError> {
        let mut rng = crate::rng::system().map_err(|_| KeyError::Rng)?;
        Self::generate_with_rng(&mut rng, options)
    }

    pub(crate) fn generate_with_rng(
        rng: &mut impl CryptoRng,
        options: DeviceKeyOptions,
    ) -> Result<Self, KeyError> {
        let signing = SigningKey::from_bytes(&Zeroizing::new(crate::rng::array::<32>(rng)));
        let x25519 = StaticSecret::random_from_rng(rng);
        let rsa = match options.rsa {
            Some(bits) => Some(Box::new(
                RsaPrivateKey::new(rng, bits.bits()).map_err(|_| KeyError::RsaGeneration)?,
            )),
            None => None,
        };
        Ok(Self {
            signing,
            x25519,
            rsa,
        })
    }

    /// Rebuilds device keys from their secret encodings: the Ed25519 seed, the
    /// X25519 scalar and, if present, the RSA private key as PKCS#8 DER.
    pub fn from_secret_parts(
        signing_seed: &[u8; 32],
        x25519_secret: &[u8; 32],
        rsa_pkcs8_der: Option<&[u8]>,
    ) -> Result<Self, KeyError> {
        let rsa = match rsa_pkcs8_der {
            Some(der) => {
                let key = RsaPrivateKey::from_pkcs8_der(der)
                    .map_err(|_| DecodeError::InvalidKey("RSA private key is not valid PKCS#8"))?;
                check_rsa_public(key.as_public_key())?;
                Some(Box::new(key))
            }
            None => None,
        };
        Ok(Self {
            signing: SigningKey::from_bytes(signing_seed),
            x25519: StaticSecret::from(*x25519_secret),
            rsa,
        })
    }

    /// The Ed25519 signing seed. Zeroized on drop.
    pub fn signing_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The X25519 secret scalar. Zeroized on drop.
    pub fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.x25519.to_bytes())
    }

    /// The RSA private key as PKCS#8 DER, if the device has one. Zeroized on drop.
    pub fn rsa_pkcs8_der(&self) -> Result<Option<Zeroizing<Vec<u8>>>, KeyError> {
        match &self.rsa {
            Some(key) => {
                let doc = key
                    .to_pkcs8_der()
                    .map_err(|_| DecodeError::InvalidKey("RSA private key does not encode"))?;
                Ok(Some(Zeroizing::new(doc.as_bytes().to_vec())))
            }
            None => Ok(None),
        }
    }

    /// The public Ed25519 signing key (32 raw bytes).
    pub fn signing_public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public X25519 key (32 raw bytes).
    pub fn x25519_public(&self) -> [u8; 32] {
        XPublic::from(&self.x25519).to_bytes()
    }

    /// The public RSA key as SPKI DER, if the device has one.
    pub fn rsa_public_der(&self) -> Result<Option<Vec<u8>>, KeyError> {
        match &self.rsa {
            Some(key) => Ok(Some(rsa_spki_der(key.as_public_key())?)),
            None => Ok(None),
        }
    }

    /// The public RSA key as SPKI PEM, if the device has one.
    pub fn rsa_public_pem(&self) -> Result<Option<String>, KeyError> {
        match &self.rsa {
            Some(key) => key
                .as_public_key()
                .to_public_key_pem(LineEnding::LF)
                .map(Some)
                .map_err(|_| DecodeError::InvalidKey("RSA public key does not encode").into()),
            None => Ok(None),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field(
                "signing_public",
                &crate::encoding::b64_encode(&self.signing_public()),
            )
            .field(
                "x25519_public",
                &crate::encoding::b64_encode(&self.x25519_public()),
            )
            .field("rsa_bits", &self.rsa.as_ref().map(|k| k.size() * 8))
            .field("secrets", &"[redacted]")
            .finish()
    }
}

pub(crate) fn rsa_spki_der(key: &RsaPublicKey) -> Result<Vec<u8>, KeyError> {
    key.to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .map_err(|_| DecodeError::InvalidKey("RSA public key does not encode").into())
}

/// Accepts only 2048/3072/4096-bit moduli with public exponent 65537.
pub(crate) fn check_rsa_public(key: &RsaPublicKey) -> Result<(), DecodeError> {
    if RsaBits::from_bits(key.n().bits() as usize).is_none() {
        return Err(DecodeError::InvalidKey(
            "RSA modulus must be 2048, 3072 or 4096 bits",
        ));
    }
    let e = key.e().to_be_bytes();
    let trimmed: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
    if trimmed != [0x01, 0x00, 0x01] {
        return Err(DecodeError::InvalidKey("RSA public exponent must be 65537"));
    }
    Ok(())
}
