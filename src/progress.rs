//! `agnes_sync(progress := true)`: one line on stderr that shows each table
//! being downloaded with its bytes, redrawn in place. `da` asks for it when
//! its stderr is a terminal; SQL callers get nothing unless they ask.
//!
//! Every frame is written in one `write` as `\r<text>\x1b[K` and the line is
//! cleared with `\r\x1b[K` when the sync ends, so a reader of the stream (`da`
//! forwards it) can tell the frames from anything else DuckDB prints.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agnes_engine::Progress;

/// Redraws at most this often; a fast download would otherwise flood stderr.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Stay within one line of an 80-column terminal, or `\r` cannot redraw it.
const MAX_COLUMNS: usize = 79;

pub struct StderrProgress {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Tables being downloaded: id, bytes so far, expected bytes.
    active: Vec<(String, u64, Option<u64>)>,
    done: usize,
    failed: usize,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl StderrProgress {
    pub fn new() -> Self {
        StderrProgress {
            state: Mutex::new(State::default()),
        }
    }

    fn update(&self, force: bool, change: impl FnOnce(&mut State)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut state);
        let due = state.last_draw.is_none_or(|t| t.elapsed() >= REDRAW_EVERY);
        if force || due {
            state.last_draw = Some(Instant::now());
            state.drawn = true;
            let frame = format!("\r{}\x1b[K", line(&state));
            // A closed stderr is no reason to fail a sync.
            let _ = std::io::stderr().write_all(frame.as_bytes());
        }
    }
}

impl Progress for StderrProgress {
    fn start(&self, table: &str, total_bytes: Option<u64>) {
        self.update(true, |s| {
            s.active.retain(|(id, ..)| id != table);
            s.active.push((table.to_string(), 0, total_bytes));
        });
    }

    fn advance(&self, table: &str, bytes: u64) {
        self.update(false, |s| {
            if let Some(entry) = s.active.iter_mut().find(|(id, ..)| id == table) {
                entry.1 += bytes;
            }
        });
    }

    fn finish(&self, table: &str, ok: bool) {
        self.update(true, |s| {
            s.active.retain(|(id, ..)| id != table);
            match ok {
                true => s.done += 1,
                false => s.failed += 1,
            }
        });
    }
}

impl Drop for StderrProgress {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if state.drawn {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
}

/// `agnes: 2 done, 1 failed | orders 1.2 MiB/2.6 MiB | customers 12 KiB/30 KiB`
fn line(state: &State) -> String {
    let mut text = format!("agnes: {} done", state.done);
    if state.failed > 0 {
        text.push_str(&format!(", {} failed", state.failed));
    }
    for (id, bytes, total) in &state.active {
        text.push_str(&format!(" | {id} {}", size(*bytes)));
        if let Some(total) = total {
            text.push_str(&format!("/{}", size(*total)));
        }
    }
    match text.char_indices().nth(MAX_COLUMNS) {
        Some((cut, _)) => {
            let mut cut_text = text[..cut].to_string();
            cut_text.pop();
            cut_text.push('…');
            cut_text
        }
        None => text,
    }
}

/// Bytes for people: `512 B`, `1.2 KiB`, `3.4 MiB`.
fn size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        value /= 1024.0;
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
    }
    format!("{value:.1} TiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_each_active_table_with_bytes() {
        let state = State {
            active: vec![
                ("orders".into(), 1_300_000, Some(2_700_000)),
                ("customers".into(), 10, None),
            ],
            done: 2,
            failed: 1,
            ..Default::default()
        };
        assert_eq!(
            line(&state),
            "agnes: 2 done, 1 failed | orders 1.2 MiB/2.6 MiB | customers 10 B"
        );
    }

    #[test]
    fn line_fits_one_terminal_row() {
        let state = State {
            active: (0..10)
                .map(|i| (format!("in.c-crm.table{i}"), 5000, Some(9000)))
                .collect(),
            ..Default::default()
        };
        let text = line(&state);
        assert_eq!(text.chars().count(), MAX_COLUMNS);
        assert!(text.ends_with('…'));
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
