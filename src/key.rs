//! Private keys: read PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys, and derive the public key
//! that must match the certificate's. Nothing here ever formats a key's secret bytes.

use pkcs8::ObjectIdentifier;
use pkcs8::der::Decode;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_SECP256K1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");

/// Why a key cannot be used: its bytes are damaged, or nginx's OpenSSL or browsers would
/// refuse it. The text completes "the private key in FILE is ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The DER does not parse as the encoding its label or place says.
    #[error("a damaged {encoding} key ({why})")]
    Damaged {
        /// "PKCS#8", "RSA" or "EC".
        encoding: &'static str,
        /// The parser's reason.
        why: String,
    },
    /// A certificate's RSA public key does not parse.
    #[error("bad RSA public key: {0}")]
    BadRsaPublicKey(String),
    /// An RSA key below [`MIN_RSA_BITS`].
    #[error("an RSA {0}-bit key, too short for nginx's OpenSSL (at least {MIN_RSA_BITS} bits)")]
    RsaTooShort(usize),
    /// A private EC key that names no curve (nor does the PKCS#8 wrapper around it).
    #[error("an EC key without a named curve")]
    NoNamedCurve,
    /// A certificate's EC public key that names no curve.
    #[error("an EC public key without a named curve")]
    NoNamedCurveInCertificate,
    /// A certificate's EC point that is not on its curve.
    #[error("an EC public key that is not on its curve")]
    PointNotOnCurve,
    /// ECDSA on P-521.
    #[error("an ECDSA key on P-521 (secp521r1), which browsers do not accept")]
    P521,
    /// ECDSA on secp256k1.
    #[error("an ECDSA key on secp256k1, which browsers do not accept")]
    Secp256k1,
    /// ECDSA on another curve, by OID.
    #[error("an ECDSA key on the curve {0}, which browsers do not accept")]
    OtherCurve(String),
    #[error("a DSA key")]
    Dsa,
    /// Ed25519.
    #[error("an Ed25519 key, which browsers do not accept for TLS")]
    Ed25519,
    /// Ed448.
    #[error("an Ed448 key, which browsers do not accept for TLS")]
    Ed448,
    /// RSA-PSS (a key restricted to PSS signatures).
    #[error("an RSA-PSS key")]
    RsaPss,
    /// An OpenSSH private key (`ssh-keygen`'s format).
    #[error("an OpenSSH key, not a TLS key")]
    OpenSsh,
    /// Another algorithm, by OID.
    #[error("a key of the unknown algorithm {0}")]
    UnknownAlgorithm(String),
    /// The algorithm identifier does not parse.
    #[error("a key with a damaged algorithm identifier")]
    DamagedAlgorithm,
}

type KeyResult<T> = std::result::Result<T, KeyError>;

/// Smallest RSA modulus OpenSSL's default security level (Debian 12) lets nginx load.
pub const MIN_RSA_BITS: usize = 2048;

/// The elliptic curves browsers and nginx both accept for certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

/// A public key in a form that compares equal exactly when two keys are the same (and
/// hashes, so that keys and certificates pair up through a map rather than pair by pair).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// RSA: modulus and public exponent, big-endian without leading zeros.
    Rsa {
        /// The modulus.
        modulus: Vec<u8>,
        /// The public exponent.
        exponent: Vec<u8>,
    },
    /// EC: the curve and the point.
    Ec {
        curve: Curve,
        /// The compressed point, 0x02 or 0x03 (Y's parity) || X: one form whichever one
        /// the key or certificate used.
        point: Vec<u8>,
    },
}

/// The PEM label a key's DER is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `PRIVATE KEY`
    Pkcs8,
    /// `RSA PRIVATE KEY`
    Pkcs1,
    /// `EC PRIVATE KEY`
    Sec1,
}

impl KeyError {
    /// What to do about a key refused for this reason: a damaged key is fixed by sending the
    /// whole file again, any other by using a kind of key nginx and browsers accept.
    pub fn what_to_do(&self) -> &'static str {
        match self {
            KeyError::Damaged { .. } => "check that the file is complete and unchanged",
            _ => "use an RSA (2048 bits or more) or ECDSA P-256/P-384 key",
        }
    }
}

