//! The ACME client's HTTPS: instant-acme's own stack (hyper and rustls, HTTP/1.1 and 2), with
//! a time limit on every request, the body included. instant-acme's default client has none,
//! so a CA that completes TLS and then never answers would hold a command forever.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use crate::error::{Error, Result};

/// An ACME answer is a JSON document or a certificate chain: a few KiB. Anything far larger
/// is refused rather than read into memory.
const MAX_BODY: usize = 1024 * 1024;

/// instant-acme's HTTP client with `limit` on each request: connect, TLS, headers and body.
pub struct TimedClient {
    inner: Client<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    limit: Duration,
}

/// A client that trusts only the first certificate of the PEM file `roots`, or, without it,
/// the system's roots (instant-acme's default, rustls-platform-verifier).
pub fn client(roots: Option<&Path>, limit: Duration) -> Result<TimedClient> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match roots {
        Some(path) => builder.with_tls_config(config_trusting(path)?),
        None => builder.try_with_platform_verifier().map_err(|e| {
            Error::Acme(format!("cannot read the system's trusted roots: {e}").into())
        })?,
    };
    let connector = builder.https_only().enable_http1().enable_http2().build();
    Ok(TimedClient {
        inner: Client::builder(TokioExecutor::new()).build(connector),
        limit,
    })
}

/// A TLS configuration that trusts the first certificate in the PEM file at `path`.
fn config_trusting(path: &Path) -> Result<rustls::ClientConfig> {
    let bad = |why: String| {
        Error::Acme(
            format!(
                "cannot use {} as the ACME server's root: {why}",
                path.display()
            )
            .into(),
        )
    };
    let bytes = crate::paths::read(path)?;
    let blocks = pem::parse_many(&bytes).map_err(|e| bad(e.to_string()))?;
    let root = blocks
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .ok_or_else(|| bad("no certificate".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(root.into_contents().into())
        .map_err(|e| bad(e.to_string()))?;
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl HttpClient for TimedClient {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<BytesResponse, instant_acme::Error>> + Send>>
    {
        let pending = self.inner.request(request);
        let limit = self.limit;
        Box::pin(async move {
            // The body is read inside the limit too: headers alone do not make an answer.
            let whole = async {
                let response = pending.await.map_err(other)?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_BODY)
                    .collect()
                    .await
                    .map_err(other)?
                    .to_bytes();
                Ok(http::Response::from_parts(parts, Full::new(body)))
            };
            match tokio::time::timeout(limit, whole).await {
                Ok(Ok(response)) => Ok(BytesResponse::from(response)),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(other(format!(
                    "the server did not answer within {} s",
                    limit.as_secs_f32()
                ))),
            }
        })
    }
}

fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> instant_acme::Error {
    instant_acme::Error::Other(error.into())
}
