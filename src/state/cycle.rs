//! Work spread over runs: a pass over a whole set (the tree for strays, the
//! published versions for rechecks and for `verify --slice`) done a stretch
//! per run, so that every item is visited once per period whatever the set's
//! size, and no run pays for the whole set.
//!
//! A [`Cycle`] is where such a pass stands, kept in `meta` under its name:
//! when it began, how many items it has visited, when the last run took its
//! stretch, and the last item visited (a position in the set's key order).
//! [`Cycle::due`] says how large the next stretch is: as many items as keep
//! the pass on schedule (the share of the period elapsed since it began,
//! minus what is done), so runs that come irregularly still finish the pass
//! on time; a run after a long pause does at most `max_gap`'s worth, so it
//! does not take the whole set at once (the pass then ends late).

use rusqlite::params;

use super::{Result, State, err};

/// Where a pass spread over runs stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cycle {
    /// When the current pass began (Unix seconds).
    pub started: Option<i64>,
    /// Items visited in the current pass.
    pub done: u64,
    /// When the last run took its stretch (Unix seconds).
    pub last_run: Option<i64>,
    /// The last item visited in this pass: (module id, version) for
    /// versions; (0, tree key) for the tree.
    pub after: Option<(i64, String)>,
    /// Items the last complete pass visited (0: none completed yet).
    pub last_total: u64,
}

impl Cycle {
    /// How many items this run visits so that a set of `total` items is
    /// covered once every `period` seconds (0: all of it on every run). A
    /// pass that never ran counts as begun `first_gap` seconds ago; a run
    /// takes at most `max_gap` seconds' worth.
    pub fn due(&self, total: u64, period: i64, now: i64, first_gap: i64, max_gap: i64) -> u64 {
        let left = total.saturating_sub(self.done);
        if period <= 0 {
            return left;
        }
        let started = self.started.unwrap_or(now - first_gap);
        let elapsed = (now - started).max(0) as u128;
        let target = (total as u128 * elapsed).div_ceil(period as u128);
        let behind = target.saturating_sub(self.done as u128);
        let since_last = self
            .last_run
            .map_or(first_gap, |t| (now - t).max(0))
            .min(max_gap)
            .max(0) as u128;
        let cap = (total as u128 * since_last).div_ceil(period as u128);
        behind.min(cap).min(left as u128) as u64
    }

    /// A run visited `n` more items, the last of them at `at`.
    pub fn advance(&mut self, n: u64, at: Option<(i64, String)>, now: i64) {
        self.started.get_or_insert(now);
        self.done += n;
        if at.is_some() {
            self.after = at;
        }
        self.last_run = Some(now);
    }

    /// The pass reached the end of the set: the next one begins now.
    pub fn wrap(&mut self, now: i64) {
        self.last_total = self.done;
        self.started = Some(now);
        self.done = 0;
        self.after = None;
        self.last_run = Some(now);
    }
}

impl State {
    /// The pass named `name` (`meta` keys `<name>.…`).
    pub fn cycle(&self, name: &str) -> Result<Cycle> {
        let num = |k: &str| -> Result<Option<i64>> {
            Ok(self
                .meta(&format!("{name}.{k}"))?
                .and_then(|v| v.parse().ok()))
        };
        let after = match (num("after_module")?, self.meta(&format!("{name}.after"))?) {
            (Some(id), Some(v)) => Some((id, v)),
            _ => None,
        };
        Ok(Cycle {
            started: num("started")?,
            done: num("done")?.unwrap_or(0).max(0) as u64,
            last_run: num("last_run")?,
            after,
            last_total: num("last_total")?.unwrap_or(0).max(0) as u64,
        })
    }

    /// Records where the pass named `name` stands, in one transaction.
    pub fn save_cycle(&mut self, name: &str, c: &Cycle) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| err(&path, &format!("cannot record the {name} pass"), x);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut set = tx
                .prepare_cached(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )
                .map_err(e)?;
            let mut unset = tx
                .prepare_cached("DELETE FROM meta WHERE key = ?1")
                .map_err(e)?;
            let fields = [
                ("started", c.started.map(|t| t.to_string())),
                ("done", Some(c.done.to_string())),
                ("last_run", c.last_run.map(|t| t.to_string())),
                (
                    "after_module",
                    c.after.as_ref().map(|(id, _)| id.to_string()),
                ),
                ("after", c.after.as_ref().map(|(_, k)| k.clone())),
                ("last_total", Some(c.last_total.to_string())),
            ];
            for (k, v) in fields {
                let key = format!("{name}.{k}");
                match v {
                    Some(v) => set.execute(params![key, v]).map_err(e)?,
                    None => unset.execute([key]).map_err(e)?,
                };
            }
        }
        tx.commit().map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::open_temp;
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_pass_keeps_its_schedule_whatever_the_size_and_the_run_interval() {
        // A week's pass over a million items, a run every five minutes.
        for total in [1_000u64, 1_000_000, 72_000_000] {
            let mut c = Cycle::default();
            let mut now = 1_000_000;
            let mut runs = 0;
            loop {
                let n = c.due(total, 7 * DAY, now, 300, 3600);
                c.advance(n, Some((1, format!("{}", c.done + n))), now);
                runs += 1;
                if c.done >= total {
                    break;
                }
                now += 300;
                assert!(runs < 3000, "{total}: the pass did not end");
            }
            let days = (now - 1_000_000) as f64 / DAY as f64;
            assert!(
                (6.9..=7.01).contains(&days),
                "{total}: a week's pass took {days} days"
            );
        }
    }

    #[test]
    fn irregular_runs_catch_up_but_a_long_pause_is_not_made_up_at_once() {
        let total = 100_000;
        let mut c = Cycle::default();
        let now = 10 * DAY;
        let first = c.due(total, 10 * DAY, now, 300, 3600);
        assert_eq!(first, total * 300 / (10 * DAY) as u64 + 1);
        c.advance(first, None, now);
        // A run two hours later does an hour's worth: the pause is not made up at once.
        let later = c.due(total, 10 * DAY, now + 7200, 300, 3600);
        assert_eq!(later, (total * 3600).div_ceil(10 * DAY as u64));
        // Every run: all of it when the period is 0; never more than is left.
        assert_eq!(c.due(total, 0, now, 300, 3600), total - first);
        c.done = total - 5;
        assert_eq!(c.due(total, DAY, now + DAY, 300, DAY), 5);
        c.wrap(now + DAY);
        assert_eq!((c.done, c.last_total, c.after), (0, total - 5, None));
    }

    #[test]
    fn a_pass_is_stored_and_read_back() {
        let (_d, mut st) = open_temp();
        assert_eq!(st.cycle("strays").unwrap(), Cycle::default());
        let c = Cycle {
            started: Some(10),
            done: 7,
            last_run: Some(20),
            after: Some((0, "a/b/@v/v1.0.0.zip".into())),
            last_total: 99,
        };
        st.save_cycle("strays", &c).unwrap();
        assert_eq!(st.cycle("strays").unwrap(), c);
        let mut d = c.clone();
        d.after = None;
        st.save_cycle("strays", &d).unwrap();
        assert_eq!(st.cycle("strays").unwrap(), d);
        assert_eq!(st.cycle("recheck").unwrap(), Cycle::default());
    }
}
