//! ACME Renewal Information (RFC 9773): the certificate's identifier (its Authority Key
//! Identifier and serial number, base64url) and the CA's suggested window, through
//! instant-acme, which takes the renewalInfo URL from the directory as the RFC asks.

use std::time::Duration;

use instant_acme::{Account, CertificateIdentifier};
use rustls_pki_types::CertificateDer;

use super::schedule::Window;

/// The ARI identifier of a certificate, `base64url(AKI).base64url(serial)`; `None` for a
/// certificate without an Authority Key Identifier (then there is no ARI for it).
pub fn certificate_id(leaf_der: &[u8]) -> Option<CertificateIdentifier<'static>> {
    let der = CertificateDer::from(leaf_der);
    CertificateIdentifier::try_from(&der)
        .ok()
        .map(CertificateIdentifier::into_owned)
}

/// What the CA answered: its window, and how long until it wants to be asked again
/// (`Retry-After`).
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The suggested window.
    pub window: Window,
    /// Ask again no sooner than this.
    pub retry_after: Duration,
}

/// Asks the CA for the certificate's renewal window. `Ok(None)`: this CA has no ARI.
pub async fn renewal_window(
    account: &Account,
    id: &CertificateIdentifier<'_>,
) -> Result<Option<Answer>, String> {
    match account.renewal_info(id).await {
        Ok((info, retry_after)) => {
            let window = info.suggested_window;
            let window = Window {
                start: window.start.unix_timestamp(),
                end: window.end.unix_timestamp(),
            };
            Ok(Some(Answer {
                window,
                retry_after,
            }))
        }
        Err(instant_acme::Error::Unsupported(_)) => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}
