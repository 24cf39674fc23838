//! Where the server, the token and the workspace come from (CONTRACT.md §2),
//! drop-in compatible with the old `da`: argument, then environment, then the
//! files in the config dir, then the default.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::secrets::token::Token;

pub const DEFAULT_SERVER: &str = "http://localhost:8000";

/// What the caller passed explicitly (SQL named parameters, `da` flags).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub server: Option<String>,
    pub token: Option<String>,
    pub workspace: Option<String>,
    /// The caller says a `workspace` that is neither the configured one nor
    /// one agnes has used is meant (`new_workspace := true`).
    pub new_workspace: bool,
}

/// Resolved settings for one call.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL without a trailing slash.
    pub server: String,
    pub token: Option<Token>,
    pub config_dir: PathBuf,
    /// Absolute path of the workspace.
    pub workspace: PathBuf,
    /// The server the environment or `config.yaml` names (or the default):
    /// the only one a token from the environment or `token.json` goes to.
    pub configured_server: String,
    /// The token was passed with the call (`token :=`, not stored).
    pub token_explicit: bool,
}

impl Settings {
    /// Resolves from the process environment and the current directory.
    pub fn resolve(overrides: &Overrides) -> Result<Settings> {
        let cwd = std::env::current_dir().map_err(Error::io("read current directory", "."))?;
        Settings::resolve_with(overrides, &|name| std::env::var(name).ok(), &cwd)
    }

    /// Resolves with an explicit environment, for tests.
    pub fn resolve_with(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<Settings> {
        let config_dir = config_dir_with(env)?;
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let server = match nonblank(&overrides.server) {
            Some(server) => normalize_server(&server)?,
            None => String::new(),
        };
        // Read only when needed: a broken config.yaml must not fail a call
        // that names its server and token.
        let configured = || -> Result<String> {
            match env("AGNES_SERVER").or_else(|| env("DA_SERVER")) {
                Some(server) => normalize_server(&server),
                None => normalize_server(
                    &read_server(&config_dir)?.unwrap_or_else(|| DEFAULT_SERVER.to_string()),
                ),
            }
        };
        let token_explicit = nonblank(&overrides.token).is_some();
        let token = find_token(overrides, &env, &config_dir)?.map(|(token, _)| token);
        let (server, configured_server) = match server.is_empty() {
            true => {
                let configured = configured()?;
                (configured.clone(), configured)
            }
            // A stored token never goes to a server the call names; with
            // the call's own token the configuration does not matter.
            false if token_explicit => (server.clone(), server),
            false => (server, configured()?),
        };
        let workspace = workspace_dir_with(overrides.workspace.as_deref(), &env, cwd);
        if overrides.workspace.is_some() && !overrides.new_workspace {
            let configured = workspace_dir_with(None, &env, cwd);
            check_other_workspace(&workspace, &configured)?;
        }
        Ok(Settings {
            server,
            token,
            config_dir,
            workspace,
            configured_server,
            token_explicit,
        })
    }

    /// The token, or an error saying where it was looked for. A stored
    /// token (environment, `token.json`) is only ever for the configured
    /// server: SQL the user did not write (a view in a shared database)
    /// must not send it elsewhere.
    pub fn require_token(&self) -> Result<&Token> {
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| Error::NoToken(self.config_dir.join("token.json")))?;
        if !self.token_explicit && self.server != self.configured_server {
            return Err(Error::Config(format!(
                "server := '{}' is not the configured server ({}); the stored token goes only \
                 there. Pass token := '...' for that server, or set AGNES_SERVER",
                self.server, self.configured_server
            )));
        }
        Ok(token)
    }

    /// What hides this call's token in any text agnes shows or stores.
    pub fn redactor(&self) -> crate::secrets::redact::Redactor {
        crate::secrets::redact::Redactor::new(self.token.as_ref())
    }
}

/// A `workspace :=` that is not the configured workspace must be one agnes
/// already uses (it has `.agnes/` or `server/parquet/`): otherwise SQL the
/// user did not write could make agnes write into, or read from, any folder.
fn check_other_workspace(workspace: &Path, configured: &Path) -> Result<()> {
    let same = |a: &Path, b: &Path| {
        a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
    };
    if same(workspace, configured)
        || workspace.join(".agnes").is_dir()
        || workspace.join("server").join("parquet").is_dir()
    {
        return Ok(());
    }
    Err(Error::Config(format!(
        "workspace := '{}' is not an agnes workspace (no .agnes folder) and not the configured \
         one ({}); pass new_workspace := true to start one there",
        workspace.display(),
        configured.display()
    )))
}

