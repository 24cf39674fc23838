//! Stopping a run from outside: the DuckDB face cancels when the user
//! interrupts the query (Ctrl-C, `interrupt()`); every wait of the engine
//! looks at the token at least every `TICK`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The longest the engine waits without looking at its `Cancel`.
pub const TICK: Duration = Duration::from_millis(100);

/// Shared by whoever may stop a run and the run itself; clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the run to stop at its next look.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
