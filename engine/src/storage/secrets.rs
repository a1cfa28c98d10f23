//! Provider secrets at rest: the app secret, access token and verify token of a connection are sealed
//! with AES-256-GCM (a fresh 96-bit nonce per value) before a backend writes them, and opened when read.
//! The key comes from config (`security.secret_key`, base64 of 32 bytes) or, on a single node with
//! nothing configured, from `<data_dir>/secret.key`, created once with mode 0600.
//!
//! Sealed values are `enc:v1:<base64(nonce ‖ ciphertext ‖ tag)>`; a value without the prefix is read as
//! plain text, so data written before encryption existed still opens (and is sealed on its next write).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schema::mail::SmtpAccount;
use schema::records::Connection;
use schema::store::StoreError;
use std::path::Path;

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;

/// Seals and opens secrets with one key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box for a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// The configured key (base64 of 32 bytes), or the one kept in `data_dir/secret.key`, created if
    /// missing.
    pub fn from_config(configured: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        let key = match configured.filter(|k| !k.is_empty()) {
            Some(encoded) => decode_key(encoded)?,
            None => key_file(&data_dir.join("secret.key"))?,
        };
        Ok(Self::new(&key))
    }

    /// Seals one value.
    pub fn seal(&self, plain: &str) -> Result<String, StoreError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .map_err(|_| StoreError::Corrupt("secret could not be sealed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// Opens one value sealed by [`Self::seal`] (plain values pass through).
    pub fn open(&self, stored: &str) -> Result<String, StoreError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = STANDARD.decode(encoded).map_err(|_| corrupt())?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }

    /// A copy of `connection` with its secrets sealed, for writing.
    pub fn seal_connection(&self, connection: &Connection) -> Result<Connection, StoreError> {
        let mut sealed = connection.clone();
        for secret in sealed.settings.secrets_mut() {
            *secret = self.seal(secret)?;
        }
        Ok(sealed)
    }

    /// An SMTP account with its password sealed.
    pub fn seal_smtp(&self, account: &SmtpAccount) -> Result<SmtpAccount, StoreError> {
        let mut sealed = account.clone();
        if let Some(password) = sealed.password.as_mut() {
            *password = self.seal(password)?;
        }
        Ok(sealed)
    }

    /// Opens a stored SMTP account's password.
    pub fn open_smtp(&self, mut account: SmtpAccount) -> Result<SmtpAccount, StoreError> {
        if let Some(password) = account.password.as_mut() {
            *password = self.open(password)?;
        }
        Ok(account)
    }

    /// Opens the secrets of a stored connection in place.
    pub fn open_connection(&self, mut connection: Connection) -> Result<Connection, StoreError> {
        for secret in connection.settings.secrets_mut() {
            *secret = self.open(secret)?;
        }
        Ok(connection)
    }
}

fn corrupt() -> StoreError {
    StoreError::Corrupt(
        "a sealed secret does not open with this key (wrong security.secret_key?)".into(),
    )
}

fn decode_key(encoded: &str) -> Result<[u8; 32], StoreError> {
    STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            StoreError::Unavailable("security.secret_key must be base64 of 32 bytes".into())
        })
}

fn key_file(path: &Path) -> Result<[u8; 32], StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = Aes256Gcm::generate_key(&mut OsRng).into();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            }
            write_private(path, STANDARD.encode(key).as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(StoreError::Unavailable(format!("{}: {e}", path.display()))),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_differ_each_time() {
        let a = SecretBox::new(&[7; 32]);
        let b = SecretBox::new(&[8; 32]);
        let first = a.seal("app-secret").unwrap();
        let second = a.seal("app-secret").unwrap();
        assert_ne!(first, second, "a fresh nonce per value");
        assert!(!first.contains("app-secret"));
        assert_eq!(a.open(&first).unwrap(), "app-secret");
        assert!(b.open(&first).is_err());
        assert_eq!(
            a.open("written-before-encryption").unwrap(),
            "written-before-encryption"
        );
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretBox::from_config(None, dir.path()).unwrap();
        let sealed = first.seal("x").unwrap();
        let again = SecretBox::from_config(None, dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(SecretBox::from_config(Some("too-short"), dir.path()).is_err());
    }
}