/// The workspace alone, without reading the config dir (`da hooks install`):
/// argument, `AGNES_LOCAL_DIR`, `DA_LOCAL_DIR`, then the current directory.
pub fn workspace_dir(argument: Option<&str>) -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(Error::io("read current directory", "."))?;
    Ok(workspace_dir_with(
        argument,
        &|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()),
        &cwd,
    ))
}

fn workspace_dir_with(
    argument: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> PathBuf {
    let workspace = argument
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .or_else(|| env("AGNES_LOCAL_DIR"))
        .or_else(|| env("DA_LOCAL_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| cwd.to_path_buf());
    if workspace.is_absolute() {
        workspace
    } else {
        cwd.join(workspace)
    }
}

/// Where `da login` stores the server and the token, without reading
/// anything there (it must work when the files are broken):
/// `AGNES_CONFIG_DIR`, then `DA_CONFIG_DIR`, then the first `da` folder of
/// `config_dir_candidates` that already holds a file, else
/// `$XDG_CONFIG_HOME/da` when that is set, else `~/.config/da`. Whatever it
/// writes is then read first: it comes before the Agnes CLI's folder.
pub fn config_dir() -> Result<PathBuf> {
    let env = |name: &str| std::env::var(name).ok();
    if let Some(dir) = explicit_config_dir(&env) {
        return Ok(dir);
    }
    let candidates = config_dir_candidates(&env)?;
    let da_dirs: Vec<&PathBuf> = candidates.iter().filter(|d| d.ends_with("da")).collect();
    if let Some(dir) = da_dirs.iter().find(|d| holds_config(d)) {
        return Ok(dir.to_path_buf());
    }
    let xdg = xdg_config_home(&env).map(|x| x.join("da"));
    Ok(xdg.unwrap_or_else(|| da_dirs[0].clone()))
}

/// The config dir to read (CONTRACT.md §2, then the newer places):
/// `AGNES_CONFIG_DIR`, then `DA_CONFIG_DIR`; else the first folder of
/// `config_dir_candidates` that holds a `config.yaml` or a `token.json`;
/// else `~/.config/da`, the documented default. A folder is taken whole:
/// the server and the token always come from the same one, so a token is
/// never sent to another folder's server.
fn config_dir_with(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(dir) = explicit_config_dir(env) {
        return Ok(dir);
    }
    let candidates = config_dir_candidates(env)?;
    Ok(candidates
        .iter()
        .find(|d| holds_config(d))
        .unwrap_or(&candidates[0])
        .clone())
}

fn explicit_config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    env("AGNES_CONFIG_DIR")
        .or_else(|| env("DA_CONFIG_DIR"))
        .map(PathBuf::from)
}

/// The folders looked in when no variable names one, in order:
/// `~/.config/da` (the old CLI's, CONTRACT.md §2), `$XDG_CONFIG_HOME/da`,
/// `$XDG_CONFIG_HOME/agnes`, `~/.config/agnes` (the current Agnes CLI's).
/// The first is `~/.config/da`, or `$XDG_CONFIG_HOME/da` without a HOME.
pub fn config_dir_candidates(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<PathBuf>> {
    // Windows sets USERPROFILE, and HOME only in some shells (Git Bash).
    let home = env("HOME")
        .filter(|v| !v.trim().is_empty())
        .or_else(|| env("USERPROFILE").filter(|v| !v.trim().is_empty()))
        .map(|h| Path::new(&h).join(".config"));
    let xdg = xdg_config_home(env);
    if home.is_none() && xdg.is_none() {
        return Err(Error::Config(
            "neither HOME nor USERPROFILE is set; set AGNES_CONFIG_DIR to the folder with config.yaml".into(),
        ));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    let order = [
        (&home, "da"),
        (&xdg, "da"),
        (&xdg, "agnes"),
        (&home, "agnes"),
    ];
    for (base, name) in order {
        if let Some(base) = base {
            let dir = base.join(name);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    Ok(dirs)
}

/// `$XDG_CONFIG_HOME`, when set to an absolute path (the XDG rule: a
/// relative one is ignored).
fn xdg_config_home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn holds_config(dir: &Path) -> bool {
    dir.join("config.yaml").is_file() || dir.join("token.json").is_file()
}

/// The token and where it came from (`token :=`/`--token`, a variable's
/// name, or the file), argument first (CONTRACT.md §2).
fn find_token(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    config_dir: &Path,
) -> Result<Option<(Token, String)>> {
    if let Some(token) = nonblank(&overrides.token).and_then(Token::new) {
        return Ok(Some((token, "argument".into())));
    }
    for name in ["AGNES_TOKEN", "DA_TOKEN"] {
        if let Some(token) = env(name).and_then(Token::new) {
            return Ok(Some((token, name.into())));
        }
    }
    let file = config_dir.join("token.json");
    Ok(read_token(config_dir)?.map(|t| (t, file.display().to_string())))
}

/// Where the token of `settings` comes from, for `da status`: `AGNES_TOKEN`,
/// `DA_TOKEN`, the `token.json` path, or `argument`; `None` without one.
pub fn token_source(overrides: &Overrides, settings: &Settings) -> Option<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    find_token(overrides, &env, &settings.config_dir)
        .ok()
        .flatten()
        .map(|(_, source)| source)
}

fn nonblank(value: &Option<String>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `http(s)://host[:port][/prefix]` without a trailing slash.
pub fn normalize_server(server: &str) -> Result<String> {
    let server = server.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(server)
        .map_err(|e| Error::Config(format!("server URL {server:?} is not valid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Config(format!(
            "server URL {server:?} must start with http:// or https://"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "server URL must not carry credentials; use the token instead".into(),
        ));
    }
    Ok(server.to_string())
}

#[derive(serde::Deserialize)]
struct ConfigFile {
    server: Option<String>,
}

fn read_server(config_dir: &Path) -> Result<Option<String>> {
    let path = config_dir.join("config.yaml");
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let config: ConfigFile = serde_yaml_ng::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "{} is not valid YAML with a `server:` key: {e}",
            path.display()
        ))
    })?;
    Ok(config.server.filter(|s| !s.trim().is_empty()))
}

#[derive(serde::Deserialize)]
struct TokenFile {
    access_token: Option<String>,
}

fn read_token(config_dir: &Path) -> Result<Option<Token>> {
    let path = config_dir.join("token.json");
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    // The message must not quote the file: it holds the secret.
    let file: TokenFile = serde_json::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "{} is not valid JSON with an `access_token` (line {})",
            path.display(),
            e.line()
        ))
    })?;
    Ok(file.access_token.and_then(Token::new))
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// Stores what `da login` was given: `config.yaml` with the server and
/// `token.json` with the token, created with mode 0600. Other keys of an
/// existing `config.yaml` are kept.
pub fn save_login(config_dir: &Path, server: &str, token: &Token) -> Result<()> {
    let server = normalize_server(server)?;
    fs::create_dir_all(config_dir).map_err(Error::io("create", config_dir))?;
    let config_path = config_dir.join("config.yaml");
    let mut config: serde_yaml_ng::Mapping = match read_optional(&config_path)? {
        Some(text) if !text.trim().is_empty() => serde_yaml_ng::from_str(&text).map_err(|e| {
            Error::Config(format!("{} is not valid YAML: {e}", config_path.display()))
        })?,
        _ => serde_yaml_ng::Mapping::new(),
    };
    config.insert("server".into(), server.into());
    let yaml = serde_yaml_ng::to_string(&config).map_err(|e| Error::Config(e.to_string()))?;
    write_private(&config_path, yaml.as_bytes())?;
    let json = serde_json::json!({ "access_token": token.expose() });
    write_private(&config_dir.join("token.json"), json.to_string().as_bytes())
}

