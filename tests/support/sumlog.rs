//! The fake checksum database's transparency log, computed independently of
//! `gomirror::sumdb::tlog`: level arrays of RFC 6962 hashes (level 0 = record
//! hashes, level k+1 = hashes of complete pairs at level k), tree hashes by the
//! RFC 6962 split, and tiles as slices of a level. Plus a note signer.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

use super::goformat;

pub type Hash = [u8; 32];

/// Tile height used by sum.golang.org and by the fake.
pub const TILE_HEIGHT: u32 = 8;
const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

pub fn record_hash(text: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(text);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Record text of filler record `i` (records that precede the corpus so that
/// record ids are not small and upper tile levels get used).
pub fn filler_text(i: u64) -> String {
    let a = goformat::base64(&goformat::sha256(format!("filler {i} zip").as_bytes()));
    let b = goformat::base64(&goformat::sha256(format!("filler {i} mod").as_bytes()));
    format!("filler.example/f{i} v1.0.0 h1:{a}\nfiller.example/f{i} v1.0.0/go.mod h1:{b}\n")
}

/// The go.sum record text for a module version.
pub fn record_text(path: &str, version: &str, zip_h1: &str, mod_h1: &str) -> String {
    format!("{path} {version} {zip_h1}\n{path} {version}/go.mod {mod_h1}\n")
}

/// An append-only log of records.
#[derive(Clone)]
pub struct Log {
    filler: u64,
    /// Texts of the records after the fillers.
    texts: Vec<String>,
    /// Records replaced in a fork.
    overrides: BTreeMap<u64, String>,
    levels: Vec<Vec<Hash>>,
}

impl Log {
    pub fn new(filler: u64) -> Log {
        let mut log = Log {
            filler,
            texts: Vec::new(),
            overrides: BTreeMap::new(),
            levels: vec![Vec::new()],
        };
        for i in 0..filler {
            log.push_leaf(record_hash(filler_text(i).as_bytes()));
        }
        log
    }

    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    pub fn filler(&self) -> u64 {
        self.filler
    }

    /// Appends a record, returning its id.
    pub fn append(&mut self, text: String) -> u64 {
        let id = self.size();
        self.push_leaf(record_hash(text.as_bytes()));
        self.texts.push(text);
        id
    }

    fn push_leaf(&mut self, h: Hash) {
        self.levels[0].push(h);
        let mut k = 0;
        while self.levels[k].len().is_multiple_of(2) {
            let n = self.levels[k].len();
            let parent = node_hash(&self.levels[k][n - 2], &self.levels[k][n - 1]);
            if self.levels.len() == k + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[k + 1].push(parent);
            k += 1;
        }
    }

    pub fn record_text(&self, id: u64) -> Option<String> {
        if id >= self.size() {
            return None;
        }
        if let Some(t) = self.overrides.get(&id) {
            return Some(t.clone());
        }
        if id < self.filler {
            Some(filler_text(id))
        } else {
            Some(self.texts[(id - self.filler) as usize].clone())
        }
    }

    /// RFC 6962 Merkle tree hash of the first `n` records (`n <= size`).
    pub fn tree_hash(&self, n: u64) -> Hash {
        assert!(n <= self.size());
        if n == 0 {
            return goformat::sha256(b"");
        }
        self.subtree(0, n)
    }

    fn subtree(&self, lo: u64, n: u64) -> Hash {
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][(lo >> level) as usize];
        }
        let k = if n.is_power_of_two() {
            n / 2
        } else {
            1 << (63 - n.leading_zeros())
        };
        node_hash(&self.subtree(lo, k), &self.subtree(lo + k, n - k))
    }

    /// Tile `tile/8/<level>/<n>[.p/<width>]` as it exists in the tree of
    /// `tree_size` records: `width` hashes at tree level `8·level` from index
    /// `n·256`. `None` when the tree is too small to have them all.
    pub fn tile(&self, level: u32, n: u64, width: u64, tree_size: u64) -> Option<Vec<u8>> {
        let tree_level = level.checked_mul(TILE_HEIGHT)?;
        if tree_level >= 63 || width == 0 || width > TILE_WIDTH || tree_size > self.size() {
            return None;
        }
        let end = n.checked_mul(TILE_WIDTH)?.checked_add(width)?;
        // Hash i at this level covers records [i << tree_level, (i+1) << tree_level).
        let needed = (end as u128) << tree_level;
        if needed > tree_size as u128 {
            return None;
        }
        let hashes = self.levels.get(tree_level as usize)?;
        let start = (n * TILE_WIDTH) as usize;
        let mut out = Vec::with_capacity(width as usize * 32);
        for h in &hashes[start..end as usize] {
            out.extend_from_slice(h);
        }
        Some(out)
    }

    /// Data tile: the texts of records `n·256 .. n·256+width`, each followed by
    /// a blank line.
    pub fn data_tile(&self, n: u64, width: u64, tree_size: u64) -> Option<Vec<u8>> {
        if width == 0 || width > TILE_WIDTH || tree_size > self.size() {
            return None;
        }
        let start = n.checked_mul(TILE_WIDTH)?;
        let end = start.checked_add(width)?;
        if end > tree_size {
            return None;
        }
        let mut out = Vec::new();
        for id in start..end {
            out.extend_from_slice(self.record_text(id)?.as_bytes());
            out.push(b'\n');
        }
        Some(out)
    }

    /// A log with the same size whose record `at` differs (every tree hash
    /// covering `at` differs from this log's); later records are the same.
    pub fn fork(&self, at: u64) -> Log {
        assert!(at < self.size());
        let mut fork = self.clone();
        let a = goformat::base64(&goformat::sha256(format!("fork {at} zip").as_bytes()));
        let b = goformat::base64(&goformat::sha256(format!("fork {at} mod").as_bytes()));
        fork.overrides.insert(
            at,
            format!("fork.example/r{at} v1.0.0 h1:{a}\nfork.example/r{at} v1.0.0/go.mod h1:{b}\n"),
        );
        for (k, level) in fork.levels.iter_mut().enumerate() {
            level.truncate((at >> k) as usize);
        }
        for id in at..self.size() {
            let text = match fork.overrides.get(&id) {
                Some(t) => t.clone(),
                None => self.record_text(id).expect("id within the log"),
            };
            fork.push_leaf(record_hash(text.as_bytes()));
        }
        fork
    }
}

