//! The configuration file (`--config FILE`, env `GUTS_HUB_CONFIG`) and `--print-config`.
//!
//! A TOML file whose keys are the flags' names (`max_connections` or `max-connections`), each
//! with a value of the flag's kind: a string, a number, `true`/`false` for switches, an array
//! for a list. Precedence: a flag on the command line, then its environment variable, then the
//! file, then the default. The file's settings are put before the command line's (where the
//! last occurrence of a flag wins), except those whose environment variable is set; so clap
//! parses one command line and every value goes through the flag's own parser.
//!
//! An unknown key, a value of the wrong kind or one the flag refuses is an error naming the
//! file and the key; `main` exits with status 2.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;

/// Flags that are not settings: never read from the file, never printed.
const NOT_SETTINGS: [&str; 4] = ["config", "print_config", "help", "version"];

/// Settings printed masked.
const SECRETS: [&str; 2] = ["token_secret", "publish_key"];

/// Settings printed without the credentials a URL may hold.
const URLS: [&str; 2] = ["broker", "authorize_url"];

/// Pairs of settings that exclude each other: the file's is dropped when the other is given on
/// the command line or in the environment.
const EXCLUSIVE: [(&str, &str); 2] =
    [("token_secret", "token_secret_file"), ("publish_key", "publish_key_file")];

/// The settings of a configuration file.
#[derive(Debug, Default)]
pub struct FileSettings {
    /// As command-line arguments, to go before the real ones.
    pub args: Vec<OsString>,
    /// The settings taken from the file (not overridden by the environment).
    pub ids: Vec<String>,
}

/// The settings of `path`, without those whose environment variable is set.
///
/// # Errors
/// A message naming the file and, for a bad entry, the key.
pub fn read(cmd: &Command, path: &Path) -> Result<FileSettings, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {file}: {e}"))?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| format!("--config {file}: {}", e.message()))?;
    let mut settings = FileSettings::default();
    let args = &mut settings.args;
    let given = |id: &str| {
        setting(cmd, id).is_some_and(|a| {
            a.get_env().is_some_and(|v| std::env::var_os(v).is_some()) || on_command_line(cmd, id)
        })
    };
    for (key, value) in &table {
        let arg = setting(cmd, &key.replace('-', "_")).ok_or_else(|| {
            format!(
                "--config {file}: unknown key `{key}` (the keys are the flags' names, e.g. \
                 `max_connections`; `guts-hub --print-config` prints them all)"
            )
        })?;
        let id = arg.get_id().as_str().to_owned();
        let excluded =
            EXCLUSIVE.iter().any(|&(a, b)| (id == a && given(b)) || (id == b && given(a)));
        // A flag or its environment variable wins over the file: the file's value is left out
        // (not merely overridden, so that a list flag replaces the file's list).
        let env_set = arg.get_env().is_some_and(|v| std::env::var_os(v).is_some());
        if env_set || on_command_line(cmd, &id) || excluded {
            continue;
        }
        let bad = |why: &str| format!("--config {file}: `{key}`: {why}");
        let flag = format!("--{}", arg.get_long().unwrap_or(&id));
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => args.push(flag.into()),
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => {}
            (ArgAction::SetTrue, _) => return Err(bad("expected true or false")),
            (_, value) => {
                let text = scalar_or_list(arg, value).map_err(|why| bad(&why))?;
                check_value(arg, &text).map_err(|why| bad(&why))?;
                // One argument: a value starting with `-` is not taken for a flag.
                args.push(format!("{flag}={text}").into());
            }
        }
        settings.ids.push(id);
    }
    Ok(settings)
}

/// Whether `--id` (or its `=` form) is among the process's own arguments.
fn on_command_line(cmd: &Command, id: &str) -> bool {
    let Some(arg) = setting(cmd, id) else { return false };
    let names: Vec<String> = arg
        .get_long()
        .into_iter()
        .chain(arg.get_all_aliases().unwrap_or_default())
        .map(|n| format!("--{n}"))
        .collect();
    std::env::args_os().skip(1).any(|a| {
        let a = a.to_string_lossy();
        names.iter().any(|f| a == f.as_str() || a.starts_with(&format!("{f}=")))
    })
}

