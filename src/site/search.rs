//! How a module is found: the term it is searched by, and the shard that
//! lists it. The same rules are in `search.js` (the browser's side); the
//! state database files each module under the longest shard that is a
//! prefix of its term and splits a shard past [`SHARD_MAX`] modules
//! ([`crate::state::State::site_split_shards`]).

/// The most modules a shard lists before it is split by the next character
/// of its terms: a browser fetches one shard of about this many paths per
/// search, whatever the mirror's size (two million modules make a few
/// thousand shards). A shard whose modules all have the same term (every
/// `…/utils`) cannot split and stays whole.
pub const SHARD_MAX: usize = 1000;

/// The term a module path is searched by: its last element, lowercased —
/// the one before a major-version suffix (`/v2`) when there is one.
pub fn term(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some(&last) = parts.last() else {
        return String::new();
    };
    let last = if is_major(last) && parts.len() > 1 {
        parts[parts.len() - 2]
    } else {
        last
    };
    last.to_lowercase()
}

/// `v2`, `v10`: a major-version suffix (as `search.js` reads one: `v` and digits).
fn is_major(elem: &str) -> bool {
    elem.len() > 1 && elem.starts_with('v') && elem[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The shards one character longer than `prefix`, of the sorted `all`.
pub fn children<'a>(prefix: &str, all: &'a [String]) -> Vec<&'a str> {
    let depth = prefix.chars().count() + 1;
    all.iter()
        .map(String::as_str)
        .filter(|s| s.starts_with(prefix) && s.chars().count() == depth)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms() {
        assert_eq!(term("github.com/spf13/cobra"), "cobra");
        assert_eq!(term("github.com/Azure/Go-Autorest/v14"), "go-autorest");
        assert_eq!(term("gopkg.in/yaml.v3"), "yaml.v3");
        assert_eq!(term("example.com"), "example.com");
        assert_eq!(term("example.com/v2"), "example.com");
        assert_eq!(term("example.com/x/v"), "v");
    }

    #[test]
    fn children_are_one_character_longer() {
        let all: Vec<String> = ["", "a", "ab", "abc", "ac", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(children("", &all), ["a", "b"]);
        assert_eq!(children("a", &all), ["ab", "ac"]);
        assert!(children("b", &all).is_empty());
    }
}
