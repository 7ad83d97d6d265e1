//! Safe display of foreign text: everything a peer hands us that ends up
//! where a person reads it (stderr, so cron mail; the summary; `status`;
//! the run log in the state database) goes through here first.
//!
//! A peer controls those bytes, so shown raw they could rewrite the
//! terminal (an ANSI escape), forge a line of our own (`\nerror: …`), hide
//! or reorder text (bidirectional overrides, zero-width characters) or
//! flood the mail (a 60 MB line). [`text`] escapes every character that is
//! not plainly visible (`\u{1b}`, `\n`, `\u{202e}` …) and cuts what is left
//! at [`MAX_CHARS`] characters with a marker saying how much was left out;
//! [`quoted`] does the same inside double quotes, for messages that quote a
//! value. Both are total: any input gives one short, single line.
//!
//! This module depends on nothing else of gomirror.

use std::fmt::Write;

/// How many characters of one foreign value a message shows.
pub const MAX_CHARS: usize = 200;

/// Whether `c` is shown as it is: visible, and unable to move the cursor,
/// change the terminal's state or reorder what follows.
fn plain(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !c.is_control()
        && !matches!(
            u32::from(c),
            // Soft hyphen, zero-width and direction marks, line and paragraph
            // separators, bidirectional embeddings, overrides and isolates,
            // invisible operators, the byte-order mark, interlinear annotation.
            0xAD | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        )
}

/// Whether `s` would be shown as it is: every character plain visible text
/// (an identifier with a documented form must be, to be stored raw).
pub fn is_plain(s: &str) -> bool {
    s.chars().all(plain)
}

fn push_escaped(out: &mut String, c: char, quote: bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '"' | '\\' if quote => {
            out.push('\\');
            out.push(c);
        }
        c if plain(c) => out.push(c),
        // Writing to a String cannot fail.
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

fn render(s: &str, max: usize, quote: bool) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 2);
    if quote {
        out.push('"');
    }
    let mut shown_bytes = s.len();
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n == max {
            shown_bytes = i;
            break;
        }
        push_escaped(&mut out, c, quote);
    }
    if quote {
        out.push('"');
    }
    if shown_bytes < s.len() {
        let _ = write!(out, "… ({} more bytes)", s.len() - shown_bytes);
    }
    out
}

/// `s` escaped and cut at [`MAX_CHARS`] characters: one short, visible line.
pub fn text(s: &str) -> String {
    render(s, MAX_CHARS, false)
}

/// [`text`] with another length.
pub fn text_max(s: &str, max: usize) -> String {
    render(s, max, false)
}

/// `s` in double quotes (a `"` or `\` in it escaped), escaped and cut as
/// [`text`]: for messages that quote a value.
pub fn quoted(s: &str) -> String {
    render(s, MAX_CHARS, true)
}

/// Bytes that should be text: invalid UTF-8 becomes U+FFFD, then [`text`].
pub fn bytes(b: &[u8]) -> String {
    // Only the head can be shown: do not decode a 60 MB line to show 200
    // characters of it (4 bytes per character at most).
    let head = &b[..b.len().min(MAX_CHARS * 4 + 4)];
    let mut s = text(&String::from_utf8_lossy(head));
    if head.len() < b.len() && !s.ends_with("more bytes)") {
        let _ = write!(s, "… ({} more bytes)", b.len() - head.len());
    }
    s
}

/// A multi-line foreign text (a server's error page), each line shown as
/// [`text`], at most `lines` non-blank ones joined with ` / `: one line.
pub fn lines(s: &str, lines: usize) -> String {
    shown_lines(s.lines().map(str::trim).filter(|l| !l.is_empty()), lines).join(" / ")
}

/// A multi-line foreign text (a signed note that failed), each line shown
/// as [`text`] on a line of its own, at most `lines` of them.
pub fn block(s: &str, lines: usize) -> String {
    shown_lines(s.lines(), lines).join("\n")
}

fn shown_lines<'a>(all: impl Iterator<Item = &'a str> + Clone, lines: usize) -> Vec<String> {
    let mut parts: Vec<String> = all.clone().take(lines).map(text).collect();
    let more = all.count() - parts.len();
    if more > 0 {
        parts.push(format!(
            "({more} more line{})",
            if more == 1 { "" } else { "s" }
        ));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_shown_as_it_is() {
        assert_eq!(text("golang.org/x/mod@v0.22.0"), "golang.org/x/mod@v0.22.0");
        assert_eq!(text("naïve café"), "naïve café");
        assert_eq!(quoted("a b"), "\"a b\"");
    }

    #[test]
    fn escapes_and_forged_lines_become_visible_text() {
        let hostile = "\u{1b}[2J\u{1b}[1;31mok\nerror: forged\r\u{7}\u{9b}x\u{202e}gnp.exe\u{200b}";
        let s = text(hostile);
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert_eq!(
            s,
            "\\u{1b}[2J\\u{1b}[1;31mok\\nerror: forged\\r\\u{7}\\u{9b}x\\u{202e}gnp.exe\\u{200b}"
        );
        assert_eq!(quoted("say \"hi\" \\"), "\"say \\\"hi\\\" \\\\\"");
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let long = "x".repeat(60 << 20);
        let s = text(&long);
        assert_eq!(
            s,
            format!(
                "{}… ({} more bytes)",
                "x".repeat(MAX_CHARS),
                (60 << 20) - MAX_CHARS
            )
        );
        let s = bytes(long.as_bytes());
        assert!(s.len() < 300 && s.ends_with("more bytes)"), "{s}");
        assert_eq!(text_max("abcdef", 3), "abc… (3 more bytes)");
        // Cut on a character, never inside one.
        assert_eq!(text_max("ééé", 2), "éé… (2 more bytes)");
        assert_eq!(bytes(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn several_lines_are_joined_and_counted() {
        assert_eq!(lines("a\n\nb\nc\n", 2), "a / b / (1 more line)");
        assert_eq!(lines("only\n", 8), "only");
        assert_eq!(block("a\n\n\u{1b}b\n", 8), "a\n\n\\u{1b}b");
        assert_eq!(block("a\nb\nc", 2), "a\nb\n(1 more line)");
    }
}
