//! Runs the external tools the tests use (`promtool`, `amtool`, `systemd-analyze`, `docker-compose`, the deploy
//! checks' Python tools) in the repository root, and fails a test with the tool's own words.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::stack::repo;

/// What a tool printed and how it exited.
pub struct Run {
    /// `Some(code)` unless a signal ended it.
    pub code: Option<i32>,
    /// stdout alone, for tools whose output is data.
    pub stdout: String,
    /// stdout followed by stderr, for messages.
    pub text: String,
}

impl Run {
    /// Whether it exited 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `program` with `args` in the repository root, feeding `stdin`; a program that cannot be started fails
/// the test with a message naming the command that installs it.
pub fn run<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S], stdin: &str) -> Run {
    let program = program.as_ref();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(repo(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}. ./scripts/test.sh installs the tools the tests use (Debian packages, and the deploy \
                 checks' Python tools under {})",
                program.to_string_lossy(),
                super::deploy::tools_bin().display()
            )
        });
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for the tool");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    Run {
        code: status.code(),
        text: format!("{stdout}{}", String::from_utf8_lossy(&stderr)),
        stdout,
    }
}

/// Like [`run`] without input, failing the test with the tool's output when it does not exit 0.
pub fn run_ok<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Run {
    let program = program.as_ref();
    let out = run(program, args, "");
    assert!(
        out.ok(),
        "{} {:?} exited {:?}:\n{}",
        program.to_string_lossy(),
        args.iter()
            .map(|a| a.as_ref().to_string_lossy())
            .collect::<Vec<_>>(),
        out.code,
        out.text
    );
    out
}
