//! Helpers shared by the tests that run the real `hostplane` binary as a CLI.

#![allow(dead_code)] // each test binary uses a different subset

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_hostplane");

/// A `hostplane` command with a private CLI login file and no inherited settings.
pub fn hp(config: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("HOSTPLANE_CONFIG", config)
        .env_remove("HOSTPLANE_URL")
        .env_remove("HOSTPLANE_TOKEN")
        .env_remove("HOSTPLANE_CA")
        .env_remove("HOSTPLANE_JOIN_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// What a finished command printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` with `args` to completion.
pub fn run(mut cmd: Command, args: &[&str]) -> Run {
    let out: Output = cmd.args(args).output().expect("start hostplane");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn ok(config: &Path, args: &[&str]) -> String {
    let r = run(hp(config), args);
    assert_eq!(
        r.code, 0,
        "hostplane {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    r.stdout
}

/// Run with `--json` and parse the output.
pub fn ok_json(config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = ok(config, &all);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("hostplane {args:?} printed no JSON ({e}):\n{out}"))
}
