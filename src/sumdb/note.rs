//! Signed notes (`golang.org/x/mod/sumdb/note`) and verifier keys
//! (`<name>+<hash>+<base64(alg || key)>`), Ed25519 only.

/// Why a key or a note was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A verifier or signer key string that does not parse
    /// (wrong field count, bad hash, bad base64, unknown algorithm, wrong length,
    /// key hash not matching the key).
    #[error("malformed verifier key")]
    MalformedKey,
    /// The note is not a well-formed signed note (Go's "malformed note").
    #[error("malformed note")]
    Malformed,
    /// A signature line by the known key (same name and key hash) does not
    /// verify. Carries the key's `name+hash`, e.g. `PeterNeumann+c74f20a3`.
    #[error("invalid signature for key {0}")]
    InvalidSignature(String),
    /// Well-formed, but no signature line by the known key.
    #[error("note has no verifiable signature by {0}")]
    Unverified(String),
}

/// A verifier key: name, 32-bit key hash and Ed25519 public key.
#[derive(Clone, Debug)]
pub struct Verifier {
    _private: (),
}

impl Verifier {
    /// Parses `<name>+<hash>+<keydata>` (`note.NewVerifier`), checking that the
    /// hash is the key hash of name and key.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        let _ = vkey;
        todo!()
    }
    /// The server name, e.g. `sum.golang.org`.
    pub fn name(&self) -> &str {
        todo!()
    }
    /// The key hash, e.g. `0x033de0ae`.
    pub fn key_hash(&self) -> u32 {
        todo!()
    }
}

/// `note.Open` with a single known verifier: checks the note's syntax and that at
/// least one signature line is by `verifier` and verifies; signatures by other
/// keys are ignored. Returns the note text (everything up to and including the
/// last newline before the blank line).
pub fn open<'a>(msg: &'a [u8], verifier: &Verifier) -> Result<&'a str, NoteError> {
    let _ = (msg, verifier);
    todo!()
}

/// A signer key, for tests and the fake upstream
/// (`PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>`).
#[derive(Clone)]
pub struct Signer {
    _private: (),
}

impl Signer {
    /// Parses a signer key (`note.NewSigner`).
    pub fn parse(skey: &str) -> Result<Signer, NoteError> {
        let _ = skey;
        todo!()
    }
    /// A signer for `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Signer {
        let _ = (name, seed);
        todo!()
    }
    /// The matching verifier key string (`<name>+<hash>+<keydata>`).
    pub fn verifier_key(&self) -> String {
        todo!()
    }
    /// The signer key string (`PRIVATE+KEY+...`).
    pub fn signer_key(&self) -> String {
        todo!()
    }
    /// `note.Sign` with this one key: `text + "\n" + "— <name> <base64 sig>\n"`.
    /// `text` must end in a newline.
    pub fn sign(&self, text: &str) -> String {
        let _ = text;
        todo!()
    }
}
