//! Where things live in a workspace (CONTRACT.md §3), plus agnes's own
//! bookkeeping under `.agnes/`.

use std::path::{Path, PathBuf};

/// A workspace folder and the paths agnes uses in it.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    pub fn new(root: impl Into<PathBuf>) -> Workspace {
        Workspace { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn parquet_dir(&self) -> PathBuf {
        self.root.join("server").join("parquet")
    }

    /// `server/parquet/<id>.parquet`, for an id that passed `check_table_id`.
    pub fn parquet_file(&self, table_id: &str) -> PathBuf {
        self.parquet_dir().join(format!("{table_id}.parquet"))
    }

    /// `server/parquet/<id>/`: the folder of a partitioned table's parts,
    /// for an id that passed `check_table_id`.
    pub fn table_dir(&self, table_id: &str) -> PathBuf {
        self.parquet_dir().join(table_id)
    }

    pub fn rules_dir(&self) -> PathBuf {
        self.root.join(".claude").join("rules")
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.root.join("user").join("sessions")
    }

    pub fn local_md(&self) -> PathBuf {
        self.root.join(".claude").join("CLAUDE.local.md")
    }

    pub fn analytics_db(&self) -> PathBuf {
        self.root
            .join("user")
            .join("duckdb")
            .join("analytics.duckdb")
    }

    fn agnes_dir(&self) -> PathBuf {
        self.root.join(".agnes")
    }

    /// Sync state for one server: a second server or workspace never shares
    /// it (the old global file gave wrong "unchanged" answers, CONTRACT.md §3).
    pub fn sync_state_file(&self, server: &str) -> PathBuf {
        self.agnes_dir()
            .join(format!("sync-state-{}.json", server_key(server)))
    }

    /// Which transcripts and notes were uploaded to one server.
    pub fn upload_state_file(&self, server: &str) -> PathBuf {
        self.agnes_dir()
            .join(format!("upload-state-{}.json", server_key(server)))
    }

    /// The reports of the last runs of `da` on this workspace (`runs.rs`).
    pub fn runs_dir(&self) -> PathBuf {
        self.agnes_dir().join("runs")
    }

    /// What the last full sync left in the database file (`sync/quick/`).
    pub fn views_stamp_file(&self, server: &str) -> PathBuf {
        self.agnes_dir()
            .join(format!("views-stamp-{}.stamp", server_key(server)))
    }

    /// Held for the length of a sync or upload on this workspace.
    pub fn lock_file(&self) -> PathBuf {
        self.agnes_dir().join("lock")
    }
}

/// A file-name-safe key for a server URL: readable host and port, plus a
/// short digest of the whole URL so that two prefixes on one host differ.
fn server_key(server: &str) -> String {
    let readable: String = server
        .split("://")
        .last()
        .unwrap_or(server)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let short = &crate::digest::md5_hex(server.as_bytes())[..8];
    format!("{readable}-{short}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_differ_per_server_and_are_plain_names() {
        let ws = Workspace::new("/ws");
        let a = ws.sync_state_file("http://localhost:8000");
        let b = ws.sync_state_file("http://localhost:8001");
        let c = ws.sync_state_file("https://agnes.example.com/prefix");
        assert_ne!(a, b);
        assert!(a.starts_with("/ws/.agnes"));
        for p in [&a, &b, &c] {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(!name.contains('/') && !name.contains(':'), "{name}");
        }
        assert!(c.to_str().unwrap().contains("agnes.example.com_prefix"));
    }

    #[test]
    fn contract_layout() {
        let ws = Workspace::new("/ws");
        assert_eq!(
            ws.parquet_file("in.c-crm.people"),
            Path::new("/ws/server/parquet/in.c-crm.people.parquet")
        );
        assert_eq!(
            ws.analytics_db(),
            Path::new("/ws/user/duckdb/analytics.duckdb")
        );
        assert_eq!(ws.rules_dir(), Path::new("/ws/.claude/rules"));
    }
}
