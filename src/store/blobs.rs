//! Uploaded images: a local directory by default, S3 (or any S3-compatible
//! server: MinIO, moto, Ceph) when `BLOB_STORE` is `s3://bucket/prefix`,
//! configured by the usual `AWS_*` variables. Every `api` and `worker`
//! process must point at the same store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("BLOB_STORE `{store}` cannot be used: {reason}")]
    Config { store: String, reason: String },
    #[error(
        "the blob store at `{store}` did not answer as it should ({source}) — is it running and \
         reachable? check BLOB_STORE (and AWS_ENDPOINT for an S3-compatible server), then try \
         again"
    )]
    Io {
        store: String,
        #[source]
        source: object_store::Error,
    },
    #[error(
        "the bucket `{bucket}` does not exist at {endpoint} — create it (e.g. `aws s3 mb \
         s3://{bucket}`) or fix BLOB_STORE"
    )]
    NoBucket { bucket: String, endpoint: String },
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
    /// The bucket and the endpoint it was looked for at, on S3.
    s3: Option<(String, String)>,
}

/// How long one S3 request is retried (connection refused, 5xx, timeouts)
/// before the caller is told: an upload answers 503 and a job's attempt
/// fails (to be retried by the queue) within this, instead of the
/// client's default of minutes.
const S3_RETRY_FOR: Duration = Duration::from_secs(10);

impl BlobStore {
    /// Open `spec` and, on S3, check that the bucket exists and takes
    /// writes, so that a wrong bucket or an unreachable server stops
    /// start-up with a message instead of failing every upload.
    pub async fn connect(spec: &str) -> Result<Self, BlobError> {
        let store = Self::open(spec)?;
        if store.s3.is_some() {
            store.check_bucket().await?;
        }
        Ok(store)
    }

    /// Open `spec`: `s3://bucket/prefix` or a local directory (created).
    pub fn open(spec: &str) -> Result<Self, BlobError> {
        let config = |reason: String| BlobError::Config {
            store: spec.to_string(),
            reason,
        };
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(config("no bucket named: write s3://bucket/prefix".into()));
            }
            let builder = s3_builder(bucket);
            let endpoint = s3_endpoint(&builder);
            let s3 = builder.build().map_err(|e| config(e.to_string()))?;
            return Ok(Self {
                inner: Arc::new(s3),
                prefix: Path::from(prefix),
                description: spec.into(),
                s3: Some((bucket.to_string(), endpoint)),
            });
        }
        std::fs::create_dir_all(spec).map_err(|e| config(e.to_string()))?;
        let local = LocalFileSystem::new_with_prefix(spec).map_err(|e| config(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(local),
            prefix: Path::default(),
            description: spec.into(),
            s3: None,
        })
    }

    /// A write probe that tells a missing bucket from an unreachable server.
    async fn check_bucket(&self) -> Result<(), BlobError> {
        match self.check_writable().await {
            Err(BlobError::NotWritable {
                source: object_store::Error::NotFound { .. },
                ..
            }) if self.s3.is_some() => {
                let (bucket, endpoint) = self.s3.clone().unwrap_or_default();
                Err(BlobError::NoBucket { bucket, endpoint })
            }
            Err(BlobError::NotWritable { source, .. }) => Err(self.io(source)),
            outcome => outcome,
        }
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
            Err(object_store::Error::NotFound { .. }) => Err(self.missing_or_gone(key).await),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Whether `key` is stored, without reading it (`Missing` when not).
    pub async fn check_present(&self, key: &str) -> Result<(), BlobError> {
        match self.inner.head(&self.location(key)).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Err(self.missing_or_gone(key).await),
            Err(e) => Err(self.io(e)),
        }
    }

    /// A 404 also comes from a bucket that is gone: the image is missing
    /// for good only when the store itself still takes a write.
    async fn missing_or_gone(&self, key: &str) -> BlobError {
        match self.check_bucket().await {
            Ok(()) => BlobError::Missing(key.to_string()),
            Err(e) => e,
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

/// `AWS_*` from the environment (endpoint, region, keys, `AWS_ALLOW_HTTP`,
/// `AWS_TIMEOUT`, …) with retries bounded by [`S3_RETRY_FOR`].
fn s3_builder(bucket: &str) -> AmazonS3Builder {
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: S3_RETRY_FOR,
    };
    AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(retry)
}

/// Where the bucket is looked for, for messages.
fn s3_endpoint(builder: &AmazonS3Builder) -> String {
    let configured = [AmazonS3ConfigKey::S3Endpoint, AmazonS3ConfigKey::Endpoint]
        .iter()
        .find_map(|key| builder.get_config_value(key));
    configured.unwrap_or_else(|| {
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".into());
        format!("AWS S3 in {region}")
    })
}