/// `tlog.FormatTree`.
pub fn tree_note_text(size: u64, hash: &Hash) -> String {
    format!("go.sum database tree\n{size}\n{}\n", goformat::base64(hash))
}

/// An Ed25519 note signer (`golang.org/x/mod/sumdb/note`).
///
/// Private to the fake rather than `gomirror::sumdb::note::Signer`: when this was
/// written that was still `todo!()`, and a test oracle independent of the code
/// under test is worth keeping anyway (`selftest` cross-checks the two once
/// gomirror's is implemented).
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_hash: u32,
}

impl NoteSigner {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> NoteSigner {
        let key = SigningKey::from_bytes(&seed);
        let mut material = vec![1u8];
        material.extend_from_slice(&key.verifying_key().to_bytes());
        let mut h = Sha256::new();
        h.update(name.as_bytes());
        h.update(b"\n");
        h.update(&material);
        let digest: Hash = h.finalize().into();
        let key_hash = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        NoteSigner {
            name: name.to_string(),
            key,
            key_hash,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<hash>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut material = vec![1u8];
        material.extend_from_slice(&self.key.verifying_key().to_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_hash,
            goformat::base64(&material)
        )
    }

    /// `PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>`.
    pub fn signer_key(&self) -> String {
        let mut material = vec![1u8];
        material.extend_from_slice(&self.key.to_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.key_hash,
            goformat::base64(&material)
        )
    }

    /// The raw signature bytes (key hash || Ed25519 signature).
    fn signature(&self, text: &str) -> Vec<u8> {
        let sig = self.key.sign(text.as_bytes());
        let mut bytes = self.key_hash.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        bytes
    }

    /// `note.Sign`: `text + "\n" + "— <name> <base64 sig>\n"`.
    pub fn sign(&self, text: &str) -> String {
        assert!(text.ends_with('\n'), "note text must end in a newline");
        format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            goformat::base64(&self.signature(text))
        )
    }

    /// Like `sign`, but with one byte of the Ed25519 signature flipped (key
    /// name and key hash intact).
    pub fn sign_corrupted(&self, text: &str) -> String {
        let mut sig = self.signature(text);
        sig[4 + 10] ^= 0x55;
        format!(
            "{text}\n\u{2014} {} {}\n",
            self.name,
            goformat::base64(&sig)
        )
    }
}
