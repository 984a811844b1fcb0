//! Images: whether one is present, and pulling it with progress.

use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;

use super::{DockerClient, docker_err, is_not_found};
use crate::error::Error;

impl DockerClient {
    pub async fn image_present(&self, image: &str) -> Result<bool, Error> {
        match self.inner.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(docker_err("inspect image", image)(e)),
        }
    }

    /// Pull `image`, calling `progress(layer, current, total)` as bytes arrive.
    pub async fn pull(&self, image: &str, mut progress: impl FnMut(&str, u64, u64)) -> Result<(), Error> {
        let opts = CreateImageOptions { from_image: Some(image.to_string()), ..Default::default() };
        let mut stream = self.inner.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(docker_err("pull image", image))?;
            if let Some(detail) = info.progress_detail
                && let (Some(id), Some(current)) = (info.id.as_deref(), detail.current)
            {
                progress(id, current.max(0) as u64, detail.total.unwrap_or(0).max(0) as u64);
            }
        }
        Ok(())
    }

    /// The image's content id (`sha256:…`).
    pub async fn image_id(&self, image: &str) -> Result<String, Error> {
        let i = self.inner.inspect_image(image).await.map_err(docker_err("inspect image", image))?;
        Ok(i.id.unwrap_or_default())
    }
}
