//! TLS 1.3 for QUIC. Certificates are ephemeral and self-signed; machine identity is proven
//! one layer up (`auth`) by signing the TLS session's exported keying material with the
//! machine's ed25519 key, which binds the proof to this very connection. So the client accepts
//! any server certificate here — but still checks that the handshake signature matches it, so
//! TLS itself stays sound.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::TransportError;

/// ALPN protocol id of td's peer sync: one round, then the server closes.
pub const ALPN: &[u8] = b"td-sync/1";

/// ALPN protocol id of a kept connection (`td peer sync --watch`): the same protocol, with
/// further rounds on new streams until the client closes.
pub const ALPN_KEEP: &[u8] = b"td-sync/1+keep";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

fn tls_err(e: impl std::fmt::Display) -> TransportError {
    TransportError::Connection(format!("TLS setup failed: {e}"))
}

/// Server-side TLS with a fresh self-signed certificate.
pub fn server_config() -> Result<rustls::ServerConfig, TransportError> {
    // Ed25519: the smallest certificate and handshake signature rustls offers (every byte of
    // the server's first flight is on the wire of every round).
    let signing_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(tls_err)?;
    let cert = rcgen::CertificateParams::new(vec!["td-peer".to_string()])
        .map_err(tls_err)?
        .self_signed(&signing_key)
        .map_err(tls_err)?;
    let der = cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(signing_key.serialize_der());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(vec![der], key.into())
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![ALPN.to_vec(), ALPN_KEEP.to_vec()];
    Ok(cfg)
}

/// Client-side TLS that accepts any certificate whose handshake signature verifies.
/// `keep` asks for a kept connection ([`ALPN_KEEP`]).
pub fn client_config(keep: bool) -> Result<rustls::ClientConfig, TransportError> {
    let p = provider();
    let mut cfg = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(p)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![if keep { ALPN_KEEP } else { ALPN }.to_vec()];
    Ok(cfg)
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
