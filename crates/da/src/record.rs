//! The report every sync or upload leaves in `<workspace>/.agnes/runs`
//! (the engine's `runs` module keeps the files): what ran, when, what it
//! did, what failed, how long it took. Hooks run with their output thrown
//! away; this is how one sees afterwards what they did (`da status`).

use std::io::ErrorKind;
use std::path::Path;
use std::time::Instant;

use agnes_engine::config::workspace_dir;
use agnes_engine::workspace::layout::Workspace;
use agnes_engine::workspace::runs::{self, Run};

use crate::args::SyncArgs;
use crate::outcome::{Failure, Outcome};
use crate::summary::{SyncSummary, UploadSummary};

/// A run being recorded. A dry run writes nothing, so it has none.
pub struct Recorder {
    workspace: Workspace,
    run: Run,
    started: Instant,
}

impl Recorder {
    /// Writes the `running` report of `da sync` with `args`, or says that
    /// the workspace is read-only. Other trouble writing the report does not
    /// stop the run: the report is a record, not the work.
    pub fn start(args: &SyncArgs) -> Result<Option<Recorder>, Failure> {
        if args.dry_run {
            return Ok(None);
        }
        let root = workspace_dir(args.target.workspace.as_deref())?;
        let workspace = Workspace::new(&root);
        if let Err(e) = runs::prepare(&workspace) {
            return match is_read_only(&e) {
                true => Err(read_only(&root, &e)),
                false => Ok(None),
            };
        }
        let command = command_line(args);
        let run = match &args.detached_run {
            Some(id) => Run::start_as(id.clone(), command, true),
            None => Run::start(command, false),
        };
        let recorder = Recorder {
            workspace,
            run,
            started: Instant::now(),
        };
        if let Err(e) = runs::save(&recorder.workspace, &recorder.run) {
            if is_read_only(&e) {
                return Err(read_only(&root, &e));
            }
        }
        Ok(Some(recorder))
    }

    pub fn did(&mut self, line: impl Into<String>) {
        self.run.did.push(line.into());
    }

    pub fn error(&mut self, line: impl Into<String>) {
        self.run.errors.push(line.into());
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.run.notes.push(line.into());
    }

    /// What a sync did, failed and noted.
    pub fn sync(&mut self, s: &SyncSummary) {
        let count = |action: &str| s.with(action).count();
        self.did(format!(
            "tables: {} downloaded, {} unchanged, {} remote, {} removed, {} failed",
            count("downloaded"),
            count("unchanged"),
            count("skipped_remote"),
            count("removed"),
            count("failed"),
        ));
        if !s.rules.action.is_empty() {
            self.did(format!(
                "rules: {} ({} files)",
                s.rules.action, s.rules.files
            ));
        }
        for t in s.failed() {
            self.error(format!(
                "{}: {}",
                t.table,
                t.error.as_deref().unwrap_or("failed")
            ));
        }
        if let Some(e) = &s.rules.error {
            self.note(format!("rules: {e}"));
        }
        for n in s.rules_warnings.iter().chain(&s.notices) {
            self.note(n.clone());
        }
        if let Some(pending) = &s.views_pending {
            self.note(format!("views: {pending}"));
        }
    }

    /// What an upload did and failed.
    pub fn upload(&mut self, s: &UploadSummary) {
        self.did(format!(
            "uploads: {} sessions, {} CLAUDE.local.md, {} unchanged, {} failed",
            s.sessions("uploaded").len(),
            usize::from(s.local_md("uploaded").is_some()),
            s.with("unchanged").len(),
            s.with("failed").len(),
        ));
        for f in s.with("failed") {
            self.error(format!(
                "{}: {}",
                f.path,
                f.error.as_deref().unwrap_or("failed")
            ));
        }
        for n in &s.notices {
            self.note(n.clone());
        }
    }

    /// Writes the final report.
    pub fn finish(mut self, result: &Result<Outcome, Failure>) {
        let outcome = match result {
            Ok(Outcome::Done) => runs::Outcome::Done,
            Ok(Outcome::Partial) => runs::Outcome::Partial,
            Err(failure) => {
                if !failure.message.is_empty() {
                    self.run.errors.push(failure.message.clone());
                }
                runs::Outcome::Failed
            }
        };
        self.run.finish(outcome, self.started.elapsed());
        let _ = runs::save(&self.workspace, &self.run);
    }
}

/// Runs `work` with a report around it (none for a dry run).
pub fn around(
    args: &SyncArgs,
    work: impl FnOnce(Option<&mut Recorder>) -> Result<Outcome, Failure>,
) -> Result<Outcome, Failure> {
    let mut recorder = Recorder::start(args)?;
    let result = work(recorder.as_mut());
    if let Some(recorder) = recorder {
        recorder.finish(&result);
    }
    result
}

/// The command as a person would type it (without --detach, --wait and
/// the output flags, which do not change what is done).
pub fn command_line(args: &SyncArgs) -> String {
    let mut line = String::from("da sync");
    if args.upload_only {
        line += " --upload-only";
    }
    if args.upload_first {
        line += " --upload-first";
    }
    if args.docs_only {
        line += " --docs-only";
    }
    if let Some(table) = &args.table {
        line += &format!(" --table {table}");
    }
    line
}

/// The failure for a workspace da cannot write in.
pub fn read_only(root: &Path, e: &std::io::Error) -> Failure {
    // The OS's own words, without the temporary file's path that some
    // errors carry.
    let why = match e.kind() {
        ErrorKind::ReadOnlyFilesystem => "read-only file system".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    Failure::new(format!(
        "the workspace {} is read-only ({why}): da keeps the tables, the database and its run \
         reports there; make it writable, or pass --workspace DIR for one that is",
        root.display()
    ))
}

/// Whether an error writing in the workspace means it is read-only.
pub fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
    )
}
