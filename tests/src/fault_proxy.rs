//! A fault-injecting HTTP proxy between our binaries and the emulator, on loopback.
//!
//! Every request is forwarded to moto unless a rule matches it first: then it gets a
//! throttling error (SSM `ThrottlingException`, S3 `503 SlowDown`), a 500, or a delay. Rules
//! match on the service operation (`X-Amz-Target` for SSM, method and path for S3) and the
//! request body, and fire a given number of times. The proxy also counts requests by operation.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// What a request looked like, for matching.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// `X-Amz-Target` (JSON protocols: SSM, ...), e.g. `AmazonSSM.PutParameter`.
    pub target: Option<String>,
    pub body: String,
    /// The request's headers, names in lower case.
    pub headers: BTreeMap<String, String>,
}

impl Seen {
    /// The path without its query string (the SDK adds `?x-id=PutObject` and the like).
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// An S3 request with `method` on the key `key` (path-style).
    pub fn is_s3(&self, method: &str, key: &str) -> bool {
        self.target.is_none() && self.method == method && self.path_only().ends_with(key)
    }

    /// The region the request is signed for (SigV4's credential scope).
    pub fn region(&self) -> Option<&str> {
        let auth = self.headers.get("authorization")?;
        let scope = auth.split("Credential=").nth(1)?;
        scope.split('/').nth(2)
    }

