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

use tiny_http::{Header, Request, Response, Server};

/// What a request looked like, for matching.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// `X-Amz-Target` (JSON protocols: SSM, ...), e.g. `AmazonSSM.PutParameter`.
    pub target: Option<String>,
    pub body: String,
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

    /// `Service.Operation` for JSON protocols, `METHOD path` for S3.
    pub fn operation(&self) -> String {
        match &self.target {
            Some(t) => t.clone(),
            None => format!("S3 {}", self.method),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ServerError,
    /// Not retryable: `AccessDeniedException` / `403 AccessDenied`.
    Denied,
    Delay(Duration),
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
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
    pub endpoint: String,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> Self {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind a loopback port"));
        let endpoint = format!(
            "http://{}",
            server.server_addr().to_ip().expect("an IP listener")
        );
        let state = Arc::new(Mutex::new(State::default()));
        let (srv, st, up) = (Arc::clone(&server), Arc::clone(&state), upstream.to_owned());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new().redirects(0).build();
            for request in srv.incoming_requests() {
                let (st, up, agent) = (Arc::clone(&st), up.clone(), agent.clone());
                std::thread::spawn(move || handle(&st, &up, &agent, request));
            }
        });
        FaultProxy {
            server,
            state,
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
        self.server.unblock();
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn handle(state: &Mutex<State>, upstream: &str, agent: &ureq::Agent, mut request: Request) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let seen = Seen {
        method: request.method().as_str().to_owned(),
        path: request.url().to_owned(),
        target: request
            .headers()
            .iter()
            .find(|h| h.field.equiv("x-amz-target"))
            .map(|h| h.value.as_str().to_owned()),
        body: String::from_utf8_lossy(&body).into_owned(),
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
    match fault {
        Some(Fault::Throttle) if seen.target.is_some() => {
            let _ = request.respond(
                Response::from_string(
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                )
                .with_status_code(400)
                .with_header(header("Content-Type", "application/x-amz-json-1.1"))
                .with_header(header("x-amzn-ErrorType", "ThrottlingException")),
            );
            return;
        }
        Some(Fault::Throttle) => {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            let _ = request.respond(
                Response::from_string(xml)
                    .with_status_code(503)
                    .with_header(header("Content-Type", "application/xml")),
            );
            return;
        }
        Some(Fault::Denied) if seen.target.is_some() => {
            let _ = request.respond(
                Response::from_string(
                    r#"{"__type":"AccessDeniedException","message":"injected: not allowed"}"#,
                )
                .with_status_code(400)
                .with_header(header("Content-Type", "application/x-amz-json-1.1"))
                .with_header(header("x-amzn-ErrorType", "AccessDeniedException")),
            );
            return;
        }
        Some(Fault::Denied) => {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>injected: not allowed</Message></Error>";
            let _ = request.respond(
                Response::from_string(xml)
                    .with_status_code(403)
                    .with_header(header("Content-Type", "application/xml")),
            );
            return;
        }
        Some(Fault::ServerError) => {
            let _ = request.respond(Response::from_string("").with_status_code(500));
            return;
        }
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        None => {}
    }
    let mut forward = agent.request(&seen.method, &format!("{upstream}{}", seen.path));
    for h in request.headers() {
        let name = h.field.as_str().as_str();
        if !["host", "content-length", "connection", "transfer-encoding"]
            .contains(&name.to_ascii_lowercase().as_str())
        {
            forward = forward.set(name, h.value.as_str());
        }
    }
    let response = match forward.send_bytes(&body) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => {
            let _ = request.respond(Response::from_string(e.to_string()).with_status_code(502));
            return;
        }
    };
    let status = response.status();
    let headers: Vec<Header> = response
        .headers_names()
        .iter()
        .filter(|n| !["content-length", "connection", "transfer-encoding"].contains(&n.as_str()))
        .filter_map(|n| response.header(n).map(|v| header(n, v)))
        .collect();
    let mut bytes = Vec::new();
    let _ = response.into_reader().read_to_end(&mut bytes);
    let mut reply = Response::from_data(bytes).with_status_code(status);
    for h in headers {
        reply = reply.with_header(h);
    }
    let _ = request.respond(reply);
}
