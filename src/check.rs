//! Check: the per-version verification. A version is accepted only when its
//! `.info` names it, its zip follows the module zip rules, and both `h1:`
//! hashes equal the checksum database's (proven) record.

use crate::source::index;

/// `.info` files are a few dozen bytes.
pub const INFO_LIMIT: u64 = 64 << 10;

/// Checks an `.info` body: a JSON object whose `Version` is exactly the
/// requested version (as the go command requires) and whose `Time`, if
/// present, is RFC 3339. Returns the time.
pub fn check_info(body: &[u8], version: &str) -> Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    match obj.get("Version").and_then(|v| v.as_str()) {
        Some(got) if got == version => {}
        Some(got) => return Err(format!("it describes version {got:?}, not {version:?}")),
        None => return Err("no Version field".into()),
    }
    match obj.get("Time") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(t)) if index::is_rfc3339(t) => Ok(Some(t.clone())),
        Some(t) => Err(format!("invalid Time {t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_must_name_the_requested_version() {
        assert_eq!(
            check_info(
                br#"{"Version":"v1.0.0","Time":"2020-01-02T17:33:45Z"}"#,
                "v1.0.0"
            )
            .unwrap(),
            Some("2020-01-02T17:33:45Z".into())
        );
        assert_eq!(
            check_info(br#"{"Version":"v1.0.0","Name":"abc","Extra":{}}"#, "v1.0.0").unwrap(),
            None
        );
        assert!(
            check_info(br#"{"Version":"v1.0.1"}"#, "v1.0.0")
                .unwrap_err()
                .contains("v1.0.1")
        );
        assert!(check_info(br#"{"Time":"2020-01-02T17:33:45Z"}"#, "v1.0.0").is_err());
        assert!(check_info(br#"{"Version":"v1.0.0","Time":"later"}"#, "v1.0.0").is_err());
        assert!(check_info(b"<html>", "v1.0.0").is_err());
        assert!(check_info(b"[1]", "v1.0.0").is_err());
    }
}
