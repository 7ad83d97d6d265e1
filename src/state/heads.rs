//! Checksum-database tree heads: the ones this mirror accepted, and which of
//! them a published lookup or `latest` carries.
//!
//! A head is recorded only after its signature and its consistency with the
//! previous one are proven; the largest is what the mirror trusts. A head is
//! "served" once a lookup published with it is in the tree, and the largest
//! served head is what the mirror's own `sumdb/<name>/latest` must show. The
//! table grows by one row per accepted head, so callers ask for the one head
//! they need rather than the list.

use rusqlite::{OptionalExtension, params};

use super::{Result, State};

/// A signed tree head the mirror accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHead {
    pub size: i64,
    pub hash: String,
    pub note: Vec<u8>,
    pub served: bool,
}

impl State {
    /// Records a tree head the mirror accepted (signature and consistency proven).
    pub fn save_head(&mut self, size: i64, hash: &str, note: &[u8]) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO sumdb_trees(size, hash, note) VALUES (?1, ?2, ?3) ON CONFLICT(size) DO NOTHING",
                params![size, hash, note],
            )
            .map_err(|e| self.err(&format!("cannot record tree head of size {size}"), e))?;
        Ok(())
    }

    /// The largest accepted tree head: what this mirror trusts.
    pub fn trusted_head(&self) -> Result<Option<StoredHead>> {
        self.head_where(
            "SELECT size, hash, note, served FROM sumdb_trees ORDER BY size DESC LIMIT 1",
        )
    }

    /// The largest tree head that a published lookup or `latest` carries.
    pub fn largest_served_head(&self) -> Result<Option<StoredHead>> {
        self.head_where(
            "SELECT size, hash, note, served FROM sumdb_trees WHERE served = 1 ORDER BY size DESC LIMIT 1",
        )
    }

    fn head_where(&self, sql: &str) -> Result<Option<StoredHead>> {
        self.conn
            .query_row(sql, [], |r| {
                Ok(StoredHead {
                    size: r.get(0)?,
                    hash: r.get(1)?,
                    note: r.get(2)?,
                    served: r.get(3)?,
                })
            })
            .optional()
            .map_err(|e| self.err("cannot read tree head", e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::open_temp;

    #[test]
    fn the_trusted_head_is_the_largest_and_the_served_one_the_largest_published_with() {
        let (_d, mut st) = open_temp();
        assert_eq!(st.trusted_head().unwrap(), None);
        assert_eq!(st.largest_served_head().unwrap(), None);
        st.save_head(10, "h10", b"note10").unwrap();
        st.save_head(30, "h30", b"note30").unwrap();
        st.save_head(20, "h20", b"note20").unwrap();
        // Recording the same size again keeps the first.
        st.save_head(20, "other", b"other").unwrap();
        assert_eq!(st.trusted_head().unwrap().unwrap().size, 30);
        st.mark_published(&[], &[10, 20], 0).unwrap();
        let served = st.largest_served_head().unwrap().unwrap();
        assert_eq!((served.size, served.hash.as_str()), (20, "h20"));
        assert_eq!(served.note, b"note20");
        assert!(served.served);
    }
}
