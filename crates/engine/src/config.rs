//! Where the server, the token and the workspace come from (CONTRACT.md §2),
//! drop-in compatible with the old `da`: argument, then environment, then the
//! files in the config dir, then the default.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const DEFAULT_SERVER: &str = "http://localhost:8000";

/// A personal access token. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Option<Token> {
        let value = value.into().trim().to_string();
        (!value.is_empty()).then_some(Token(value))
    }

    /// The secret itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// What the caller passed explicitly (SQL named parameters, `da` flags).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub server: Option<String>,
    pub token: Option<String>,
    pub workspace: Option<String>,
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
        let server = match nonblank(&overrides.server)
            .or_else(|| env("AGNES_SERVER"))
            .or_else(|| env("DA_SERVER"))
        {
            Some(server) => server,
            None => read_server(&config_dir)?.unwrap_or_else(|| DEFAULT_SERVER.to_string()),
        };
        let server = normalize_server(&server)?;
        let token = match nonblank(&overrides.token)
            .or_else(|| env("AGNES_TOKEN"))
            .or_else(|| env("DA_TOKEN"))
        {
            Some(token) => Token::new(token),
            None => read_token(&config_dir)?,
        };
        let workspace = workspace_dir_with(overrides.workspace.as_deref(), &env, cwd);
        Ok(Settings {
            server,
            token,
            config_dir,
            workspace,
        })
    }

    /// The token, or an error saying where it was looked for.
    pub fn require_token(&self) -> Result<&Token> {
        self.token
            .as_ref()
            .ok_or_else(|| Error::NoToken(self.config_dir.join("token.json")))
    }
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

/// The config dir alone, without reading anything in it (`da login` must
/// work when the files there are broken): `AGNES_CONFIG_DIR`, then
/// `DA_CONFIG_DIR`, then `~/.config/da`.
pub fn config_dir() -> Result<PathBuf> {
    config_dir_with(&|name| std::env::var(name).ok())
}

fn config_dir_with(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    match env("AGNES_CONFIG_DIR").or_else(|| env("DA_CONFIG_DIR")) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => {
            // Windows sets USERPROFILE, and HOME only in some shells (Git Bash).
            let home = env("HOME").or_else(|| env("USERPROFILE")).ok_or_else(|| {
                Error::Config(
                    "neither HOME nor USERPROFILE is set; set AGNES_CONFIG_DIR to the folder with config.yaml"
                        .into(),
                )
            })?;
            Ok(Path::new(&home).join(".config").join("da"))
        }
    }
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
    crate::state::write_atomic(path, bytes)
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
    fn token_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Token::new("s3cret").unwrap()),
            "Token(<redacted>)"
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