    /// `Service.Operation` for JSON protocols; for S3 the operation named from the method and
    /// the sub-resource in the query (`S3 GetObjectTagging`, `S3 ListObjectVersions`, ...), or
    /// `S3 METHOD` for anything else.
    pub fn operation(&self) -> String {
        if let Some(t) = &self.target {
            return t.clone();
        }
        let query = self.path.split_once('?').map_or("", |(_, q)| q);
        let has = |sub: &str| {
            query
                .split('&')
                .any(|p| p == sub || p.starts_with(&format!("{sub}=")))
        };
        // Path-style: `/bucket/key` names an object, `/bucket` the bucket.
        let object = self.path_only().trim_matches('/').contains('/');
        let name = match self.method.as_str() {
            "GET" if has("tagging") => "GetObjectTagging",
            "GET" if has("versions") => "ListObjectVersions",
            "GET" if has("versioning") => "GetBucketVersioning",
            "GET" if object => "GetObject",
            "HEAD" if object => "HeadObject",
            "PUT" if has("tagging") => "PutObjectTagging",
            "PUT" if object && self.headers.contains_key("x-amz-copy-source") => {
                if has("partNumber") {
                    "UploadPartCopy"
                } else {
                    "CopyObject"
                }
            }
            "PUT" if object => "PutObject",
            "DELETE" if object => "DeleteObject",
            other => return format!("S3 {other}"),
        };
        format!("S3 {name}")
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    Throttle,
    ServerError,
    /// Not retryable: `AccessDeniedException` / `403 AccessDenied`.
    Denied,
    Delay(Duration),
    /// S3's answer to a request signed for another region than the bucket's: `301
    /// PermanentRedirect` naming the bucket's region in `x-amz-bucket-region`.
    WrongRegion(&'static str),
    /// A 200 with this JSON body, the request never forwarded: a write SSM accepts and then
    /// drops (an `aws:ec2:image` value that fails its asynchronous check).
    Accepted(&'static str),
    /// SSM's answer to concurrent writers of one parameter: `TooManyUpdates`.
    TooManyUpdates,
    /// SSM's answer to a request it will not take: `ValidationException` with this message.
    /// For behaviour moto does not have (it takes what AWS refuses).
    Invalid(&'static str),
    /// Forwarded, and the emulator's answer body rewritten: AWS's answer where moto's differs
    /// in content (what a listing carries), not in kind.
    Rewrite(fn(&Seen, &[u8]) -> Vec<u8>),
}

type Matcher = Box<dyn Fn(&Seen) -> bool + Send + Sync>;

struct Rule {
    matches: Matcher,
    fault: Fault,
    remaining: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    counts: BTreeMap<String, usize>,
    injected: usize,
}

/// A running proxy; stops serving when dropped.
pub struct FaultProxy {
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub endpoint: String,
}

impl FaultProxy {
    /// Serves on a free loopback port, from a thread of its own (usable from sync and async
    /// tests alike). HTTP/1.1 with keep-alive, as the SDKs speak it.
    pub fn start(upstream: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (st, up) = (Arc::clone(&state), Arc::new(upstream.to_owned()));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the proxy");
            runtime.block_on(serve(listener, st, up, stopped));
        });
        FaultProxy {
            state,
            stop: Some(stop),
            endpoint,
        }
    }

    /// Injects `fault` into the next `times` requests that `matches`.
    pub fn inject(
        &self,
        times: usize,
        fault: Fault,
        matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    ) {
        self.state.lock().expect("lock").rules.push(Rule {
            matches: Box::new(matches),
            fault,
            remaining: times,
        });
    }

    /// Requests seen, by operation.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.state.lock().expect("lock").counts.clone()
    }

    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.state.lock().expect("lock").injected
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    upstream: Arc<String>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let (state, upstream, agent) = (Arc::clone(&state), Arc::clone(&upstream), agent.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (state, upstream, agent) =
                    (Arc::clone(&state), Arc::clone(&upstream), agent.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(&state, &upstream, agent, request).await,
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Reply = hyper::Response<Full<Bytes>>;

fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut response = hyper::Response::new(Full::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

/// The answer to an injected fault, or `None` to forward the request (after any delay).
async fn injected(fault: Option<Fault>, seen: &Seen) -> Option<Reply> {
    const JSON: &str = "application/x-amz-json-1.1";
    const XML: &str = "application/xml";
    let json_error = |kind: &str, message: &str| {
        reply(
            400,
            &[("Content-Type", JSON), ("x-amzn-ErrorType", kind)],
            format!(r#"{{"__type":"{kind}","message":"{message}"}}"#),
        )
    };
    let xml_error = |status: u16, code: &str, message: &str| {
        reply(
            status,
            &[("Content-Type", XML)],
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"),
        )
    };
    let json = seen.target.is_some();
    match fault? {
        Fault::Throttle if json => Some(json_error("ThrottlingException", "Rate exceeded")),
        Fault::Throttle => Some(xml_error(
            503,
            "SlowDown",
            "Please reduce your request rate.",
        )),
        Fault::Denied if json => Some(json_error("AccessDeniedException", "injected: not allowed")),
        Fault::Denied => Some(xml_error(403, "AccessDenied", "injected: not allowed")),
        Fault::ServerError => Some(reply(500, &[], Bytes::new())),
        Fault::WrongRegion(region) => Some(reply(
            301,
            &[("Content-Type", XML), ("x-amz-bucket-region", region)],
            if seen.method == "HEAD" {
                String::new()
            } else {
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message><Region>{region}</Region></Error>")
            },
        )),
        Fault::Accepted(body) => Some(reply(200, &[("Content-Type", JSON)], body)),
        Fault::TooManyUpdates => Some(json_error(
            "TooManyUpdates",
            "There are concurrent updates for the resource that you are trying to update.",
        )),
        Fault::Invalid(message) if json => Some(json_error("ValidationException", message)),
        Fault::Invalid(message) => Some(xml_error(400, "InvalidRequest", message)),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::Rewrite(_) => None,
    }
}

async fn handle(
    state: &Mutex<State>,
    upstream: &str,
    agent: ureq::Agent,
    request: hyper::Request<Incoming>,
) -> Reply {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.as_str().to_owned(),
        path: parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
        target: parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
    };
    let fault = {
        let mut st = state.lock().expect("lock");
        *st.counts.entry(seen.operation()).or_default() += 1;
        let fault = st
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && (r.matches)(&seen))
            .map(|r| {
                r.remaining -= 1;
                r.fault
            });
        if fault.is_some() {
            st.injected += 1;
        }
        fault
    };
    if let Some(answer) = injected(fault, &seen).await {
        return answer;
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| {
            // The body is already here: an `Expect: 100-continue` was answered on this side.
            ![
                "host",
                "content-length",
                "connection",
                "transfer-encoding",
                "expect",
            ]
            .contains(&name.as_str())
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let url = format!("{upstream}{}", seen.path);
    let rewrite = match fault {
        Some(Fault::Rewrite(f)) => Some(f),
        _ => None,
    };
    let forwarded = tokio::task::spawn_blocking(move || {
        let answer = forward(&agent, &seen.method, &url, &headers, &body)?;
        Ok::<_, String>(match rewrite {
            Some(f) => answer.rewritten(|b| f(&seen, b)),
            None => answer.into_reply(),
        })
    })
    .await;
    match forwarded {
        Ok(Ok(answer)) => answer,
        Ok(Err(message)) => reply(502, &[], message),
        Err(e) => reply(502, &[], e.to_string()),
    }
}

/// The emulator's answer.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn into_reply(self) -> Reply {
        let pairs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        reply(self.status, &pairs, self.body)
    }

    fn rewritten(mut self, f: impl FnOnce(&[u8]) -> Vec<u8>) -> Reply {
        self.body = f(&self.body);
        self.into_reply()
    }
}

/// Sends the request on to the emulator and returns its answer.
fn forward(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Answer, String> {
    let mut request = agent.request(method, url);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = match request.send_bytes(body) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = response.status();
    let names = response.headers_names();
    let headers: Vec<(String, String)> = names
        .iter()
        .filter(|n| !["content-length", "connection", "transfer-encoding"].contains(&n.as_str()))
        .filter_map(|n| Some((n.clone(), response.header(n)?.to_owned())))
        .collect();
    let mut bytes = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        headers,
        body: bytes,
    })
}
