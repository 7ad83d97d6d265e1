//! The two Unicode properties Go's module rules use that Rust's standard
//! library does not expose: general category L (`unicode.IsLetter`, which
//! decides which non-ASCII characters a zip file path may contain) and simple
//! case folding (`strings.EqualFold`, which decides when two zip entries
//! collide). Both come from tables generated from the Unicode Character
//! Database by `gen_unicode_tables.py`, at the Unicode version Go uses.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::unicode_tables::{FOLD_KEYS, LETTER_RANGES};

/// Go's `unicode.IsLetter`: general category Lu, Ll, Lt, Lm or Lo.
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    let cp = u32::from(c);
    LETTER_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                Ordering::Less
            } else if lo > cp {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

/// The representative of `c`'s simple case-folding class: two characters are
/// equal under Go's `strings.EqualFold` exactly when their keys are equal.
pub(crate) fn fold_key(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    match FOLD_KEYS.binary_search_by_key(&u32::from(c), |&(cp, _)| cp) {
        Ok(i) => char::from_u32(FOLD_KEYS[i].1).unwrap_or(c),
        Err(_) => c,
    }
}

/// Go's `zip.strToFold`: a string that is equal for `s` and `t` exactly when
/// `strings.EqualFold(s, t)`.
pub(crate) fn str_to_fold(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(fold_key).collect())
}

/// Go's `strings.EqualFold`.
pub(crate) fn equal_fold(a: &str, b: &str) -> bool {
    a.chars().map(fold_key).eq(b.chars().map(fold_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_general_category_l() {
        for c in ['a', 'Z', 'é', 'я', 'ж', 'ß', 'ǅ', 'ʰ', '中', 'ا'] {
            assert!(is_letter(c), "{c:?}");
        }
        // Nl and combining marks are alphabetic in Rust but not letters in Go.
        for c in ['0', '_', ' ', '☺', 'Ⅰ', '\u{0345}', '\u{0301}', '٣'] {
            assert!(!is_letter(c), "{c:?}");
        }
    }

    #[test]
    fn fold_classes_match_go_simple_fold() {
        assert!(equal_fold("K", "\u{212A}")); // Kelvin sign
        assert!(equal_fold("s", "ſ"));
        assert!(equal_fold("σ", "ς"));
        assert!(equal_fold("Σ", "ς"));
        assert!(equal_fold("ß", "ẞ"));
        assert!(equal_fold("ǅ", "ǆ"));
        assert!(equal_fold("M.GO", "m.go"));
        // İ and ı only have full/Turkic foldings, so Go keeps them apart.
        assert!(!equal_fold("İ", "i"));
        assert!(!equal_fold("ı", "i"));
        assert!(!equal_fold("ss", "ß"));
        assert_eq!(str_to_fold("abc/d.go"), "abc/d.go");
        assert_eq!(str_to_fold("ABC/\u{212A}"), "abc/k");
    }
}
