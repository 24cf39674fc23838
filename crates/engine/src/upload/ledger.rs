//! What was sent of each file, per server, kept beside the sync state: a
//! file already uploaded with the same content (its MD5 and size) is not
//! sent again.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::upload::files::Found;
use crate::upload::report::Kind;
use crate::workspace::state::write_atomic;

const STATE_VERSION: u32 = 1;

/// What was last sent of one file: its MD5 and size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Of the file as it is on disk (what was sent was scrubbed from it).
    pub md5: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// How it went (scrubbed, gzipped), for the report only.
    #[serde(skip)]
    pub note: Option<String>,
}

/// Which files of a workspace one server has, as uploaded by agnes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadState {
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub server: String,
    /// Per transcript file name.
    #[serde(default)]
    pub sessions: BTreeMap<String, Sent>,
    #[serde(default)]
    pub local_md: Option<Sent>,
}

impl UploadState {
    pub(super) fn new(server: &str) -> UploadState {
        UploadState {
            version: STATE_VERSION,
            server: server.to_string(),
            ..Default::default()
        }
    }

    pub fn sent(&self, kind: Kind, name: &str) -> Option<&Sent> {
        match kind {
            Kind::Session => self.sessions.get(name),
            Kind::LocalMd => self.local_md.as_ref(),
        }
    }

    pub(super) fn record(&mut self, kind: Kind, name: &str, sent: Sent) {
        match kind {
            Kind::Session => {
                self.sessions.insert(name.to_string(), sent);
            }
            Kind::LocalMd => self.local_md = Some(sent),
        }
    }

    /// Forgets files that are gone from the workspace; true when any were.
    pub(super) fn keep_only(&mut self, found: &[Found]) -> bool {
        let before = (self.sessions.len(), self.local_md.is_some());
        self.sessions.retain(|name, _| {
            found
                .iter()
                .any(|f| f.kind == Kind::Session && f.name == *name)
        });
        if !found.iter().any(|f| f.kind == Kind::LocalMd) {
            self.local_md = None;
        }
        before != (self.sessions.len(), self.local_md.is_some())
    }
}

/// Whether a file with this content was already sent.
pub fn is_unchanged(sent: Option<&Sent>, md5: &str, size: u64) -> bool {
    sent.is_some_and(|s| s.md5 == md5 && s.size == size)
}

/// Writes the state atomically; a failure is a notice (the files were sent;
/// they will merely be sent again). True when written.
pub(super) fn save(path: &Path, state: &mut UploadState, notices: &mut Vec<String>) -> bool {
    state.version = STATE_VERSION;
    let json = serde_json::to_vec_pretty(&state).expect("state serializes");
    match write_atomic(path, &json) {
        Ok(()) => true,
        Err(e) => {
            let notice = format!("upload state not saved, so these files will be sent again: {e}");
            if !notices.contains(&notice) {
                notices.push(notice);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::files::LOCAL_MD_NAME;

    #[test]
    fn only_the_same_content_counts_as_unchanged() {
        let sent = Sent {
            md5: "abc".into(),
            size: 3,
            uploaded_at: None,
            note: None,
        };
        assert!(is_unchanged(Some(&sent), "abc", 3));
        assert!(!is_unchanged(Some(&sent), "abd", 3));
        assert!(!is_unchanged(Some(&sent), "abc", 4));
        assert!(!is_unchanged(None, "abc", 3));
    }

    #[test]
    fn state_keys_sessions_by_name_and_forgets_files_that_are_gone() {
        let mut state = UploadState::new("s");
        let sent = |md5: &str| Sent {
            md5: md5.into(),
            size: 1,
            uploaded_at: None,
            note: None,
        };
        state.record(Kind::Session, "a.jsonl", sent("1"));
        state.record(Kind::Session, "b.jsonl", sent("2"));
        state.record(Kind::LocalMd, LOCAL_MD_NAME, sent("3"));
        assert_eq!(state.sent(Kind::Session, "b.jsonl").unwrap().md5, "2");
        assert_eq!(state.sent(Kind::LocalMd, LOCAL_MD_NAME).unwrap().md5, "3");
        let found = vec![Found::session(
            "a.jsonl".into(),
            "/ws/user/sessions/a.jsonl".into(),
            Ok(1),
        )];
        assert!(state.keep_only(&found));
        assert_eq!(state.sessions.keys().collect::<Vec<_>>(), ["a.jsonl"]);
        assert_eq!(state.local_md, None);
        assert!(!state.keep_only(&found));
    }
}
