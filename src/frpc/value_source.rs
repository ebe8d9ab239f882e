//! `auth.tokenSource`: the token read from a file, or printed by a program, when the client
//! starts (never on a reload, never by `verify`), as frpc 0.66 does. Running a program is an
//! unsafe feature: the config is refused unless `--allow-unsafe TokenSourceExec` was given.

use serde::Deserialize;
use std::process::{Command, Stdio};

/// frpc's name of the unsafe feature that lets a token source run a program.
pub const TOKEN_SOURCE_EXEC: &str = "TokenSourceExec";

/// Where a value comes from (frp's `ValueSource`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ValueSource {
    /// `file` or `exec`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `file`.
    pub file: Option<FileSource>,
    /// For `exec`.
    pub exec: Option<ExecSource>,
}

/// A value read from a file, surrounding whitespace trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct FileSource {
    /// The file.
    pub path: String,
}

/// A value printed on stdout by a program, surrounding whitespace trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ExecSource {
    /// The program (looked up in `PATH` when it has no `/`).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables added to the inherited environment.
    pub env: Vec<ExecEnv>,
}

/// One environment variable for [`ExecSource`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ExecEnv {
    /// Name (no `=`).
    pub name: String,
    /// Value.
    pub value: String,
}

impl ValueSource {
    /// frp's `ValueSource.Validate`, with its texts.
    pub fn validate(&self) -> Result<(), String> {
        match self.kind.as_str() {
            "file" => match &self.file {
                None => Err("file configuration is required when type is 'file'".into()),
                Some(f) if f.path.is_empty() => Err("file path cannot be empty".into()),
                Some(_) => Ok(()),
            },
            "exec" => match &self.exec {
                None => Err("exec configuration is required when type is 'exec'".into()),
                Some(e) if e.command.is_empty() => Err("exec command cannot be empty".into()),
                Some(e) => {
                    for v in &e.env {
                        if v.name.is_empty() {
                            return Err("exec env name cannot be empty".into());
                        }
                        if v.name.contains('=') {
                            return Err("exec env name cannot contain '='".into());
                        }
                    }
                    Ok(())
                }
            },
            other => Err(format!(
                "unsupported value source type: {other} (only 'file' and 'exec' are supported)"
            )),
        }
    }

    /// Reads the value: the file's content or the program's output, trimmed. The error text is
    /// frpc's (`failed to read file …`, `failed to execute command …`).
    pub fn resolve(&self) -> Result<String, String> {
        self.validate()?;
        match (&self.file, &self.exec) {
            (Some(f), _) if self.kind == "file" => {
                let bytes = std::fs::read(&f.path).map_err(|e| {
                    let why = match e.kind() {
                        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
                        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
                        _ => e.to_string(),
                    };
                    format!("failed to read file {0}: open {0}: {why}", f.path)
                })?;
                Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
            }
            (_, Some(e)) => run(e),
            _ => Err(format!("unsupported value source type: {}", self.kind)),
        }
    }
}

/// Runs the program with stdin closed and stderr captured (not shown), as Go's `Output` does.
fn run(e: &ExecSource) -> Result<String, String> {
    let failed = |why: String| format!("failed to execute command {}: {why}", e.command);
    let out = Command::new(&e.command)
        .args(&e.args)
        .envs(e.env.iter().map(|v| (&v.name, &v.value)))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| {
            failed(match err.kind() {
                std::io::ErrorKind::NotFound if !e.command.contains('/') => format!(
                    "exec: \"{}\": executable file not found in $PATH",
                    e.command
                ),
                std::io::ErrorKind::NotFound => {
                    format!("fork/exec {}: no such file or directory", e.command)
                }
                std::io::ErrorKind::PermissionDenied => {
                    format!("fork/exec {}: permission denied", e.command)
                }
                _ => err.to_string(),
            })
        })?;
    if !out.status.success() {
        return Err(failed(exit_text(&out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Go's `ExitError` text: `exit status N`, or `signal: NAME` for a killed program.
fn exit_text(status: &std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                9 => "killed".to_owned(),
                15 => "terminated".to_owned(),
                6 => "aborted".to_owned(),
                11 => "segmentation fault".to_owned(),
                n => format!("signal {n}"),
            };
            return format!("signal: {name}");
        }
    }
    status.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> ValueSource {
        ValueSource {
            kind: "file".into(),
            file: Some(FileSource { path: path.into() }),
            exec: None,
        }
    }

    fn exec(command: &str, args: &[&str]) -> ValueSource {
        ValueSource {
            kind: "exec".into(),
            file: None,
            exec: Some(ExecSource {
                command: command.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                env: vec![ExecEnv {
                    name: "TOKEN_X".into(),
                    value: "from-env".into(),
                }],
            }),
        }
    }

    #[test]
    fn validation_texts() {
        let none = ValueSource {
            kind: "file".into(),
            ..Default::default()
        };
        assert_eq!(
            none.validate().unwrap_err(),
            "file configuration is required when type is 'file'"
        );
        assert_eq!(
            file("").validate().unwrap_err(),
            "file path cannot be empty"
        );
        assert_eq!(
            ValueSource::default().validate().unwrap_err(),
            "unsupported value source type:  (only 'file' and 'exec' are supported)"
        );
        assert_eq!(
            exec("", &[]).validate().unwrap_err(),
            "exec command cannot be empty"
        );
    }

    #[test]
    fn file_token_is_trimmed_and_a_missing_file_named() {
        let dir = std::env::temp_dir().join(format!("expose-vs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(file(path.to_str().unwrap()).resolve().unwrap(), "s3cret");
        let missing = dir.join("missing");
        let m = missing.display();
        assert_eq!(
            file(&m.to_string()).resolve().unwrap_err(),
            format!("failed to read file {m}: open {m}: no such file or directory")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn exec_token_from_stdout_with_env() {
        let src = exec("sh", &["-c", "echo \" $TOKEN_X \""]);
        assert_eq!(src.resolve().unwrap(), "from-env");
        assert_eq!(
            exec("sh", &["-c", "exit 3"]).resolve().unwrap_err(),
            "failed to execute command sh: exit status 3"
        );
        assert_eq!(
            exec("no-such-program-xyz", &[]).resolve().unwrap_err(),
            "failed to execute command no-such-program-xyz: exec: \"no-such-program-xyz\": executable file not found in $PATH"
        );
    }
}
