//! Signed notes (`golang.org/x/mod/sumdb/note`) and verifier keys
//! (`<name>+<hash>+<base64(alg || key)>`), Ed25519 only.
//!
//! Every tree head the checksum database hands out is a signed note: a text
//! ending in a newline, a blank line, and one or more lines
//! `— <name> <base64(keyhash || signature)>`. We only ever trust one key (the
//! configured sumdb key), so [`open`] takes a single [`Verifier`] and ignores
//! signatures by other keys, exactly as `note.Open` does with a one-entry
//! verifier list. The parsing rules are Go's, byte for byte: a note that
//! `cmd/go` would refuse must be refused here too, or the mirror would serve
//! notes its clients reject.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

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

/// The only algorithm the note format defines: Ed25519.
const ALG_ED25519: u8 = 1;

/// More signature lines than this make a note malformed (`note.Open` stops
/// there so that a hostile note cannot make us parse forever).
const MAX_SIGNATURES: usize = 100;

/// The signature line prefix: em dash (U+2014) and a space.
const SIG_PREFIX: &[u8] = "— ".as_bytes();

/// Go's `base64.StdEncoding` as a decoder: padding required and canonical, but
/// unused trailing bits need not be zero (only `.Strict()` checks them).
const GO_STD_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Decodes standard padded base64 the way Go's `base64.StdEncoding.DecodeString`
/// does, including its habit of skipping `\r` and `\n` anywhere in the input.
pub(crate) fn decode_std_base64(s: &[u8]) -> Option<Vec<u8>> {
    if s.contains(&b'\r') || s.contains(&b'\n') {
        let cleaned: Vec<u8> = s
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        return GO_STD_BASE64.decode(cleaned).ok();
    }
    GO_STD_BASE64.decode(s).ok()
}

/// Encodes standard padded base64 (Go's `base64.StdEncoding.EncodeToString`).
pub(crate) fn encode_std_base64(data: &[u8]) -> String {
    GO_STD_BASE64.encode(data)
}

/// `keyHash(name, key)`: the first four bytes, big-endian, of
/// SHA-256(name || "\n" || key), where `key` includes the algorithm byte.
fn key_hash(name: &str, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// `isValidName`: non-empty, no Unicode white space, no `+` (a `&str` is
/// already valid UTF-8). Rust's `char::is_whitespace` and Go's
/// `unicode.IsSpace` both follow the Unicode White_Space property.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

/// Go's `strconv.ParseUint(s, 16, 32)` restricted to the exactly-eight-digit
/// form key strings use (no sign, no prefix, either case).
fn parse_key_hash(hash16: &str) -> Option<u32> {
    if hash16.len() != 8 || !hash16.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hash16, 16).ok()
}

/// A verifier key: name, 32-bit key hash and Ed25519 public key.
#[derive(Clone, Debug)]
pub struct Verifier {
    name: String,
    hash: u32,
    public_key: [u8; 32],
    /// `None` when the 32 bytes are not a point on the curve: Go accepts such a
    /// key and then fails every signature, so we do the same.
    verifying_key: Option<VerifyingKey>,
}

impl Verifier {
    /// Parses `<name>+<hash>+<keydata>` (`note.NewVerifier`), checking that the
    /// hash is the key hash of name and key.
    pub fn parse(vkey: &str) -> Result<Verifier, NoteError> {
        // `+` is a base64 character, so the key data is everything after the
        // second `+`.
        let (name, rest) = vkey.split_once('+').unwrap_or((vkey, ""));
        let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
        let hash = parse_key_hash(hash16).ok_or(NoteError::MalformedKey)?;
        let key = decode_std_base64(key64.as_bytes()).ok_or(NoteError::MalformedKey)?;
        if !is_valid_name(name) || key.is_empty() || hash != key_hash(name, &key) {
            return Err(NoteError::MalformedKey);
        }
        let (alg, key) = (key[0], &key[1..]);
        if alg != ALG_ED25519 {
            return Err(NoteError::MalformedKey);
        }
        let public_key: [u8; 32] = key.try_into().map_err(|_| NoteError::MalformedKey)?;
        Ok(Verifier {
            name: name.to_owned(),
            hash,
            public_key,
            verifying_key: VerifyingKey::from_bytes(&public_key).ok(),
        })
    }