impl KeyFormat {
    /// The PEM label nginx (OpenSSL) expects for this encoding.
    pub fn pem_label(self) -> &'static str {
        match self {
            KeyFormat::Pkcs8 => "PRIVATE KEY",
            KeyFormat::Pkcs1 => "RSA PRIVATE KEY",
            KeyFormat::Sec1 => "EC PRIVATE KEY",
        }
    }
}

/// A usable private key: its encoding and the public key it implies.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey {
    der: Vec<u8>,
    format: KeyFormat,
    public: PublicKey,
}

/// Debug output names the key's kind, never its bytes.
impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.describe())
    }
}

impl PrivateKey {
    /// Reads a key whose encoding is known (from its PEM label).
    pub fn from_der(der: &[u8], format: KeyFormat) -> KeyResult<PrivateKey> {
        let public = match format {
            KeyFormat::Pkcs8 => public_from_pkcs8(der)?,
            KeyFormat::Pkcs1 => public_from_pkcs1(der)?,
            KeyFormat::Sec1 => public_from_sec1(der, None)?,
        };
        Ok(PrivateKey {
            der: der.to_vec(),
            format,
            public,
        })
    }

    /// Reads a DER key of unknown encoding, trying PKCS#8, then PKCS#1, then SEC1.
    /// `None` if the bytes are none of them; `Some(Err)` if they are a key we refuse.
    pub fn sniff_der(der: &[u8]) -> Option<KeyResult<PrivateKey>> {
        if pkcs8::PrivateKeyInfo::from_der(der).is_ok() {
            return Some(Self::from_der(der, KeyFormat::Pkcs8));
        }
        if pkcs1::RsaPrivateKey::from_der(der).is_ok() {
            return Some(Self::from_der(der, KeyFormat::Pkcs1));
        }
        if sec1::EcPrivateKey::from_der(der).is_ok() {
            return Some(Self::from_der(der, KeyFormat::Sec1));
        }
        None
    }

    /// The public key this private key belongs to.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key as PEM, in the encoding it came in.
    pub fn to_pem(&self) -> String {
        crate::pem::encode(self.format.pem_label(), &self.der)
    }

    /// What kind of key this is, e.g. "an RSA 2048-bit key".
    pub fn describe(&self) -> String {
        self.public.describe()
    }
}

impl PublicKey {
    /// What kind of key this is, e.g. "an ECDSA P-256 key".
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { modulus, .. } => format!("an RSA {}-bit key", bit_length(modulus)),
            PublicKey::Ec {
                curve: Curve::P256, ..
            } => "an ECDSA P-256 key".into(),
            PublicKey::Ec {
                curve: Curve::P384, ..
            } => "an ECDSA P-384 key".into(),
        }
    }

    /// Reads a certificate's SubjectPublicKeyInfo parts: the algorithm OID, its parameters
    /// (the curve OID for EC keys) and the key bits.
    pub fn from_spki(
        algorithm: &[u8],
        parameters: Option<&[u8]>,
        key_bits: &[u8],
    ) -> KeyResult<PublicKey> {
        let algorithm = oid_from_bytes(algorithm)?;
        if algorithm == OID_RSA {
            let key = pkcs1::RsaPublicKey::from_der(key_bits)
                .map_err(|e| KeyError::BadRsaPublicKey(e.to_string()))?;
            return rsa_public(key.modulus.as_bytes(), key.public_exponent.as_bytes());
        }
        if algorithm == OID_EC {
            let curve_oid = parameters.ok_or(KeyError::NoNamedCurveInCertificate)?;
            let curve = curve_from_oid(oid_from_bytes(curve_oid)?)?;
            return ec_public_from_point(curve, key_bits);
        }
        Err(unsupported_algorithm(algorithm))
    }
}

fn public_from_pkcs8(der: &[u8]) -> KeyResult<PublicKey> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| damaged("PKCS#8", e))?;
    let algorithm = info.algorithm.oid;
    if algorithm == OID_RSA {
        return public_from_pkcs1(info.private_key);
    }
    if algorithm == OID_EC {
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| KeyError::NoNamedCurve)?;
        return public_from_sec1(info.private_key, Some(curve));
    }
    Err(unsupported_algorithm(algorithm))
}

