//! Uploaded images: a local directory by default, S3 (or MinIO) when
//! `BLOB_STORE` is `s3://bucket/prefix`. Every `api` and `worker` process
//! must point at the same store.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("BLOB_STORE `{store}` cannot be used: {reason}")]
    Config { store: String, reason: String },
    #[error("the blob store at `{store}` failed: {source}")]
    Io {
        store: String,
        #[source]
        source: object_store::Error,
    },
    #[error("the uploaded image `{0}` is missing from the blob store")]
    Missing(String),
    #[error(
        "the blob store at `{store}` is not writable ({source}): uploads would fail — check \
         BLOB_STORE and that this process's user may write there"
    )]
    NotWritable {
        store: String,
        #[source]
        source: object_store::Error,
    },
}

/// A cloneable handle on the configured object store.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    description: String,
}

impl BlobStore {
    /// Open `spec`: `s3://bucket/prefix` or a local directory (created).
    pub fn open(spec: &str) -> Result<Self, BlobError> {
        let config = |reason: String| BlobError::Config {
            store: spec.to_string(),
            reason,
        };
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| config(e.to_string()))?;
            return Ok(Self {
                inner: Arc::new(s3),
                prefix: Path::from(prefix),
                description: spec.into(),
            });
        }
        std::fs::create_dir_all(spec).map_err(|e| config(e.to_string()))?;
        let local = LocalFileSystem::new_with_prefix(spec).map_err(|e| config(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(local),
            prefix: Path::default(),
            description: spec.into(),
        })
    }

    fn location(&self, key: &str) -> Path {
        self.prefix.parts().chain(Path::from(key).parts()).collect()
    }

    fn io(&self, source: object_store::Error) -> BlobError {
        BlobError::Io {
            store: self.description.clone(),
            source,
        }
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.inner
            .put(&self.location(key), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        match self.inner.get(&self.location(key)).await {
            Ok(found) => found.bytes().await.map_err(|e| self.io(e)),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::Missing(key.to_string())),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Write and remove a small object, as readiness checks: a store that
    /// answers but refuses writes (a read-only volume, a volume owned by
    /// another user) must not report ready.
    pub async fn check_writable(&self) -> Result<(), BlobError> {
        let key = format!(".ready/{}", uuid::Uuid::new_v4());
        let probe = PutPayload::from_static(b"ready");
        if let Err(source) = self.inner.put(&self.location(&key), probe).await {
            return Err(BlobError::NotWritable {
                store: self.description.clone(),
                source,
            });
        }
        self.delete(&key).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.inner.delete(&self.location(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }
}
