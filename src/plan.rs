//! Plan: what a sync would do, from the state database. `sync --dry-run`
//! prints it.

use crate::runner::Fatal;
use crate::state::db::Db;

/// Prints `fetch <module>@<version>` for every version due now, a page at a
/// time (the whole to-do list is never held in memory); returns how many.
pub async fn print_fetches(db: &Db, now: i64, retry_failed: bool) -> Result<u64, Fatal> {
    let mut count = 0u64;
    let mut after: Option<(i64, String)> = None;
    loop {
        let a = after.clone();
        let page = db
            .call(move |s| {
                s.todo_page(
                    a.as_ref().map(|(i, v)| (*i, v.as_str())),
                    1000,
                    now,
                    retry_failed,
                )
            })
            .await?;
        if page.is_empty() {
            break;
        }
        for t in &page {
            crate::report::outln(format_args!("fetch {}@{}", t.path, t.version));
        }
        count += page.len() as u64;
        after = page.last().map(|t| (t.module_id, t.version.clone()));
    }
    Ok(count)
}