/// Writes a file atomically with mode 0600 from its first byte on: the
/// temporary file `write_atomic` renames into place is created 0600, so the
/// secret is never readable by others, not even for a moment. Windows has no
/// modes: the file takes the access rules of its folder, which under the
/// user's profile admit only the user, administrators and the system.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::workspace::state::write_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(overrides: &Overrides, vars: &[(&str, &str)]) -> Result<Settings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve_with(
            overrides,
            &|name| vars.get(name).cloned(),
            Path::new("/work/here"),
        )
    }

    #[test]
    fn defaults_without_anything() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(
            &Overrides::default(),
            &[("HOME", dir.path().to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(s.server, DEFAULT_SERVER);
        assert!(s.token.is_none());
        assert_eq!(s.config_dir, dir.path().join(".config/da"));
        assert_eq!(s.workspace, Path::new("/work/here"));
        assert!(matches!(s.require_token(), Err(Error::NoToken(_))));
    }

    #[test]
    fn argument_beats_agnes_env_beats_da_env_beats_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().to_str().unwrap();
        fs::write(
            dir.path().join("config.yaml"),
            "server: http://from-file:1\nother: kept\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("token.json"),
            r#"{"access_token": "file-token"}"#,
        )
        .unwrap();

        let files = resolve(&Overrides::default(), &[("DA_CONFIG_DIR", cfg)]).unwrap();
        assert_eq!(files.server, "http://from-file:1");
        assert_eq!(files.token.unwrap().expose(), "file-token");

        let da = [
            ("DA_CONFIG_DIR", cfg),
            ("DA_SERVER", "http://da:2/"),
            ("DA_TOKEN", "da-token"),
        ];
        let s = resolve(&Overrides::default(), &da).unwrap();
        assert_eq!(
            (s.server.as_str(), s.token.unwrap().expose()),
            ("http://da:2", "da-token")
        );

        let agnes = [
            ("AGNES_CONFIG_DIR", cfg),
            ("DA_CONFIG_DIR", "/nowhere"),
            ("AGNES_SERVER", "http://agnes:3"),
            ("DA_SERVER", "http://da:2"),
            ("AGNES_TOKEN", "agnes-token"),
            ("DA_TOKEN", "da-token"),
            ("AGNES_LOCAL_DIR", "rel/ws"),
            ("DA_LOCAL_DIR", "/da/ws"),
        ];
        let s = resolve(&Overrides::default(), &agnes).unwrap();
        assert_eq!(
            (s.server.as_str(), s.token.unwrap().expose()),
            ("http://agnes:3", "agnes-token")
        );
        assert_eq!(s.workspace, Path::new("/work/here/rel/ws"));

        let args = Overrides {
            server: Some("https://arg:4".into()),
            token: Some("arg-token".into()),
            workspace: Some("/arg/ws".into()),
            new_workspace: true,
        };
        let s = resolve(&args, &agnes).unwrap();
        assert_eq!(
            (s.server.as_str(), s.token.unwrap().expose()),
            ("https://arg:4", "arg-token")
        );
        assert_eq!(s.workspace, Path::new("/arg/ws"));
    }

    // Windows: the profile folder, where Python's Path.home() (the old CLI) looked too.
    #[test]
    fn userprofile_stands_in_for_home() {
        let dir = tempfile::tempdir().unwrap();
        let s = resolve(
            &Overrides::default(),
            &[("USERPROFILE", dir.path().to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(s.config_dir, dir.path().join(".config").join("da"));
        let err = resolve(&Overrides::default(), &[]).unwrap_err();
        assert!(
            err.to_string().contains("neither HOME nor USERPROFILE"),
            "{err}"
        );
    }

    #[test]
    fn config_dir_falls_back_to_xdg_and_the_agnes_cli_folder_in_order() {
        let home = tempfile::tempdir().unwrap();
        let xdg = tempfile::tempdir().unwrap();
        let h = home.path().to_str().unwrap();
        let x = xdg.path().to_str().unwrap();
        let dir_of = |vars: &[(&str, &str)]| resolve(&Overrides::default(), vars).unwrap();
        let put = |dir: &Path, server: &str| {
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join("config.yaml"), format!("server: {server}\n")).unwrap();
        };
        // Nothing anywhere: the documented default.
        let s = dir_of(&[("HOME", h), ("XDG_CONFIG_HOME", x)]);
        assert_eq!(s.config_dir, home.path().join(".config/da"));

        // The fallbacks, last first: each one found hides the later ones.
        put(&home.path().join(".config/agnes"), "http://home-agnes");
        assert_eq!(dir_of(&[("HOME", h)]).server, "http://home-agnes");
        put(&xdg.path().join("agnes"), "http://xdg-agnes");
        let both = [("HOME", h), ("XDG_CONFIG_HOME", x)];
        assert_eq!(dir_of(&both).server, "http://xdg-agnes");
        // A relative XDG_CONFIG_HOME is ignored, as the XDG rules say.
        assert_eq!(
            dir_of(&[("HOME", h), ("XDG_CONFIG_HOME", "rel")]).server,
            "http://home-agnes"
        );
        put(&xdg.path().join("da"), "http://xdg-da");
        assert_eq!(dir_of(&both).server, "http://xdg-da");
        put(&home.path().join(".config/da"), "http://home-da");
        assert_eq!(dir_of(&both).server, "http://home-da");
        // CONTRACT.md §2's variables still come first.
        let explicit = [
            ("HOME", h),
            ("XDG_CONFIG_HOME", x),
            ("DA_CONFIG_DIR", "/none"),
        ];
        assert_eq!(dir_of(&explicit).config_dir, Path::new("/none"));

        // No HOME, but XDG_CONFIG_HOME: enough.
        let s = dir_of(&[("XDG_CONFIG_HOME", x)]);
        assert_eq!(s.server, "http://xdg-da");
        assert!(resolve(&Overrides::default(), &[]).is_err());
    }

    #[test]
    fn a_stored_token_goes_only_to_the_configured_server() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().to_str().unwrap();
        fs::write(dir.path().join("config.yaml"), "server: http://home:1\n").unwrap();
        fs::write(
            dir.path().join("token.json"),
            r#"{"access_token": "stored"}"#,
        )
        .unwrap();
        let elsewhere = |token: Option<&str>| Overrides {
            server: Some("http://elsewhere:2".into()),
            token: token.map(String::from),
            ..Default::default()
        };
        // From token.json or the environment: refused for another server.
        for vars in [
            vec![("AGNES_CONFIG_DIR", cfg)],
            vec![("AGNES_CONFIG_DIR", cfg), ("AGNES_TOKEN", "env")],
        ] {
            let s = resolve(&elsewhere(None), &vars).unwrap();
            let err = s.require_token().unwrap_err().to_string();
            assert!(
                err.contains("not the configured server (http://home:1)"),
                "{err}"
            );
            assert!(!err.contains("stored") || !err.contains("env"), "{err}");
        }
        // The same server named again, the call's own token, or the server
        // configured by the environment: fine.
        let same = Overrides {
            server: Some("http://home:1/".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&same, &[("AGNES_CONFIG_DIR", cfg)])
                .unwrap()
                .require_token()
                .unwrap()
                .expose(),
            "stored"
        );
        let own = resolve(&elsewhere(Some("own")), &[("AGNES_CONFIG_DIR", cfg)]).unwrap();
        assert_eq!(own.require_token().unwrap().expose(), "own");
        let env = [
            ("AGNES_CONFIG_DIR", cfg),
            ("AGNES_SERVER", "http://elsewhere:2"),
        ];
        assert!(resolve(&elsewhere(None), &env)
            .unwrap()
            .require_token()
            .is_ok());
    }

    #[test]
    fn another_workspace_must_be_an_agnes_one_or_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let other = dir.path().join("victim");
        fs::create_dir_all(&other).unwrap();
        let args = |new_workspace| Overrides {
            workspace: Some(other.to_string_lossy().into()),
            new_workspace,
            ..Default::default()
        };
        let err = resolve(&args(false), &[("HOME", home)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not an agnes workspace") && err.contains("new_workspace := true"),
            "{err}"
        );
        assert!(resolve(&args(true), &[("HOME", home)]).is_ok());
        // The configured one (AGNES_LOCAL_DIR) needs nothing.
        let local = other.to_string_lossy().to_string();
        assert!(resolve(&args(false), &[("HOME", home), ("AGNES_LOCAL_DIR", &local)]).is_ok());
        // One agnes has used before needs nothing either.
        fs::create_dir_all(other.join(".agnes")).unwrap();
        assert!(resolve(&args(false), &[("HOME", home)]).is_ok());
    }

    #[test]
    fn bad_server_urls_are_config_errors() {
        for bad in ["localhost:8000", "ftp://x", "http://user:secret@host"] {
            let err = resolve(
                &Overrides {
                    server: Some(bad.into()),
                    ..Default::default()
                },
                &[("HOME", "/h")],
            );
            assert!(matches!(err, Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn broken_token_file_does_not_leak_its_content() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("token.json"), "not json but a secret-value").unwrap();
        let err = resolve(
            &Overrides::default(),
            &[("AGNES_CONFIG_DIR", dir.path().to_str().unwrap())],
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("token.json") && !message.contains("secret-value"),
            "{message}"
        );
    }

    #[test]
    fn save_login_writes_private_files_and_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("config.yaml"),
            "server: http://old\nteam: data\n",
        )
        .unwrap();
        save_login(dir.path(), "http://new:9/", &Token::new("tok").unwrap()).unwrap();
        let s = resolve(
            &Overrides::default(),
            &[("AGNES_CONFIG_DIR", dir.path().to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(
            (s.server.as_str(), s.token.unwrap().expose()),
            ("http://new:9", "tok")
        );
        assert!(fs::read_to_string(dir.path().join("config.yaml"))
            .unwrap()
            .contains("team: data"));
        // Windows has no modes: the files take the folder's (the user's) access rules.
        #[cfg(unix)]
        for name in ["token.json", "config.yaml"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
}
