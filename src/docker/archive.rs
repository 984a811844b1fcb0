//! Moving bytes in and out of containers without staging them there: a stream fed to a command's stdin, a
//! path's tar archive downloaded or extracted (the Engine's archive API), pause/unpause and helper containers.
//! Every transfer goes chunk by chunk through a caller's sink or source: nothing is buffered whole. (A command's
//! stdout streamed out is `exec_stream_out`, beside the other exec calls.)

use std::collections::BTreeMap;
use std::io::Read;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions, UploadToContainerOptions,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::exec::{CHUNK, StreamedExit, exec_config, keep_tail};
use super::{DockerClient, describe, docker_err};
use crate::error::Error;

/// A short-lived helper container: one image, volumes mounted, a command (or none: created, never started,
/// only to reach a volume through the archive API).
pub struct HelperContainer {
    pub name: String,
    pub image: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    /// `volume:/path` binds.
    pub binds: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl DockerClient {
    /// Run `cmd` in the container with `source` streamed to its stdin (closed at the source's end); its output
    /// (stdout and stderr) is kept, tail only, for the error message.
    pub async fn exec_stream_in(
        &self,
        id: &str,
        name: &str,
        cmd: &[String],
        env: &[String],
        source: &mut dyn Read,
    ) -> Result<StreamedExit, Error> {
        let exec = self
            .inner
            .create_exec(id, exec_config(cmd, env, true))
            .await
            .map_err(docker_err("exec in container", name))?;
        let opts = StartExecOptions { detach: false, tty: false, output_capacity: Some(CHUNK) };
        let mut text = Vec::new();
        if let StartExecResults::Attached { mut output, mut input } =
            self.inner.start_exec(&exec.id, Some(opts)).await.map_err(docker_err("exec in container", name))?
        {
            let feed = async {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = source.read(&mut buf).map_err(|e| Error::Docker {
                        action: "read the input for",
                        target: name.to_string(),
                        cause: e.to_string(),
                    })?;
                    if n == 0 {
                        break;
                    }
                    // The command exiting early (an error) closes its stdin: its output says why.
                    if input.write_all(&buf[..n]).await.is_err() {
                        return Ok(());
                    }
                }
                let _ = input.shutdown().await;
                Ok::<(), Error>(())
            };
            let drain = async {
                while let Some(chunk) = output.next().await {
                    match chunk {
                        Ok(out) => keep_tail(&mut text, &out.into_bytes()),
                        Err(e) => return Err(docker_err("read exec output of", name)(e)),
                    }
                }
                Ok(())
            };
            let (fed, drained) = futures_util::join!(feed, drain);
            fed?;
            drained?;
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok(StreamedExit {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stderr: String::from_utf8_lossy(&text).into_owned(),
        })
    }

    /// Download `path` of the container as the Engine's tar archive (ownership, modes and symlinks as stored),
    /// chunk by chunk into `sink`.
    pub async fn archive_get<S: FnMut(&[u8]) -> Result<(), Error> + ?Sized>(
        &self,
        id: &str,
        name: &str,
        path: &str,
        sink: &mut S,
    ) -> Result<(), Error> {
        let opts = DownloadFromContainerOptions { path: path.to_string() };
        let mut stream = self.inner.download_from_container(id, Some(opts));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Docker {
                action: "download archive from",
                target: format!("{name}:{path}"),
                cause: describe(&e),
            })?;
            sink(&chunk)?;
        }
        Ok(())
    }

    /// Extract a tar archive read from `source` into `path` of the container, keeping the archive's owners.
    pub async fn archive_put(&self, id: &str, name: &str, path: &str, source: &mut dyn Read) -> Result<(), Error> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let opts = UploadToContainerOptions { path: path.to_string(), ..Default::default() };
        let target = format!("{name}:{path}");
        let upload = self.inner.upload_to_container(id, Some(opts), bollard::body_stream(body));
        let feed = async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = source.read(&mut buf).map_err(|e| Error::Docker {
                    action: "read the archive for",
                    target: target.clone(),
                    cause: e.to_string(),
                })?;
                if n == 0 {
                    return Ok::<(), Error>(());
                }
                if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    return Ok(()); // the upload ended early: its own error says why
                }
            }
        };
        let (uploaded, fed) = futures_util::join!(upload, feed);
        fed?;
        uploaded.map_err(|e| Error::Docker {
            action: "extract archive into",
            target: format!("{name}:{path}"),
            cause: describe(&e),
        })
    }

    /// Copy `src_path` of one container into `dst_dir` of another as the Engine's tar archive (owners, modes and
    /// symlinks as stored), streamed from the download straight into the upload: never staged, never whole in
    /// memory. Returns the archive's size.
    pub async fn archive_copy(
        &self,
        (src_id, src_name, src_path): (&str, &str, &str),
        (dst_id, dst_name, dst_dir): (&str, &str, &str),
    ) -> Result<u64, Error> {
        let source = format!("{src_name}:{src_path}");
        let target = format!("{dst_name}:{dst_dir}");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let opts = UploadToContainerOptions { path: dst_dir.to_string(), ..Default::default() };
        let upload = self.inner.upload_to_container(dst_id, Some(opts), bollard::body_stream(body));
        let feed = async move {
            let opts = DownloadFromContainerOptions { path: src_path.to_string() };
            let mut stream = self.inner.download_from_container(src_id, Some(opts));
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Error::Docker {
                    action: "download archive from",
                    target: source.clone(),
                    cause: describe(&e),
                })?;
                size += chunk.len() as u64;
                if tx.send(chunk).await.is_err() {
                    break; // the upload ended early: its own error says why
                }
            }
            Ok::<u64, Error>(size)
        };
        let (uploaded, fed) = futures_util::join!(upload, feed);
        let size = fed?;
        uploaded.map_err(|e| Error::Docker { action: "extract archive into", target, cause: describe(&e) })?;
        Ok(size)
    }

    /// Ids, names and states of the containers that are up (running, paused, restarting) and either carry
    /// `label` (`key=value`) or bind-mount a host path under `dir`.
    pub async fn containers_up_using(&self, label: &str, dir: &str) -> Result<Vec<(String, String, String)>, Error> {
        let opts = ListContainersOptions { all: true, ..Default::default() };
        let list = self.inner.list_containers(Some(opts)).await.map_err(docker_err("list containers using", dir))?;
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        let under = |source: &str| {
            let dir = dir.trim_end_matches('/');
            source == dir || source.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
        };
        Ok(list
            .into_iter()
            .filter(|c| {
                let state = c.state.as_ref().map(|s| s.to_string()).unwrap_or_default();
                matches!(state.as_str(), "running" | "paused" | "restarting")
            })
            .filter(|c| {
                c.labels.as_ref().is_some_and(|l| l.get(key).is_some_and(|v| v == value))
                    || c.mounts.iter().flatten().any(|m| m.source.as_deref().is_some_and(under))
            })
            .map(|c| {
                let name =
                    c.names.and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string())).unwrap_or_default();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                (c.id.unwrap_or_default(), name, state)
            })
            .collect())
    }

    pub async fn pause(&self, id: &str, name: &str) -> Result<(), Error> {
        self.inner.pause_container(id).await.map_err(docker_err("pause container", name))
    }

    /// Unpause; a container that is not paused (or gone) is fine. (Engine 20.10 answers "is not paused" with 500,
    /// e.g. when another ragctl process resumed it first.)
    pub async fn unpause(&self, id: &str, name: &str) -> Result<(), Error> {
        match self.inner.unpause_container(id).await {
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. }) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 500, message })
                if message.contains("is not paused") =>
            {
                Ok(())
            }
            other => other.map_err(docker_err("unpause container", name)),
        }
    }

    /// Create (not start) a helper container on no network.
    pub async fn create_helper(&self, spec: &HelperContainer) -> Result<String, Error> {
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            cmd: spec.cmd.clone(),
            entrypoint: spec.entrypoint.clone(),
            user: spec.user.clone(),
            labels: Some(spec.labels.clone().into_iter().collect()),
            host_config: Some(HostConfig {
                binds: Some(spec.binds.clone()),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions { name: Some(spec.name.clone()), ..Default::default() };
        Ok(self.inner.create_container(Some(opts), body).await.map_err(docker_err("create container", &spec.name))?.id)
    }

    /// Ids and names of every container (any project) carrying `key=value`.
    pub async fn containers_labelled(&self, key: &str, value: &str) -> Result<Vec<(String, String)>, Error> {
        let filters = std::collections::HashMap::from([("label".to_string(), vec![format!("{key}={value}")])]);
        let opts = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let list = self.inner.list_containers(Some(opts)).await.map_err(docker_err("list containers labelled", key))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let name =
                    c.names.and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string())).unwrap_or_default();
                (c.id.unwrap_or_default(), name)
            })
            .collect())
    }
}
