//! The accept loop: every connection served by hyper (HTTP/1.1), over plain TCP or TLS.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::http::{Body, Req};

/// Accepts connections on `listener` for ever, serving each with `handler` (after a TLS
/// handshake when `tls` is set; a client that refuses the certificate just ends its
/// connection). The connections belong to this future: dropping or aborting it ends them all.
pub async fn accept_loop<H, Fut, B>(listener: TcpListener, tls: Option<TlsAcceptor>, handler: H)
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let service = service_fn(handler);
                    let builder = http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Serves the synchronous `handler` over HTTP on a free port of `127.0.0.1` until the returned
/// task is aborted; each request is read whole ([`Req`]) first.
///
/// # Errors
/// When no port can be bound.
pub async fn serve<F>(handler: F) -> std::io::Result<(SocketAddr, JoinHandle<()>)>
where
    F: Fn(Req) -> Response<Body> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handler = Arc::new(handler);
    let accept = tokio::spawn(accept_loop(listener, None, move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(Req::read(req).await)) }
    }));
    Ok((addr, accept))
}

/// A TLS acceptor (HTTP/1.1 by ALPN) serving the PEM certificate chain `cert_pem` with the
/// PEM private key `key_pem`.
///
/// # Errors
/// `InvalidInput` when the PEM does not parse or the key does not fit the certificate.
pub fn tls_acceptor(cert_pem: &str, key_pem: &str) -> std::io::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("server certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| invalid(format!("server key: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| invalid(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::http::json_response;

    #[tokio::test]
    async fn serves_requests_read_whole_until_aborted() {
        let (addr, task) = serve(|req| {
            json_response(
                201,
                &serde_json::json!({"path": req.path, "q": req.query.get("a"), "body": req.json()}),
            )
        })
        .await
        .unwrap();
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(
            b"POST /x%2Fy?a=b+c HTTP/1.1\r\nhost: t\r\ncontent-length: 7\r\nconnection: close\r\n\r\n{\"k\":1}",
        )
        .await
        .unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 201"), "{out}");
        assert!(
            out.ends_with(r#"{"body":{"k":1},"path":"/x%2Fy","q":"b c"}"#),
            "{out}"
        );
        task.abort();
        let _ = task.await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn tls_acceptor_names_the_bad_part() {
        let Err(err) = tls_acceptor("not a pem", "") else {
            panic!("a server without a certificate")
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("server key"), "{err}");
    }
}
