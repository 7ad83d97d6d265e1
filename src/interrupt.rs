//! SIGINT and SIGTERM: a run stops cleanly instead of dying mid-batch.
//!
//! The first signal is remembered ([`received`]) and wakes whoever waits on
//! [`wait`]: the worker pool takes no new version, abandons the downloads in
//! hand (their temporary files go with them; the versions stay due and the
//! next run fetches them), lets the publisher install what was already
//! verified, and the command returns [`crate::runner::Fatal::Interrupted`].
//! Stages that are not cooperative (an index page being read, a prune) are
//! dropped by the runner once [`GRACE`] has passed — as safe as a crash,
//! which the ordering invariants are built for, but the run is still
//! recorded. A second signal exits at once.
//!
//! The exit code is the shell's for a process killed by that signal, 128 +
//! the signal number: 130 for SIGINT, 143 for SIGTERM. Scripts and systemd
//! already read those as "stopped by a signal", and they cannot be confused
//! with gomirror's own 0–3.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How long a run has, after the first signal, to stop at a point of its own
/// choosing before the runner drops what is left of it.
pub const GRACE: Duration = Duration::from_secs(10);

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static NOTIFY: Notify = Notify::const_new();

/// The signal that asked this process to stop, if one did.
pub fn received() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// Resolves once a stop signal has been received (at once if one was).
pub async fn wait() {
    loop {
        // Created before the check, so a signal in between still wakes it.
        let notified = NOTIFY.notified();
        if received().is_some() {
            return;
        }
        notified.await;
    }
}

/// The exit code of a run stopped by `signal`: 128 + its number.
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// `SIGINT`, `SIGTERM`.
pub fn name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// Records `signal` as received and wakes the waiters (what the handler
/// does; tests call it directly).
pub fn raise(signal: i32) {
    SIGNAL.store(signal, Ordering::SeqCst);
    NOTIFY.notify_waiters();
}

/// Starts listening for SIGINT and SIGTERM; call inside the runtime, once
/// per runtime. Without a runtime able to register handlers the signals keep
/// their default action (the process dies), which is what it was before.
/// `say` prints a line on stderr (this module sits below `report`).
pub fn listen(say: fn(String)) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                Some(()) = int.recv() => libc::SIGINT,
                Some(()) = term.recv() => libc::SIGTERM,
                else => return,
            };
            if let Some(first) = received() {
                say(format!("gomirror: {} again: stopping at once", name(sig)));
                std::process::exit(exit_code(first));
            }
            say(format!(
                "gomirror: {}: stopping; the versions in hand are abandoned and fetched by the next run (send it again to stop at once)",
                name(sig)
            ));
            raise(sig);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_shells() {
        assert_eq!(exit_code(libc::SIGINT), 130);
        assert_eq!(exit_code(libc::SIGTERM), 143);
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
    }
}