/// `scheme://user:password@host…` without its credentials.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// The flag of setting `id`.
/// The flag of setting `id`: its name, or an alias (the `ServerConfig` field's name where it
/// differs, e.g. `close_timeout` for `close_timeout_secs`).
fn setting<'a>(cmd: &'a Command, id: &str) -> Option<&'a Arg> {
    let named = |a: &Arg| {
        a.get_id() == id
            || a.get_all_aliases().is_some_and(|al| al.iter().any(|x| x.replace('-', "_") == id))
    };
    cmd.get_arguments().find(|a| named(a) && !NOT_SETTINGS.contains(&a.get_id().as_str()))
}

/// A TOML value as the flag's text: a string, a number, or (for a list flag) an array of them.
fn scalar_or_list(arg: &Arg, value: &toml::Value) -> Result<String, String> {
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(n) => Ok(n.to_string()),
        toml::Value::Float(x) => Ok(x.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err("expected a string or a number".to_owned()),
    };
    match (value, arg.get_value_delimiter()) {
        (toml::Value::Array(items), Some(sep)) => {
            let items = items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            Ok(items.join(&sep.to_string()))
        }
        (toml::Value::Array(_), None) => Err("expected one value, not a list".to_owned()),
        (v, _) => scalar(v),
    }
}

/// Runs the flag's own parser over `text`: the reason it refuses it, if it does.
fn check_value(arg: &Arg, text: &str) -> Result<(), String> {
    let mut alone =
        Arg::new(arg.get_id().clone()).long("value").value_parser(arg.get_value_parser().clone());
    if let Some(sep) = arg.get_value_delimiter() {
        alone = alone.value_delimiter(sep).action(ArgAction::Append);
    }
    let cmd = Command::new("guts-hub").no_binary_name(true).arg(alone);
    let value = format!("--value={text}");
    cmd.try_get_matches_from([value.as_str()]).map(|_| ()).map_err(|e| {
        let why = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_else(|| {
            let names: Vec<String> =
                arg.get_possible_values().iter().map(|p| p.get_name().to_owned()).collect();
            if names.is_empty() {
                e.kind().to_string()
            } else {
                format!("expected one of {}", names.join(", "))
            }
        });
        format!("invalid value {text:?}: {why}")
    })
}

/// The effective configuration as a TOML file (it can be given back to `--config`): every
/// setting with its value and where the value came from; secrets masked and, like settings
/// without a value, commented out.
pub fn print(cmd: &Command, matches: &ArgMatches, file: &FileSettings) -> String {
    let mut out = String::from(
        "# guts-hub: the effective configuration (flags > environment > --config file > defaults)\n",
    );
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if NOT_SETTINGS.contains(&id) {
            continue;
        }
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine)
                if file.ids.iter().any(|f| f == id) && !on_command_line(cmd, id) =>
            {
                "file"
            }
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "env",
            Some(ValueSource::DefaultValue) => "default",
            _ => "unset",
        };
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match raw.as_slice() {
            [] => {
                let _ = writeln!(out, "# {id} =");
                continue;
            }
            _ if SECRETS.contains(&id) => {
                // Commented out: the printed file, given back to --config, sets no fake secret.
                let _ = writeln!(out, "# {id} = \"********\"  # {source}, masked");
                continue;
            }
            [one] if URLS.contains(&id) => toml_literal(&redact_url(one)),
            [one] if arg.get_value_delimiter().is_none() => toml_literal(one),
            many => {
                format!("[{}]", many.iter().map(|v| toml_literal(v)).collect::<Vec<_>>().join(", "))
            }
        };
        let _ = writeln!(out, "{id} = {value}  # {source}");
    }
    out
}

/// `v` as a TOML number or boolean when it reads as one, else as a string.
fn toml_literal(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v == "true" || v == "false" {
        return v.to_owned();
    }
    if v.parse::<f64>().is_ok_and(f64::is_finite) && v.contains('.') {
        return v.to_owned();
    }
    toml::Value::String(v.to_owned()).to_string()
}
