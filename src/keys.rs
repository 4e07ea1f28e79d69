//! The key directory and everything in it.
//!
//! `callrec-seal keygen -o KEYDIR` creates:
//!
//! | file | mode | what |
//! |---|---|---|
//! | `seal.key` | 0600 | Ed25519 signing key (minisign secret key box, not password-protected) |
//! | `seal.pub` | 0644 | its public key, in minisign's format (`minisign -V -p seal.pub`) |
//! | `age-identity.txt` | 0600 | age X25519 identity that decrypts text info (`age -d -i`) |
//! | `age-recipients.txt` | 0644 | recipients text info is encrypted to; add auditors' here |
//! | `table.key` | 0600 | the document's 256-byte substitution table (a permutation) |
//!
//! The chain state (`chain.state`, `chain.lock`) joins them on first seal; see [`crate::chain`].
//! Secret files that group or others can access are refused, never silently used.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use crate::format::{self, Manifest, UNTRUSTED_COMMENT};
use crate::fsutil::{self, PathContext, PathError};

pub const SIGNING_KEY: &str = "seal.key";
pub const PUBLIC_KEY: &str = "seal.pub";
pub const AGE_IDENTITY: &str = "age-identity.txt";
pub const AGE_RECIPIENTS: &str = "age-recipients.txt";
pub const TABLE_KEY: &str = "table.key";

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Io(#[from] PathError),
    #[error("refusing to overwrite existing key file {0:?}")]
    Exists(PathBuf),
    #[error("secret key file {path:?} is accessible by group or others (mode {mode:04o}); run: chmod 600 {path:?}")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path:?}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot sign: {0}")]
    Sign(String),
}

fn invalid(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Read a secret file, refusing it if group or others can access it.
fn read_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    let mode = fs::metadata(path)
        .at("cannot read", path)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(fs::read(path).at("cannot read", path)?)
}

/// The id minisign prints for a key: its 8-byte key number as a little-endian integer in
/// upper-case hex.
pub fn key_id(keynum: &[u8]) -> String {
    let mut le = [0u8; 8];
    le.copy_from_slice(&keynum[..8]);
    format!("{:016X}", u64::from_le_bytes(le))
}

/// Create a key directory's keys. Fails, creating nothing, if any of them exists.
pub fn keygen(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let names = [
        SIGNING_KEY,
        PUBLIC_KEY,
        AGE_IDENTITY,
        AGE_RECIPIENTS,
        TABLE_KEY,
    ];
    if let Some(existing) = names.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
        return Err(KeyError::Exists(existing));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .at("cannot create key directory", dir)?;

    let minisign::KeyPair { pk, sk } =
        minisign::KeyPair::generate_encrypted_keypair(Some(String::new()))
            .map_err(|e| KeyError::Sign(e.to_string()))?;
    let id = key_id(pk.keynum());
    let sk_box = sk
        .to_box(Some(&format!("callrec seal key {id}")))
        .map_err(|e| KeyError::Sign(e.to_string()))?;
    let pk_box = pk.to_box().map_err(|e| KeyError::Sign(e.to_string()))?;

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let identity_text = format!(
        "# callrec text-info identity\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    let recipients_text = format!(
        "# Recipients of callrec text info, one per line. Add auditors' age recipients here.\n{recipient}\n"
    );

    let files: [(&str, Vec<u8>, bool); 5] = [
        (SIGNING_KEY, sk_box.to_string().into_bytes(), true),
        (PUBLIC_KEY, pk_box.to_string().into_bytes(), false),
        (AGE_IDENTITY, identity_text.into_bytes(), true),
        (AGE_RECIPIENTS, recipients_text.into_bytes(), false),
        (
            TABLE_KEY,
            SubstitutionTable::generate().forward.to_vec(),
            true,
        ),
    ];
    let mut written = Vec::new();
    for (name, bytes, secret) in files {
        let path = dir.join(name);
        let result = if secret {
            fsutil::create_secret(&path, &bytes)
        } else {
            fsutil::create_public(&path, &bytes)
        };
        result.at("cannot create", &path)?;
        written.push(path);
    }
    Ok(written)
}

/// A loaded signing key.
pub struct SealKey {
    pub dir: PathBuf,
    pub key_id: String,
    sk: minisign::SecretKey,
    pk: minisign::PublicKey,
}

impl SealKey {
    /// Load `seal.key` and `seal.pub` from a key directory.
    pub fn load(dir: &Path) -> Result<SealKey, KeyError> {
        let sk_path = dir.join(SIGNING_KEY);
        let text = String::from_utf8(read_secret(&sk_path)?)
            .map_err(|_| invalid(&sk_path, "not a minisign secret key"))?;
        let sk = minisign::SecretKeyBox::from_string(&text)
            .and_then(|b| b.into_secret_key(Some(String::new())))
            .map_err(|e| invalid(&sk_path, format!("not a usable secret key: {e}")))?;
        let pk_path = dir.join(PUBLIC_KEY);
        let pk = read_public_key(&pk_path)?;
        let pk_from_sk = minisign::PublicKey::from_secret_key(&sk)
            .map_err(|e| invalid(&sk_path, e.to_string()))?;
        if pk_from_sk.to_bytes() != pk.to_bytes() {
            return Err(invalid(&pk_path, "does not match the secret key beside it"));
        }
        Ok(SealKey {
            dir: dir.to_path_buf(),
            key_id: key_id(pk.keynum()),
            sk,
            pk,
        })
    }