    /// The server name, e.g. `sum.golang.org`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash, e.g. `0x033de0ae`.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// The raw Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// Whether `sig` is a valid Ed25519 signature of `msg` by this key, with
    /// strict checks (canonical `S`, no small-order `R` or key).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some(key) = &self.verifying_key else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        key.verify_strict(msg, &sig).is_ok()
    }

    /// `name+hash` as it appears in Go's error messages.
    fn id(&self) -> String {
        format!("{}+{:08x}", self.name, self.hash)
    }
}

/// The verifier key string, `<name>+<hash>+<keydata>`.
impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.hash,
            encode_std_base64(&key)
        )
    }
}

/// `note.Open` with a single known verifier: checks the note's syntax and that at
/// least one signature line is by `verifier` and verifies; signatures by other
/// keys are ignored. Returns the note text (everything up to and including the
/// last newline before the blank line).
pub fn open<'a>(msg: &'a [u8], verifier: &Verifier) -> Result<&'a str, NoteError> {
    // Valid UTF-8 with no ASCII control characters other than newline. Every
    // byte below 0x20 in UTF-8 is such a character, never part of a sequence.
    let msg_str = std::str::from_utf8(msg).map_err(|_| NoteError::Malformed)?;
    if msg.iter().any(|&b| b < 0x20 && b != b'\n') {
        return Err(NoteError::Malformed);
    }

    // The signature block follows the last blank line and ends in a newline.
    let split = msg
        .windows(2)
        .rposition(|w| w == b"\n\n")
        .ok_or(NoteError::Malformed)?;
    let text = &msg_str[..split + 1];
    let mut sigs = &msg[split + 2..];
    if sigs.last() != Some(&b'\n') {
        return Err(NoteError::Malformed);
    }

    let mut verified = false;
    let mut seen_ours = false;
    let mut num_sigs = 0;
    while let Some(end) = sigs.iter().position(|&b| b == b'\n') {
        let line = &sigs[..end];
        sigs = &sigs[end + 1..];

        let line = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed)?;
        // Valid UTF-8 was checked above and the prefix ends on a boundary.
        let line_str = std::str::from_utf8(line).map_err(|_| NoteError::Malformed)?;
        let (name, b64) = line_str.split_once(' ').unwrap_or((line_str, ""));
        let sig = decode_std_base64(b64.as_bytes()).ok_or(NoteError::Malformed)?;
        if !is_valid_name(name) || b64.is_empty() || sig.len() < 5 {
            return Err(NoteError::Malformed);
        }
        let hash = u32::from_be_bytes([sig[0], sig[1], sig[2], sig[3]]);
        let sig = &sig[4..];

        num_sigs += 1;
        if num_sigs > MAX_SIGNATURES {
            return Err(NoteError::Malformed);
        }

        if name != verifier.name || hash != verifier.hash {
            // A signature by a key we do not know: Go lists it among the
            // unverified signatures, which we have no use for.
            continue;
        }
        // Only the first signature by our key counts; later ones by the same
        // key are dropped unchecked, as in Go.
        if seen_ours {
            continue;
        }
        seen_ours = true;
        if !verifier.verify(text.as_bytes(), sig) {
            return Err(NoteError::InvalidSignature(verifier.id()));
        }
        verified = true;
    }

    if !verified {
        return Err(NoteError::Unverified(verifier.id()));
    }
    Ok(text)
}

/// A signer key, for tests and the fake upstream
/// (`PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>`).
#[derive(Clone)]
pub struct Signer {
    name: String,
    hash: u32,
    key: SigningKey,
}

impl Signer {
    /// Parses a signer key (`note.NewSigner`).
    pub fn parse(skey: &str) -> Result<Signer, NoteError> {
        let (priv1, rest) = skey.split_once('+').unwrap_or((skey, ""));
        let (priv2, rest) = rest.split_once('+').unwrap_or((rest, ""));
        let (name, rest) = rest.split_once('+').unwrap_or((rest, ""));
        let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
        let hash = parse_key_hash(hash16).ok_or(NoteError::MalformedKey)?;
        let key = decode_std_base64(key64.as_bytes()).ok_or(NoteError::MalformedKey)?;
        if priv1 != "PRIVATE" || priv2 != "KEY" || !is_valid_name(name) || key.is_empty() {
            return Err(NoteError::MalformedKey);
        }
        let (alg, seed) = (key[0], &key[1..]);
        if alg != ALG_ED25519 {
            return Err(NoteError::MalformedKey);
        }
        let seed: [u8; 32] = seed.try_into().map_err(|_| NoteError::MalformedKey)?;
        // The hash is that of the public key, so it can only be checked after
        // deriving the public key from the seed.
        let signer = Signer::from_seed(name, seed);
        if signer.hash != hash {
            return Err(NoteError::MalformedKey);
        }
        Ok(signer)
    }

