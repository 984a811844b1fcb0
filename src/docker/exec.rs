//! Running a command in a container, with its exit code and, when asked, its output.

use futures_util::StreamExt;

use super::{DockerClient, docker_err};
use crate::error::Error;

/// What a command run with [`DockerClient::exec_captured`] printed, and how it exited.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl DockerClient {
    /// Run `cmd` in the container and return its exit code (output discarded).
    pub async fn exec(&self, id: &str, name: &str, cmd: &[String]) -> Result<i64, Error> {
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.inner.create_exec(id, config).await.map_err(docker_err("exec in container", name))?;
        match self.inner.start_exec(&exec.id, None).await.map_err(docker_err("exec in container", name))? {
            bollard::exec::StartExecResults::Attached { mut output, .. } => while output.next().await.is_some() {},
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    /// Run `cmd` in the container and return its exit code and its output (stdout and stderr interleaved, as
    /// the process wrote them).
    pub async fn exec_output(&self, id: &str, name: &str, cmd: &[String]) -> Result<(i64, String), Error> {
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.inner.create_exec(id, config).await.map_err(docker_err("exec in container", name))?;
        let mut text = Vec::new();
        match self.inner.start_exec(&exec.id, None).await.map_err(docker_err("exec in container", name))? {
            bollard::exec::StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    text.extend_from_slice(&chunk.map_err(docker_err("read exec output of", name))?.into_bytes());
                }
            }
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok((inspect.exit_code.unwrap_or(-1), String::from_utf8_lossy(&text).into_owned()))
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
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.to_vec()),
            env: (!env.is_empty()).then(|| env.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.inner.create_exec(id, config).await.map_err(docker_err("exec in container", name))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        match self.inner.start_exec(&exec.id, None).await.map_err(docker_err("exec in container", name))? {
            bollard::exec::StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(docker_err("read exec output of", name))? {
                        bollard::container::LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                        other => stdout.extend_from_slice(&other.into_bytes()),
                    }
                }
            }
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok(ExecOutput {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
}
