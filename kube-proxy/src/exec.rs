//! Running the packet-filter tools (`nft`, `iptables-restore`, `conntrack`, `ip`), feeding them
//! a transaction on stdin, with their stderr in the error.

use std::process::Stdio;

use tokio::{io::AsyncWriteExt, process::Command};

/// Why a tool run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} {args} failed ({status}): {stderr}")]
    Failed {
        program: String,
        args: String,
        status: String,
        stderr: String,
    },
}

/// Runs `program args` with `input` on stdin and returns its stdout.
pub async fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, ExecError> {
    let spawn_err = |source| ExecError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).await.map_err(spawn_err)?;
        drop(stdin);
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    if !out.status.success() {
        let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if stderr.len() > 4000 {
            let mut cut = 4000;
            while !stderr.is_char_boundary(cut) {
                cut -= 1;
            }
            stderr.truncate(cut);
        }
        return Err(ExecError::Failed {
            program: program.to_string(),
            args: args.join(" "),
            status: out.status.to_string(),
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program args` runs and succeeds.
pub async fn works(program: &str, args: &[&str], input: Option<&str>) -> bool {
    run(program, args, input).await.is_ok()
}