    /// The key's own public half as the only trusted key.
    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys {
            keys: vec![(self.key_id.clone(), self.pk.clone())],
        }
    }

    /// Sign a manifest; returns the signature block (a minisign signature file's text).
    pub fn sign(&self, manifest: &Manifest, manifest_bytes: &[u8]) -> Result<String, KeyError> {
        let signature = minisign::sign(
            Some(&self.pk),
            &self.sk,
            Cursor::new(manifest_bytes),
            Some(&format::trusted_comment(manifest)),
            Some(UNTRUSTED_COMMENT),
        )
        .map_err(|e| KeyError::Sign(e.to_string()))?;
        Ok(signature.to_string())
    }
}

fn read_public_key(path: &Path) -> Result<minisign::PublicKey, KeyError> {
    let text = fs::read_to_string(path).at("cannot read", path)?;
    minisign::PublicKeyBox::from_string(&text)
        .and_then(|b| b.into_public_key())
        .map_err(|e| invalid(path, format!("not a minisign public key: {e}")))
}

/// Public keys whose seals are trusted, by key id.
#[derive(Default)]
pub struct TrustedKeys {
    keys: Vec<(String, minisign::PublicKey)>,
}

impl TrustedKeys {
    /// Load public keys from files, or from key directories (their `seal.pub`).
    pub fn load(paths: &[PathBuf]) -> Result<TrustedKeys, KeyError> {
        let mut trusted = TrustedKeys::default();
        for path in paths {
            let file = if path.is_dir() {
                path.join(PUBLIC_KEY)
            } else {
                path.clone()
            };
            let pk = read_public_key(&file)?;
            trusted.keys.push((key_id(pk.keynum()), pk));
        }
        Ok(trusted)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, key_id: &str) -> Option<&minisign::PublicKey> {
        self.keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, pk)| pk)
    }
}

/// Lines of a key or recipients file that carry values: not blank, not `#` comments.
fn value_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Parse one age X25519 recipient (`age1...`).
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient, String> {
    age::x25519::Recipient::from_str(text.trim())
        .map_err(|e| format!("{:?} is not an age X25519 recipient: {e}", text.trim()))
}

/// Read an age recipients file (one `age1...` a line, `#` comments).
pub fn read_recipients(path: &Path) -> Result<Vec<age::x25519::Recipient>, KeyError> {
    let text = fs::read_to_string(path).at("cannot read", path)?;
    value_lines(&text)
        .map(|l| parse_recipient(l).map_err(|reason| invalid(path, reason)))
        .collect()
}

/// The key that reads a record's text info.
pub enum TextKey {
    Age(Vec<age::x25519::Identity>),
    Table(Box<SubstitutionTable>),
}

/// Load the key for `cipher` from a key file, or from a key directory (its `age-identity.txt`
/// or `table.key`).
pub fn load_text_key(path: &Path, cipher: format::Cipher) -> Result<TextKey, KeyError> {
    let file = match (path.is_dir(), cipher) {
        (false, _) => path.to_path_buf(),
        (true, format::Cipher::Age) => path.join(AGE_IDENTITY),
        (true, format::Cipher::Table) => path.join(TABLE_KEY),
    };
    let bytes = read_secret(&file)?;
    match cipher {
        format::Cipher::Table => SubstitutionTable::from_bytes(&bytes)
            .map(|t| TextKey::Table(Box::new(t)))
            .map_err(|reason| invalid(&file, reason)),
        format::Cipher::Age => {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| invalid(&file, "not an age identity file"))?;
            let identities = value_lines(text)
                .map(|l| {
                    age::x25519::Identity::from_str(l).map_err(|_| {
                        invalid(&file, "holds a line that is not an age X25519 identity")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if identities.is_empty() {
                return Err(invalid(&file, "holds no age identity"));
            }
            Ok(TextKey::Age(identities))
        }
    }
}

/// The document's one-to-one byte substitution f(x), x in 0..=255, and its inverse.
#[derive(Clone)]
pub struct SubstitutionTable {
    forward: [u8; 256],
    inverse: [u8; 256],
}

impl SubstitutionTable {
    /// A random permutation from the operating system's generator.
    pub fn generate() -> SubstitutionTable {
        let mut forward: [u8; 256] = std::array::from_fn(|i| i as u8);
        forward.shuffle(&mut rand::rngs::OsRng);
        Self::from_bytes(&forward).expect("a shuffle is a permutation")
    }

    /// A table from its key file: exactly 256 bytes, each value once.
    pub fn from_bytes(bytes: &[u8]) -> Result<SubstitutionTable, String> {
        let forward: [u8; 256] = bytes
            .try_into()
            .map_err(|_| format!("a substitution table is 256 bytes, not {}", bytes.len()))?;
        let mut inverse = [0u8; 256];
        let mut seen = [false; 256];
        for (x, &y) in forward.iter().enumerate() {
            if std::mem::replace(&mut seen[usize::from(y)], true) {
                return Err(format!("byte value {y} appears twice: not a permutation"));
            }
            inverse[usize::from(y)] = x as u8;
        }
        Ok(SubstitutionTable { forward, inverse })
    }

    pub fn encode(&self, plain: &[u8]) -> Vec<u8> {
        plain
            .iter()
            .map(|&b| self.forward[usize::from(b)])
            .collect()
    }

    pub fn decode(&self, encoded: &[u8]) -> Vec<u8> {
        encoded
            .iter()
            .map(|&b| self.inverse[usize::from(b)])
            .collect()
    }

    /// Names the table in manifests without revealing it: the first 16 hex digits of the
    /// SHA-256 of its 256 bytes.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.forward)[..8])
    }
}
