//! TLS material: server configs for listeners (ALPN h2 + http/1.1) and client configs for
//! upstream TLS origination. Loaded once, at config time, so `strait check` catches bad files.

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

/// The files a TLS setting was read from, and a digest of what they held then: a reload tells
/// a rotated certificate (same paths, new contents) by it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub paths: Vec<PathBuf>,
    pub digest: u64,
}

impl TlsFiles {
    /// Reads `path`, adding it and its contents to the digest.
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, TlsError> {
        use std::hash::{Hash, Hasher};
        let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.digest.hash(&mut h);
        path.hash(&mut h);
        bytes.hash(&mut h);
        self.digest = h.finish();
        self.paths.push(path.to_owned());
        Ok(bytes)
    }
}

fn certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
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

/// A listener's TLS: the server config, and the files it was built from.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub files: TlsFiles,
}

/// A listener's TLS config with ALPN `h2`, `http/1.1`. The key must belong to the (first)
/// certificate: a half-rotated pair is refused.
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
    let mut files = TlsFiles::default();
    let chain = certs(cert, &files.read(cert)?)?;
    let key_pem = files.read(key)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
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
    Ok(ServerTls {
        config: Arc::new(cfg),
        files,
    })
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
    /// The CA bundle read (none: the system's roots, read once).
    pub files: TlsFiles,
}

impl UpstreamTls {
    /// `sni` is sent and verified; `ca` (PEM bundle) replaces the system roots when given.
    pub fn new(sni: &str, ca: Option<&Path>) -> Result<Self, TlsError> {
        let server_name = ServerName::try_from(sni.to_owned())
            .map_err(|_| TlsError::BadServerName(sni.to_owned()))?;
        let mut roots = rustls::RootCertStore::empty();
        let mut files = TlsFiles::default();
        match ca {
            Some(path) => {
                for c in certs(path, &files.read(path)?)? {
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
            files,
        })
    }
}