fn public_from_pkcs1(der: &[u8]) -> KeyResult<PublicKey> {
    let key = pkcs1::RsaPrivateKey::from_der(der).map_err(|e| damaged("RSA", e))?;
    rsa_public(key.modulus.as_bytes(), key.public_exponent.as_bytes())
}

fn rsa_public(modulus: &[u8], exponent: &[u8]) -> KeyResult<PublicKey> {
    let modulus = strip_leading_zeros(modulus).to_vec();
    let bits = bit_length(&modulus);
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooShort(bits));
    }
    Ok(PublicKey::Rsa {
        modulus,
        exponent: strip_leading_zeros(exponent).to_vec(),
    })
}

/// SEC1 keys carry the curve themselves; inside PKCS#8 it comes from the outer algorithm.
/// The public point is always computed from the secret scalar, never trusted from the file.
fn public_from_sec1(der: &[u8], outer_curve: Option<ObjectIdentifier>) -> KeyResult<PublicKey> {
    let key = sec1::EcPrivateKey::from_der(der).map_err(|e| damaged("EC", e))?;
    let inner_curve = key.parameters.and_then(|p| p.named_curve());
    let curve_oid = outer_curve.or(inner_curve).ok_or(KeyError::NoNamedCurve)?;
    let curve = curve_from_oid(curve_oid)?;
    let point = ec_point_of_scalar(curve, key.private_key)
        .ok_or_else(|| damaged("EC", "its secret is not a scalar of its curve"))?;
    Ok(PublicKey::Ec { curve, point })
}

/// The public point of a secret scalar, computed by aws-lc (already linked for TLS and
/// signatures), in the compressed form [`PublicKey::Ec`] compares. SEC1 writes the scalar
/// at the curve's full length, but some encoders drop leading zero bytes: they are put back.
fn ec_point_of_scalar(curve: Curve, scalar: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::agreement::{ECDH_P256, ECDH_P384, PrivateKey};
    let (algorithm, length) = match curve {
        Curve::P256 => (&ECDH_P256, 32),
        Curve::P384 => (&ECDH_P384, 48),
    };
    let scalar = strip_leading_zeros(scalar);
    if scalar.len() > length {
        return None;
    }
    let mut padded = vec![0u8; length - scalar.len()];
    padded.extend_from_slice(scalar);
    let public = PrivateKey::from_private_key(algorithm, &padded)
        .ok()?
        .compute_public_key()
        .ok()?;
    compress(public.as_ref())
}

/// Checks that a point (compressed or not) lies on its curve and gives its compressed form.
fn ec_public_from_point(curve: Curve, point: &[u8]) -> KeyResult<PublicKey> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ParsedPublicKey};
    let algorithm = match curve {
        Curve::P256 => &ECDSA_P256_SHA256_ASN1,
        Curve::P384 => &ECDSA_P384_SHA384_ASN1,
    };
    ParsedPublicKey::new(algorithm, point).map_err(|_| KeyError::PointNotOnCurve)?;
    Ok(PublicKey::Ec {
        curve,
        point: compress(point).ok_or(KeyError::PointNotOnCurve)?,
    })
}

/// SEC1's compressed form of a point: 0x02 or 0x03 (the parity of Y), then X. A key and a
/// certificate may write the same point either way, and this form needs no curve arithmetic
/// to reach from the other (aws-lc checks a point but does not hand back its coordinates).
fn compress(point: &[u8]) -> Option<Vec<u8>> {
    match point.split_first()? {
        (0x02 | 0x03, _) => Some(point.to_vec()),
        (0x04, xy) if xy.len() % 2 == 0 => {
            let (x, y) = xy.split_at(xy.len() / 2);
            let mut compressed = vec![0x02 | (y.last()? & 1)];
            compressed.extend_from_slice(x);
            Some(compressed)
        }
        _ => None,
    }
}

fn curve_from_oid(oid: ObjectIdentifier) -> KeyResult<Curve> {
    match oid {
        OID_P256 => Ok(Curve::P256),
        OID_P384 => Ok(Curve::P384),
        OID_P521 => Err(KeyError::P521),
        OID_SECP256K1 => Err(KeyError::Secp256k1),
        other => Err(KeyError::OtherCurve(other.to_string())),
    }
}

