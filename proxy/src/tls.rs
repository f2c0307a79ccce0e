//! TLS material: server configs for listeners (ALPN h2 + http/1.1) and client configs for
//! upstream TLS origination. Loaded once, at config time, so `strait check` catches bad files.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("certificate/key rejected: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("`{0}` is not a valid TLS server name (SNI)")]
    BadServerName(String),
    #[error("no trusted CA certificates: set `ca:` to a PEM bundle")]
    NoRoots,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, TlsError> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// A listener's TLS config with ALPN `h2`, `http/1.1`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs(cert)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|source| TlsError::Read {
            path: key.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: key.to_owned(),
        })?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// TLS origination towards an upstream: the SNI to send and one client config per ALPN.
#[derive(Clone)]
pub struct UpstreamTls {
    pub server_name: ServerName<'static>,
    pub http1: Arc<rustls::ClientConfig>,
    pub http2: Arc<rustls::ClientConfig>,
    pub both: Arc<rustls::ClientConfig>,
    /// No ALPN, for TCP relays.
    pub plain: Arc<rustls::ClientConfig>,
}

impl UpstreamTls {
    /// `sni` is sent and verified; `ca` (PEM bundle) replaces the system roots when given.
    pub fn new(sni: &str, ca: Option<&Path>) -> Result<Self, TlsError> {
        let server_name = ServerName::try_from(sni.to_owned())
            .map_err(|_| TlsError::BadServerName(sni.to_owned()))?;
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                for c in certs(path)? {
                    roots.add(c)?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    // A malformed system certificate is skipped, as every TLS client does.
                    let _ = roots.add(c);
                }
            }
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let base = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let with_alpn = |alpn: &[&[u8]]| {
            let mut c = base.clone();
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Arc::new(c)
        };
        Ok(Self {
            server_name,
            http1: with_alpn(&[b"http/1.1"]),
            http2: with_alpn(&[b"h2"]),
            both: with_alpn(&[b"h2", b"http/1.1"]),
            plain: Arc::new(base.clone()),
        })
    }
}
