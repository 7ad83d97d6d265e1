//! `gomirror keygen NAME`: a new note signer key for signing bundles.
//!
//! Writes `NAME.key` (the signer key, `PRIVATE+KEY+…`, readable by its owner
//! only) for `export.signing_key`, and `NAME.pub` (the verifier key) for the
//! far side's `import.trusted_keys`. Existing files are never replaced. The
//! name is the key's name in Go's note format (no `+`, no spaces); slashes
//! are allowed and become `_` in the file names.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::sumdb::note::{Signer, Verifier};

/// Writes the key pair; returns the lines to print.
pub fn run(name: &str, dir: &Path) -> Result<Vec<String>, String> {
    if name.is_empty()
        || name.contains('+')
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "key name {name:?} is not usable: a note key name has no `+`, space or control character"
        ));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("cannot get random bytes for the key: {e}"))?;
    let signer = Signer::from_seed(name, seed);
    let vkey = signer.verifier_key();
    Verifier::parse(&vkey).map_err(|e| format!("key name {name:?} is not usable: {e}"))?;
    let stem: String = name
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    let (key_path, pub_path) = (
        dir.join(format!("{stem}.key")),
        dir.join(format!("{stem}.pub")),
    );
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(format!(
                "`{}` exists; refusing to replace a key (remove it first if it is meant to go)",
                p.display()
            ));
        }
    }
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), String> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|e| format!("cannot create `{}`: {e}", path.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    };
    write(&key_path, &format!("{}\n", signer.signer_key()), 0o600)?;
    write(&pub_path, &format!("{vkey}\n"), 0o644)?;
    Ok(vec![
        format!(
            "wrote {} (secret: for [export] signing_key on the connected mirror)",
            key_path.display()
        ),
        format!(
            "wrote {} (for [import] trusted_keys on the far side)",
            pub_path.display()
        ),
        vkey,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_signs_and_verifies_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let lines = run("mirror.example/bundles", dir.path()).unwrap();
        let skey = std::fs::read_to_string(dir.path().join("mirror.example_bundles.key")).unwrap();
        let vkey = std::fs::read_to_string(dir.path().join("mirror.example_bundles.pub")).unwrap();
        assert_eq!(lines[2], vkey.trim());
        let signer = Signer::parse(skey.trim()).unwrap();
        let verifier = Verifier::parse(vkey.trim()).unwrap();
        let note = signer.sign("gomirror bundle x\n");
        assert_eq!(
            crate::sumdb::note::open(note.as_bytes(), &verifier).unwrap(),
            "gomirror bundle x\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("mirror.example_bundles.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = run("mirror.example/bundles", dir.path()).unwrap_err();
        assert!(again.contains("refusing to replace"), "{again}");
        assert!(run("bad name", dir.path()).is_err());
        assert!(run("a+b", dir.path()).is_err());
    }
}
