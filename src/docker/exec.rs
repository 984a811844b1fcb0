//! Running a command in a container, with its exit code and, when asked, its output (collected, or streamed to
//! a sink chunk by chunk).

use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::{DockerClient, docker_err};
use crate::error::Error;

/// Streamed output is read in chunks of up to this size (the Engine's own copy buffer is 32 KiB).
pub(super) const CHUNK: usize = 256 * 1024;
/// How much of a streamed command's stderr is kept for its error message.
const STDERR_KEPT: usize = 16 * 1024;

/// What a command run with [`DockerClient::exec_captured`] printed, and how it exited.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// How a command run with [`DockerClient::exec_stream_out`] ended: its exit code and the tail of its stderr.
#[derive(Debug, Clone)]
pub struct StreamedExit {
    pub exit_code: i64,
    pub stderr: String,
}

pub(super) fn exec_config(cmd: &[String], env: &[String], stdin: bool) -> bollard::models::ExecConfig {
    bollard::models::ExecConfig {
        cmd: Some(cmd.to_vec()),
        env: (!env.is_empty()).then(|| env.to_vec()),
        attach_stdin: stdin.then_some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    }
}

/// Append `more` to `buf`, keeping only its last [`STDERR_KEPT`] bytes.
pub(super) fn keep_tail(buf: &mut Vec<u8>, more: &[u8]) {
    buf.extend_from_slice(more);
    if buf.len() > STDERR_KEPT {
        buf.drain(..buf.len() - STDERR_KEPT);
    }
}

impl DockerClient {
    /// The one exec path without stdin: create, start attached, hand every output chunk (or the error reading
    /// it) to `each`, then the exit code. `each` returning an error stops reading and returns it.
    async fn exec_attached(
        &self,
        id: &str,
        name: &str,
        config: bollard::models::ExecConfig,
        options: Option<StartExecOptions>,
        mut each: impl FnMut(Result<LogOutput, bollard::errors::Error>) -> Result<(), Error>,
    ) -> Result<i64, Error> {
        let exec = self.inner.create_exec(id, config).await.map_err(docker_err("exec in container", name))?;
        match self.inner.start_exec(&exec.id, options).await.map_err(docker_err("exec in container", name))? {
            StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    each(chunk)?;
                }
            }
            StartExecResults::Detached => {}
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    /// Run `cmd` in the container and return its exit code (output discarded).
    pub async fn exec(&self, id: &str, name: &str, cmd: &[String]) -> Result<i64, Error> {
        self.exec_attached(id, name, exec_config(cmd, &[], false), None, |_| Ok(())).await
    }

    /// Run `cmd` in the container and return its exit code and its output (stdout and stderr interleaved, as
    /// the process wrote them).
    pub async fn exec_output(&self, id: &str, name: &str, cmd: &[String]) -> Result<(i64, String), Error> {
        let mut text = Vec::new();
        let code = self
            .exec_attached(id, name, exec_config(cmd, &[], false), None, |chunk| {
                text.extend_from_slice(&chunk.map_err(docker_err("read exec output of", name))?.into_bytes());
                Ok(())
            })
            .await?;
        Ok((code, String::from_utf8_lossy(&text).into_owned()))
    }

    /// Run `cmd` in the container with extra `env` (`KEY=value`: a password that must not appear in argv) and
    /// return its exit code with stdout and stderr apart (rows on stdout, errors to classify on stderr).
    pub async fn exec_captured(
        &self,
        id: &str,
        name: &str,
        cmd: &[String],
        env: &[String],
    ) -> Result<ExecOutput, Error> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let exit_code = self
            .exec_attached(id, name, exec_config(cmd, env, false), None, |chunk| {
                match chunk.map_err(docker_err("read exec output of", name))? {
                    LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                    other => stdout.extend_from_slice(&other.into_bytes()),
                }
                Ok(())
            })
            .await?;
        Ok(ExecOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Run `cmd` in the container, handing each chunk of its stdout to `sink` as it arrives (never collected);
    /// the tail of its stderr is kept for the error message. A sink error stops the transfer and is returned.
    pub async fn exec_stream_out(
        &self,
        id: &str,
        name: &str,
        cmd: &[String],
        env: &[String],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<StreamedExit, Error> {
        let mut stderr = Vec::new();
        let exit_code = self
            .exec_stream_both(id, name, cmd, env, sink, &mut |b| {
                keep_tail(&mut stderr, b);
                Ok(())
            })
            .await?;
        Ok(StreamedExit { exit_code, stderr: String::from_utf8_lossy(&stderr).into_owned() })
    }

    /// Run `cmd` in the container, handing each chunk of its stdout to `sink` and of its stderr to `err_sink` as
    /// they arrive; its exit code. A sink error stops the transfer and is returned.
    pub async fn exec_stream_both(
        &self,
        id: &str,
        name: &str,
        cmd: &[String],
        env: &[String],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
        err_sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<i64, Error> {
        let options = StartExecOptions { detach: false, tty: false, output_capacity: Some(CHUNK) };
        self.exec_attached(id, name, exec_config(cmd, env, false), Some(options), |chunk| {
            match chunk.map_err(docker_err("read exec output of", name))? {
                LogOutput::StdErr { message } => err_sink(&message)?,
                LogOutput::StdOut { message } => sink(&message)?,
                _ => {}
            }
            Ok(())
        })
        .await
    }
}
