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
//! The directory itself is 0700. keygen builds it under a temporary name beside it
//! (`.NAME.keygen-PID`) and renames it into place when every file is synced, so a killed
//! keygen leaves no half key directory; the next keygen removes what a dead one left.
//!
//! The chain state (`chain.state`, `chain.lock`) joins them on first seal; see [`crate::seal::chain`].
//! Secret files, and key directories, that group or others can access are refused, never
//! silently used.

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
    #[error("{0:?} exists and is not an empty directory: give keygen a new directory")]
    NotEmpty(PathBuf),
    #[error("secret key file {path:?} is accessible by group or others (mode {mode:04o}); run: chmod 600 {path:?}")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("key directory {path:?} is accessible by group or others (mode {mode:04o}); run: chmod 700 {path:?}")]
    ExposedDir { path: PathBuf, mode: u32 },
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
    Ok(fsutil::read_regular(path).at("cannot read", path)?)
}

/// Read a public key or recipients file: a regular file (a named pipe is refused, not waited
/// on) holding UTF-8 text.
fn read_text(path: &Path) -> Result<String, KeyError> {
    let bytes = fsutil::read_regular(path).at("cannot read", path)?;
    String::from_utf8(bytes).map_err(|_| invalid(path, "not UTF-8 text"))
}

/// Refuse a key directory that group or others can access.
fn check_key_dir(dir: &Path) -> Result<(), KeyError> {
    let mode = fs::metadata(dir)
        .at("cannot read", dir)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::ExposedDir {
            path: dir.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// The id minisign prints for a key: its 8-byte key number as a little-endian integer in
/// upper-case hex.
pub fn key_id(keynum: &[u8]) -> String {
    let mut le = [0u8; 8];
    le.copy_from_slice(&keynum[..8]);
    format!("{:016X}", u64::from_le_bytes(le))
}

/// The files keygen writes.
const KEY_FILES: [&str; 5] = [
    SIGNING_KEY,
    PUBLIC_KEY,
    AGE_IDENTITY,
    AGE_RECIPIENTS,
    TABLE_KEY,
];

/// Create a key directory `dir`, mode 0700, with new keys; returns the files made. `dir`
/// must not exist or be an empty directory. The keys are written and synced in a temporary
/// directory beside it, which is then renamed into place: a kill leaves no key directory or
/// a whole one, never a half one.
pub fn keygen(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    if let Some(existing) = KEY_FILES.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
        return Err(KeyError::Exists(existing));
    }
    let not_empty = || KeyError::NotEmpty(dir.to_path_buf());
    let name = dir.file_name().ok_or_else(not_empty)?;
    let empty_dir = fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    if dir.exists() && !empty_dir {
        return Err(not_empty());
    }
    let parent = fsutil::parent_dir(dir);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)
        .at("cannot create key directory", parent)?;

    let prefix = format!(".{}.keygen-", name.to_string_lossy());
    remove_dead_keygen_dirs(parent, &prefix)?;
    let temp = parent.join(format!("{prefix}{}", std::process::id()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&temp)
        .at("cannot create key directory", &temp)?;
    let made = write_keys(&temp).and_then(|()| {
        fs::rename(&temp, dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => {
                not_empty()
            }
            _ => KeyError::Io(PathError {
                action: "cannot create key directory",
                path: dir.to_path_buf(),
                source: e,
            }),
        })
    });
    if let Err(e) = made {
        let _ = fs::remove_dir_all(&temp);
        return Err(e);
    }
    fsutil::sync_dir(parent).at("cannot sync", parent)?;
    Ok(KEY_FILES.iter().map(|n| dir.join(n)).collect())
}

/// Remove the temporary directories (`PREFIX` + pid) of keygen runs that were killed: those
/// whose process is gone. A live keygen's directory is left alone.
fn remove_dead_keygen_dirs(parent: &Path, prefix: &str) -> Result<(), KeyError> {
    if !Path::new("/proc/self").exists() {
        return Ok(()); // no way to tell a live run from a dead one
    }
    for entry in fs::read_dir(parent).at("cannot read", parent)? {
        let entry = entry.at("cannot read", parent)?;
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        // Our own pid can only be a dead run's: this run has not made its directory yet.
        if pid == std::process::id() || !Path::new("/proc").join(pid.to_string()).exists() {
            let path = entry.path();
            fs::remove_dir_all(&path).at("cannot remove a killed keygen's directory", &path)?;
        }
    }
    Ok(())
}

/// Generate the keys into `dir` (new and empty), syncing each file and then the directory.
fn write_keys(dir: &Path) -> Result<(), KeyError> {
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
    for (name, bytes, secret) in files {
        let path = dir.join(name);
        let result = if secret {
            fsutil::create_secret(&path, &bytes)
        } else {
            fsutil::create_public(&path, &bytes)
        };
        result.at("cannot create", &path)?;
    }
    fsutil::sync_dir(dir).at("cannot sync", dir)?;
    Ok(())
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
        check_key_dir(dir)?;
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

    /// HMAC-SHA256 of `bytes` under a key derived from the secret signing key: lets the
    /// sealer recognise text it sealed before without decrypting it, while nobody without the
    /// secret key can test guesses of the text against it.
    pub fn mac(&self, bytes: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let key = sha2::Sha256::new()
            .chain_update(b"callrec sidecar-mac v1\0")
            .chain_update(self.sk.to_bytes())
            .finalize();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(bytes);
        mac.finalize().into_bytes().into()
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
    let text = read_text(path)?;
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
            let bytes = pk.to_bytes();
            let point: [u8; 32] = bytes[bytes.len() - 32..].try_into().expect("32 bytes");
            crate::ed25519::check_public_key(&point)
                .map_err(|w| invalid(&file, format!("not a usable Ed25519 public key: {w}")))?;
            let id = key_id(pk.keynum());
            match trusted.keys.iter().find(|(known, _)| *known == id) {
                // The same key named twice is one key.
                Some((_, known)) if known.to_bytes() == bytes => continue,
                // Two keys under one key number: which one signed would depend on their order.
                Some(_) => {
                    return Err(invalid(
                        &file,
                        format!("has key number {id}, as another trusted key has: refusing an ambiguous key set"),
                    ))
                }
                None => trusted.keys.push((id, pk)),
            }
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
    let text = read_text(path)?;
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
/// or `table.key`; the directory, like the file, must be private).
pub fn load_text_key(path: &Path, cipher: format::Cipher) -> Result<TextKey, KeyError> {
    if path.is_dir() {
        check_key_dir(path)?;
    }
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
