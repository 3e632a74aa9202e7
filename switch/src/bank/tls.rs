//! TLS 1.3 for the bank link (rustls): the bank's CA, and a client certificate when the bank
//! requires mutual TLS.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsConnector;

use crate::config::BankConfig;

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustls_pemfile::certs(&mut std::io::BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading certificates from {}", path.display()))
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustls_pemfile::private_key(&mut std::io::BufReader::new(file))
        .with_context(|| format!("reading the private key from {}", path.display()))?
        .ok_or_else(|| anyhow!("no private key in {}", path.display()))
}

/// The connector when `bank.tls_ca` is set, `None` for plain TCP.
pub fn connector(config: &BankConfig) -> anyhow::Result<Option<TlsConnector>> {
    let Some(ca) = &config.tls_ca else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca)? {
        roots
            .add(cert)
            .with_context(|| format!("a CA certificate in {} is not usable", ca.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_root_certificates(roots);
    let config = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key_path)) => builder
            .with_client_auth_cert(certs(cert)?, key(key_path)?)
            .context("the bank link's client certificate and key do not match")?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(TlsConnector::from(Arc::new(config))))
}

/// The name the bank's certificate must carry: configured, or the host part of `addr`.
pub fn server_name(
    config: &BankConfig,
    addr: &str,
) -> anyhow::Result<rustls::pki_types::ServerName<'static>> {
    let host = match &config.tls_server_name {
        Some(name) => name.clone(),
        None => addr
            .rsplit_once(':')
            .map(|(host, _)| host.trim_matches(['[', ']']).to_owned())
            .unwrap_or_else(|| addr.to_owned()),
    };
    rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|_| anyhow!("`{host}` is not a valid TLS server name for the bank"))
}