fn unsupported_algorithm(oid: ObjectIdentifier) -> KeyError {
    match oid {
        OID_DSA => KeyError::Dsa,
        OID_ED25519 => KeyError::Ed25519,
        OID_ED448 => KeyError::Ed448,
        OID_RSA_PSS => KeyError::RsaPss,
        other => KeyError::UnknownAlgorithm(other.to_string()),
    }
}

fn damaged(encoding: &'static str, why: impl std::fmt::Display) -> KeyError {
    KeyError::Damaged {
        encoding,
        why: why.to_string(),
    }
}

fn oid_from_bytes(bytes: &[u8]) -> KeyResult<ObjectIdentifier> {
    ObjectIdentifier::from_bytes(bytes).map_err(|_| KeyError::DamagedAlgorithm)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_length(big_endian: &[u8]) -> usize {
    let trimmed = strip_leading_zeros(big_endian);
    match trimmed.first() {
        Some(first) => trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Whether DER bytes are a PKCS#8 `EncryptedPrivateKeyInfo`.
pub fn is_encrypted_pkcs8(der: &[u8]) -> bool {
    pkcs8::EncryptedPrivateKeyInfo::from_der(der).is_ok()
}

/// The key types certs:generate can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on P-256 (the default: fast, and accepted everywhere).
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
}

impl KeyType {
    /// Every key type with its name, as `--key-type` and `letsencrypt:set key-type` take it.
    pub const ALL: [(&'static str, KeyType); 5] = [
        ("ecdsa-p256", KeyType::EcdsaP256),
        ("ecdsa-p384", KeyType::EcdsaP384),
        ("rsa2048", KeyType::Rsa2048),
        ("rsa3072", KeyType::Rsa3072),
        ("rsa4096", KeyType::Rsa4096),
    ];

    /// The key type of a name such as `ecdsa-p256`.
    pub fn from_name(name: &str) -> std::result::Result<KeyType, UnknownKeyType> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| UnknownKeyType(name.to_string()))
    }
}

/// A `--key-type` or `key-type` value that names no [`KeyType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key type {0:?}; use one of {names}", names = KeyType::ALL.map(|(n, _)| n).join(", "))]
pub struct UnknownKeyType(pub String);

/// Generates a new private key of `key_type`.
pub fn generate_key(key_type: KeyType) -> crate::error::Result<rcgen::KeyPair> {
    match key_type {
        KeyType::EcdsaP256 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcdsaP384 => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => {
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        KeyType::Rsa3072 => {
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
        }
        KeyType::Rsa4096 => {
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
        }
    }
    .map_err(|e| crate::error::Error::Generate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_ignores_leading_zeros() {
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
    }

    #[test]
    fn generated_p256_key_in_pkcs8_and_sec1_give_the_same_public_key() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pkcs8 = PrivateKey::from_der(&key.serialize_der(), KeyFormat::Pkcs8).unwrap();
        let der = key.serialize_der();
        let info = pkcs8::PrivateKeyInfo::from_der(&der).unwrap();
        // Inside PKCS#8 the SEC1 key leaves its curve to the outer algorithm identifier.
        assert!(PrivateKey::from_der(info.private_key, KeyFormat::Sec1).is_err());
        let sec1 = public_from_sec1(info.private_key, Some(OID_P256)).unwrap();
        assert_eq!(pkcs8.public_key(), &sec1);
        assert_eq!(pkcs8.describe(), "an ECDSA P-256 key");
        let PublicKey::Ec { point, .. } = pkcs8.public_key() else {
            panic!("not EC")
        };
        assert_eq!(Some(point.clone()), compress(key.public_key_raw()));
        assert_eq!(point.len(), 33);
    }

    #[test]
    fn debug_output_never_shows_key_bytes() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let parsed = PrivateKey::from_der(&key.serialize_der(), KeyFormat::Pkcs8).unwrap();
        assert_eq!(format!("{parsed:?}"), "PrivateKey(an ECDSA P-256 key)");
    }
}