    /// A signer for `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(&seed);
        let hash = key_hash(name, &Self::encoded_public_key(&key));
        Signer {
            name: name.to_owned(),
            hash,
            key,
        }
    }

    /// The server name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash of the public key.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// `alg || public key`, the form the key hash and verifier key use.
    fn encoded_public_key(key: &SigningKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(33);
        out.push(ALG_ED25519);
        out.extend_from_slice(key.verifying_key().as_bytes());
        out
    }

    /// The matching verifier key string (`<name>+<hash>+<keydata>`).
    pub fn verifier_key(&self) -> String {
        let key = Self::encoded_public_key(&self.key);
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.hash,
            encode_std_base64(&key)
        )
    }

    /// The signer key string (`PRIVATE+KEY+...`).
    pub fn signer_key(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.hash,
            encode_std_base64(&key)
        )
    }

    /// `note.Sign` with this one key: `text + "\n" + "— <name> <base64 sig>\n"`.
    /// `text` must end in a newline.
    ///
    /// # Panics
    ///
    /// If `text` does not end in a newline (Go returns "malformed note"); the
    /// texts we sign are our own.
    pub fn sign(&self, text: &str) -> String {
        assert!(
            text.ends_with('\n'),
            "note text to sign must end in a newline"
        );
        let sig = ed25519_dalek::Signer::sign(&self.key, text.as_bytes());
        let mut raw = Vec::with_capacity(4 + 64);
        raw.extend_from_slice(&self.hash.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        format!("{text}\n— {} {}\n", self.name, encode_std_base64(&raw))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const ENOCH_SKEY: &str =
        "PRIVATE+KEY+EnochRoot+af0cfe78+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

    fn peter() -> Verifier {
        Verifier::parse(PETER_VKEY).unwrap()
    }

    #[test]
    fn parse_verifier_keys() {
        let v = peter();
        assert_eq!(v.name(), "PeterNeumann");
        assert_eq!(v.key_hash(), 0xc74f20a3);
        assert_eq!(v.to_string(), PETER_VKEY);
        let e = Verifier::parse(ENOCH_VKEY).unwrap();
        assert_eq!(e.name(), "EnochRoot");
        assert_eq!(e.key_hash(), 0xaf0cfe78);
        assert_eq!(
            e.public_key(),
            [
                0x3b, 0x6a, 0x27, 0xbc, 0xce, 0xb6, 0xa4, 0x2d, 0x62, 0xa3, 0xa8, 0xd0, 0x2a, 0x6f,
                0x0d, 0x73, 0x65, 0x32, 0x15, 0x77, 0x1d, 0xe2, 0x43, 0xa6, 0x3a, 0xc0, 0x48, 0xa1,
                0x8b, 0x59, 0xda, 0x29
            ]
        );
        let s = Verifier::parse(SUMDB_VKEY).unwrap();
        assert_eq!(s.name(), "sum.golang.org");
        assert_eq!(s.key_hash(), 0x033de0ae);
    }

    #[test]
    fn verifier_manglings_rejected() {
        let b = PETER_VKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i == 0 && j == b.len() {
                    continue;
                }
                let s = String::from_utf8_lossy(&b[i..j]);
                assert_eq!(
                    Verifier::parse(&s).unwrap_err(),
                    NoteError::MalformedKey,
                    "{s:?}"
                );
            }
        }
        let mut b = b.to_vec();
        for i in 0..b.len() {
            b[i] += 1;
            let s = String::from_utf8(b.clone()).unwrap();
            assert!(Verifier::parse(&s).is_err(), "{s:?}");
            b[i] -= 1;
        }
        // Wrong key length and unknown algorithm, each with an adjusted hash.
        for bad in [
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(Verifier::parse(bad).is_err(), "{bad:?}");
        }
        // The hashes above really are adjusted: only the key is at fault.
        assert_eq!(
            key_hash(
                "PeterNeumann",
                &decode_std_base64(b"ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").unwrap()
            ),
            0x173116ae
        );
    }

    #[test]
    fn signer_manglings_rejected() {
        assert!(Signer::parse(PETER_SKEY).is_ok());
        let b = PETER_SKEY.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if i == 0 && j == b.len() {
                    continue;
                }
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(Signer::parse(&s).is_err(), "{s:?}");
            }
        }
        let mut b = b.to_vec();
        for i in 0..b.len() {
            b[i] += 1;
            let s = String::from_utf8(b.clone()).unwrap();
            assert!(Signer::parse(&s).is_err(), "{s:?}");
            b[i] -= 1;
        }
    }

    #[test]
    fn signer_round_trips() {
        let s = Signer::parse(PETER_SKEY).unwrap();
        assert_eq!(s.name(), "PeterNeumann");
        assert_eq!(s.key_hash(), 0xc74f20a3);
        assert_eq!(s.signer_key(), PETER_SKEY);
        assert_eq!(s.verifier_key(), PETER_VKEY);

        let e = Signer::from_seed("EnochRoot", [0; 32]);
        assert_eq!(e.signer_key(), ENOCH_SKEY);
        assert_eq!(e.verifier_key(), ENOCH_VKEY);
        assert_eq!(
            Signer::parse(ENOCH_SKEY).unwrap().verifier_key(),
            ENOCH_VKEY
        );
    }

    #[test]
    fn sign_reproduces_golden() {
        let s = Signer::parse(PETER_SKEY).unwrap();
        let want = format!("{TEXT}\n{PETER_SIG}");
        assert_eq!(s.sign(TEXT), want);
        assert_eq!(open(want.as_bytes(), &peter()).unwrap(), TEXT);

        // EnochRoot's signature in the doubly-signed example is ours too.
        let e = Signer::parse(ENOCH_SKEY).unwrap();
        assert_eq!(e.sign(TEXT), format!("{TEXT}\n{ENOCH_SIG}"));
    }

    #[test]
    fn sign_then_open_with_fresh_key() {
        let s = Signer::from_seed("example.com/log", [7; 32]);
        let v = Verifier::parse(&s.verifier_key()).unwrap();
        let msg = s.sign("hello\n");
        assert_eq!(open(msg.as_bytes(), &v).unwrap(), "hello\n");
        let mut bad = msg.into_bytes();
        bad[0] = b'j';
        assert_eq!(
            open(&bad, &v).unwrap_err(),
            NoteError::InvalidSignature(format!("example.com/log+{:08x}", s.key_hash()))
        );
    }

    #[test]
    fn doubly_signed_opens_with_either_key() {
        let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        assert_eq!(open(msg.as_bytes(), &peter()).unwrap(), TEXT);
        let enoch = Verifier::parse(ENOCH_VKEY).unwrap();
        assert_eq!(open(msg.as_bytes(), &enoch).unwrap(), TEXT);
        // Neither key known: unverified.
        let other = Verifier::parse(SUMDB_VKEY).unwrap();
        assert_eq!(
            open(msg.as_bytes(), &other).unwrap_err(),
            NoteError::Unverified("sum.golang.org+033de0ae".into())
        );
    }

    #[test]
    fn bad_messages_are_malformed() {
        let no_final_newline = &PETER_SIG[..PETER_SIG.len() - 1];
        let bad_msgs = [
            TEXT.to_owned(),
            format!("{TEXT}\n"),
            format!("{TEXT}\n{no_final_newline}"),
            format!("\x01{TEXT}\n{PETER_SIG}"),
            format!(
                "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
            ),
            format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
            format!("{TEXT}\n{}", PETER_SIG.repeat(101)),
        ];
        for msg in &bad_msgs {
            assert_eq!(
                open(msg.as_bytes(), &peter()).unwrap_err(),
                NoteError::Malformed,
                "{msg:?}"
            );
        }
        let mut invalid_utf8 = b"\xff".to_vec();
        invalid_utf8.extend_from_slice(format!("{TEXT}\n{PETER_SIG}").as_bytes());
        assert_eq!(
            open(&invalid_utf8, &peter()).unwrap_err(),
            NoteError::Malformed
        );
        // 100 signatures are still fine.
        let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
        assert_eq!(open(msg.as_bytes(), &peter()).unwrap(), TEXT);
    }

    #[test]
    fn corrupted_signature_is_invalid() {
        let sig = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        let msg = format!("{TEXT}\n{sig}");
        let err = open(msg.as_bytes(), &peter()).unwrap_err();
        assert_eq!(
            err,
            NoteError::InvalidSignature("PeterNeumann+c74f20a3".into())
        );
        assert_eq!(
            err.to_string(),
            "invalid signature for key PeterNeumann+c74f20a3"
        );
    }

    #[test]
    fn duplicate_and_foreign_signatures() {
        // As in TestOpen: repeated good signatures, and a corrupted signature
        // by a key we do not know, are fine.
        let enoch_abcd = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
        let msg = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_abcd}");
        assert_eq!(open(msg.as_bytes(), &peter()).unwrap(), TEXT);
    }

    #[test]
    fn sumdb_test_key() {
        let vkey = "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6";
        let skey = "PRIVATE+KEY+localhost.localdev/sumdb+00000c67+AXu6+oaVaOYuQOFrf1V59JK1owcFlJcHwwXHDfDGxSPk";
        let v = Verifier::parse(vkey).unwrap();
        assert_eq!(v.name(), "localhost.localdev/sumdb");
        assert_eq!(v.key_hash(), 0x00000c67);
        let s = Signer::parse(skey).unwrap();
        assert_eq!(s.verifier_key(), vkey);
        let msg = s.sign("go.sum database tree\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n");
        assert!(open(msg.as_bytes(), &v).is_ok());
    }

    /// Signed by sum.golang.org; `tlog`'s tests check the tree contents.
    pub(crate) const REAL_NOTES: [&str; 5] = [
        "go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n— sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n",
        "go.sum database tree\n8617558\nf5KSnshtcJa62/LNDuI7gZcszmfvqVvcxkPMjNf3xZs=\n\n— sum.golang.org Az3grq9hzFjHaUJ4ohlzx2zGTtq8x4UOHTEd6EJyvB5Zd1/9vNOznd6OMy9KHrwN3CcPvzbxaFPjUPRV+qFvpA2xqQo=\n",
        "go.sum database tree\n15081221\nBoMMe1wd25Tco0mYGROkyqxHZWx+hcSCtMV315Lu6Lg=\n\n— sum.golang.org Az3grilD7vQqTrv66jRgKM84Y80KTprrSt4bKmiOPxgmS5ZVBTeCl6dUvjYnN13R+C8j0jGY1WnUADGMkok3U0m2Zgo=\n",
        "go.sum database tree\n15067302\ngJyioq6dwR9n+NjEWORfYmH+ubeYm3kH42BBQ0bTpYI=\n\n— sum.golang.org Az3grp1rvWOs5NKlr/xR4GLN/CDyzzakmt1o61uSxYKpK1SerqOP2ClbX/peKUZjYnyomH5Xz7GZG3TpB7OeKn4E2ww=\n",
        "go.sum database tree\n65209736\n5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n— sum.golang.org Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz7l/R3cVtYspg3dxXABkGZZKdsQ8=\n",
    ];

    #[test]
    fn real_sum_golang_org_notes_verify() {
        let v = Verifier::parse(SUMDB_VKEY).unwrap();
        for note in REAL_NOTES {
            let text = open(note.as_bytes(), &v).unwrap();
            assert!(note.starts_with(text));
            assert!(text.starts_with("go.sum database tree\n"));
            // Changing any single byte of the text breaks the note.
            for i in [0, 21, text.len() - 2] {
                let mut bad = note.as_bytes().to_vec();
                bad[i] ^= 0x01;
                assert!(open(&bad, &v).is_err(), "{note:?} byte {i}");
            }
        }
    }

    #[test]
    fn base64_matches_go() {
        // Padding is required; non-zero trailing bits are tolerated;
        // newlines are skipped.
        assert_eq!(decode_std_base64(b"QQ=="), Some(b"A".to_vec()));
        assert_eq!(decode_std_base64(b"QR=="), Some(b"A".to_vec()));
        assert_eq!(decode_std_base64(b"QQ"), None);
        assert_eq!(decode_std_base64(b"QQ="), None);
        assert_eq!(decode_std_base64(b"QQ==QQ=="), None);
        assert_eq!(decode_std_base64(b"Q\r\nQ=\n="), Some(b"A".to_vec()));
        assert_eq!(decode_std_base64(b""), Some(Vec::new()));
    }
}
