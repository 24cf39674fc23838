//! `da login`: stores the server URL in `config.yaml` and the token in
//! `token.json` (mode 0600) in the config dir, for every later command. The
//! token is read from `--token` or standard input and never printed.

use std::io::{BufRead, IsTerminal, Read};

use agnes_engine::config::{config_dir, save_login};
use agnes_engine::secrets::token::Token;

use crate::args::LoginArgs;
use crate::outcome::{Failure, Outcome};
use crate::render;

pub fn run(args: &LoginArgs) -> Result<Outcome, Failure> {
    let token = match &args.token {
        Some(token) => token.clone(),
        None => read_token()?,
    };
    let token = Token::new(token).ok_or_else(|| {
        Failure::new("no token given: pass it on standard input (or --token TOKEN)")
    })?;
    let dir = config_dir()?;
    save_login(&dir, &args.server, &token)?;
    render::out(&format!(
        "Saved the server in {} and the token in {} (mode 0600)\n",
        dir.join("config.yaml").display(),
        dir.join("token.json").display()
    ));
    Ok(Outcome::Done)
}

/// The whole of standard input, or one line typed after a prompt.
fn read_token() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let mut token = String::new();
    let read = match stdin.is_terminal() {
        true => {
            render::err("Paste your Agnes token and press Enter: ");
            stdin.lock().read_line(&mut token)
        }
        false => stdin.lock().read_to_string(&mut token),
    };
    read.map_err(|e| Failure::new(format!("cannot read the token from standard input: {e}")))?;
    Ok(token)
}
