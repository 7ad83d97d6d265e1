//! Time as gomirror reads and writes it: the clock, RFC 3339 timestamps of the
//! index feed (Go's exact shape, checked by jiff), and how times are shown.

/// Seconds since the Unix epoch (a debug build's test clock may run ahead:
/// `GOMIRROR_TEST_CLOCK_OFFSET_SECS`, read once).
pub fn now() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let offset = *OFFSET.get_or_init(|| crate::env::test::clock_offset().unwrap_or(0));
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        .saturating_add(offset)
}

/// RFC 3339 with optional fractional seconds: `2019-04-10T19:08:52.997264Z`
/// or `…-07:00`, naming a real instant.
///
/// The shape is checked byte by byte first because the index's `since`
/// parameter is parsed by Go's `time.Parse(time.RFC3339, …)`: a cursor in any
/// other shape jiff would accept (a space for `T`, `[UTC]` suffixes, no
/// seconds) would be refused by the index on the next run. Go also refuses a
/// leap second (`:60`), which jiff would quietly read as `:59`. jiff then
/// rejects what no calendar has: `2023-02-30`, `24:00:00`, `13` as a month.
pub fn is_rfc3339(s: &str) -> bool {
    has_go_rfc3339_shape(s) && s.parse::<jiff::Timestamp>().is_ok()
}

fn has_go_rfc3339_shape(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[17] < b'6')
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 9 {
            return false;
        }
    }
    match &b[i..] {
        [b'Z'] | [b'z'] => true,
        [s, h1, h2, b':', m1, m2] if (*s == b'+' || *s == b'-') => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// Orders two RFC 3339 timestamps as instants (offsets applied, fractions to
/// the nanosecond), so `12:08:52-07:00` equals `19:08:52Z`.
///
/// Callers pass timestamps that passed [`is_rfc3339`]; to stay a total order
/// anyway, a string that is not a timestamp sorts before every timestamp, and
/// two such strings compare by their bytes.
pub fn timestamp_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// `2026-11-24 15:53:00 UTC`.
pub fn format_time(secs: i64) -> String {
    timestamp(secs)
        .strftime("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// `2026-11-24T15:53:00Z`.
pub fn rfc3339(secs: i64) -> String {
    timestamp(secs).to_string()
}

/// Unix seconds as an instant. Times come from the state database and the
/// clock, so a value past jiff's range (±9999 years) is clamped rather than
/// allowed to fail a status report.
fn timestamp(secs: i64) -> jiff::Timestamp {
    let secs = secs.clamp(
        jiff::Timestamp::MIN.as_second(),
        jiff::Timestamp::MAX.as_second(),
    );
    jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
/// Serde: Unix seconds written as RFC 3339 (`status --json` shows every
/// time in one form).
pub fn serialize_rfc3339<S: serde::Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*secs))
}

/// [`serialize_rfc3339`] for an optional time (`null` when absent).
pub fn serialize_rfc3339_opt<S: serde::Serializer>(
    secs: &Option<i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secs {
        Some(t) => s.serialize_some(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// `2m 05s`, `3.2s`. Ours, not `indicatif::HumanDuration`: that one rounds to
/// a single unit ("2 minutes" for 2m 59s, "0 seconds" for 0.4s), too coarse
/// for a summary that operators compare from run to run.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
